"""Answering a pull: the changes in the caller's scope after their cursor, one page at a time.

The cursor is the server's change sequence. The page reads the counter first and never returns
beyond it; writers allocate sequence numbers under the write lock and commit before the next
writer may allocate, so every sequence number at or below the counter is committed and visible:
no change can be skipped. The page is read in one snapshot (REPEATABLE READ on PostgreSQL, a
deferred WAL read on SQLite, which never waits for or blocks a writer), so the counter, the
records, the removals and the checksum agree with each other.

A record's snapshot is stored at write time as two JSON texts, its fields (``data``) and the rest
(``envelope``); a page is assembled by splicing and joining texts, nothing is re-encoded.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, or_, select, update

from server.db import read_phase, utcnow
from server.extensions import db
from server.models import Device, GridDigest, Record, Removal, SyncCounter, snapshot_text
from server.scope import Scope
from sync import PullRequest

__all__ = ["pull"]

# Core tables, not ORM entities: the page's statements return plain rows, and through the ORM
# each of them cost about twice as much CPU (compile state, loading) for the same SQL.
_RECORD = Record.__table__
_REMOVAL = Removal.__table__
_DIGEST = GridDigest.__table__
_COUNTER = SyncCounter.__table__
_DEVICE = Device.__table__


def _begin_snapshot() -> None:
    db.session.commit()  # end the authentication's transaction; the page gets its own
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def pull(request: PullRequest, *, device: Device, scope: Scope, mark_synced: bool = True) -> bytes:
    """One page of changes as UTF-8 JSON (a PullResponse). ``mark_synced=False``: the caller
    has kept the device's last sync already (a push it has just committed)."""
    due = mark_synced and device.sync_mark_due(utcnow())  # as authenticated
    _begin_snapshot()
    session = db.session
    with read_phase(session):  # on SQLite a WAL snapshot: a pull never takes the write lock
        body, has_more = _page(request, scope, device.id)
    session.commit()
    if not has_more and due:
        _mark_synced(device.id)
    return body


@functools.lru_cache(maxsize=1024)
def _statements(prefixes: tuple[str, ...], echo: bool = True) -> tuple[Any, Any, Any]:
    """A scope's three page statements, built once per scope (building them cost about as
    much as running them): the counter and checksum, the changes, the removals. Without
    ``echo``, the changes leave out the records that are still the asking device's own create
    (``echo_of``, bound as ``device``)."""
    where = Scope(prefixes).filter
    record, removal = _RECORD.c, _REMOVAL.c
    totals = select(
        select(_COUNTER.c.value).where(_COUNTER.c.name == "change").scalar_subquery(),
        func.coalesce(func.sum(_DIGEST.c.count), 0),
        func.coalesce(func.sum(_DIGEST.c.version_sum), 0),
    ).where(where(_DIGEST.c.grid_code))
    changes = (
        select(record.seq, record.envelope, cast(record.data, Text).label("data"))
        .where(
            record.seq > bindparam("cursor"),
            record.seq <= bindparam("top"),
            where(record.grid_code),
        )
        .order_by(record.seq)
        .limit(bindparam("rows"))
    )
    if not echo:
        changes = changes.where(
            or_(record.echo_of.is_(None), record.echo_of != bindparam("device"))
        )
    moved = (
        select(removal.record_id, record.grid_code)
        .join(_RECORD, record.id == removal.record_id)
        .where(
            removal.seq > bindparam("cursor"),
            removal.seq <= bindparam("until"),
            where(removal.grid_code),
        )
    )
    return totals, changes, moved


def _page(request: PullRequest, scope: Scope, device_id: str) -> tuple[bytes, bool]:
    conn = db.session.connection()
    reset = request.scope_token is not None and request.scope_token != scope.token
    # A page that starts the scope over sends everything: a device purges what left its old
    # scope, its own creates included, and must get them back if they are in the new one.
    totals, page_rows, moved_since = _statements(scope.prefixes, request.echo or reset)
    # The counter and the scope's checksum in one round trip. The checksum is sent only with
    # the last page, but it costs the number of grids in scope, less than a second statement.
    top, count, total = conn.execute(totals).one()
    top = top or 0
    cursor = 0 if reset else min(request.cursor, top)
    rows = conn.execute(
        page_rows,
        {"cursor": cursor, "top": top, "rows": request.limit + 1, "device": device_id},
    ).all()
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    new_cursor = rows[-1].seq if has_more else top
    removals = []
    if not reset:
        moved = conn.execute(moved_since, {"cursor": cursor, "until": new_cursor}).all()
        seen = set()
        for record_id, now_in in moved:
            if record_id not in seen and not scope.contains(now_in):
                seen.add(record_id)
                removals.append({"record_id": record_id, "reason": "scope"})
    checksum = None if has_more else {"count": int(count), "version_sum": int(total)}
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
    changes = ",".join([snapshot_text(r.envelope, r.data) for r in rows])
    body = '{"changes":[' + changes + "]," + head[1:]
    return body.encode(), has_more


def _mark_synced(device_id: str) -> None:
    """Record when the device was last fully caught up (at most once a minute: the caller
    asks :meth:`Device.sync_mark_due` first, on the device as authenticated)."""
    db.session.execute(
        update(_DEVICE).where(_DEVICE.c.id == device_id).values(last_sync_at=utcnow())
    )
    db.session.commit()
