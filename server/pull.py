"""Answering a pull: the changes in the caller's scope after their cursor, one page at a time.

The cursor is the server's change sequence. The page reads the counter first and never returns
beyond it; writers allocate sequence numbers under the write lock and commit before the next
writer may allocate, so every sequence number at or below the counter is committed and visible:
no change can be skipped. The page is read in one snapshot (REPEATABLE READ on PostgreSQL, a
deferred WAL read on SQLite, which never waits for or blocks a writer), so the counter, the
records, the removals and the checksum agree with each other.

Record snapshots are stored as JSON text at write time; a page is assembled by joining them.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select, update

from server.db import read_phase, utcnow
from server.extensions import db
from server.models import Device, GridDigest, Record, Removal, SyncCounter
from server.scope import Scope
from sync import PullRequest

__all__ = ["pull"]


def _begin_snapshot() -> None:
    db.session.commit()  # end the authentication's transaction; the page gets its own
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def pull(request: PullRequest, *, device: Device, scope: Scope) -> bytes:
    """One page of changes as UTF-8 JSON (a PullResponse)."""
    due = device.sync_mark_due(utcnow())  # as authenticated (the snapshot expires it)
    _begin_snapshot()
    session = db.session
    with read_phase(session):  # on SQLite a WAL snapshot: a pull never takes the write lock
        body, has_more = _page(request, scope)
    session.commit()
    if not has_more and due:
        _mark_synced(device.id)
    return body


def _page(request: PullRequest, scope: Scope) -> tuple[bytes, bool]:
    session = db.session
    top = (
        session.execute(select(SyncCounter.value).where(SyncCounter.name == "change")).scalar() or 0
    )
    reset = request.scope_token is not None and request.scope_token != scope.token
    cursor = 0 if reset else min(request.cursor, top)
    in_scope = scope.filter(Record.grid_code)
    rows = session.execute(
        select(Record.seq, Record.snapshot)
        .where(Record.seq > cursor, Record.seq <= top, in_scope)
        .order_by(Record.seq)
        .limit(request.limit + 1)
    ).all()
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    new_cursor = rows[-1].seq if has_more else top
    removals = []
    if not reset:
        moved = session.execute(
            select(Removal.record_id, Record.grid_code)
            .join(Record, Record.id == Removal.record_id)
            .where(Removal.seq > cursor, Removal.seq <= new_cursor, scope.filter(Removal.grid_code))
        ).all()
        seen = set()
        for record_id, now_in in moved:
            if record_id not in seen and not scope.contains(now_in):
                seen.add(record_id)
                removals.append({"record_id": record_id, "reason": "scope"})
    checksum = None
    if not has_more:
        count, total = session.execute(
            select(
                func.coalesce(func.sum(GridDigest.count), 0),
                func.coalesce(func.sum(GridDigest.version_sum), 0),
            ).where(scope.filter(GridDigest.grid_code))
        ).one()
        checksum = {"count": int(count), "version_sum": int(total)}
    head = json.dumps(
        {
            "removals": removals,
            "cursor": new_cursor,
            "has_more": has_more,
            "reset": reset,
            "scope": scope.as_dict(),
            "checksum": checksum,
        },
        separators=(",", ":"),
    )
    body = '{"changes":[' + ",".join(r.snapshot for r in rows) + "]," + head[1:]
    return body.encode(), has_more


def _mark_synced(device_id: str) -> None:
    """Record when the device was last fully caught up (at most once a minute: the caller
    asks :meth:`Device.sync_mark_due` first, on the device as authenticated)."""
    db.session.execute(update(Device).where(Device.id == device_id).values(last_sync_at=utcnow()))
    db.session.commit()
