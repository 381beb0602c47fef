"""Loading the synthetic district and the code tables into a database (``linli load-fixtures``).

Records are loaded the way devices would have made them: each is a create operation by the
grid's worker, merged by the same rule and written by the same record store as a push, so the
loaded data has real per-field provenance and history. Disputes also get their workflow part
(status, responsible person, due date) and their case steps as server changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text

from fixtures import (
    DEFAULT_TODAY,
    DEMO_PASSWORD,
    code_table_versions,
    generate_units,
    generate_users,
    iter_records,
    load_code_tables,
)
from server import audit
from server.codes import forget
from server.db import utcnow
from server.extensions import db
from server.models import AdminUnit, CodeEntry, Record, User, UserGrid
from server.passwords import hash_password
from server.store import RecordBatch
from sync import HybridClock, Operation, OpKind, merge

__all__ = ["LoadReport", "load_code_tables_into_db", "load_district", "refresh_statistics"]

_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class LoadReport:
    units: int
    users: int
    records: int
    seconds: float


def load_code_tables_into_db() -> int:
    """Replace the code tables with those shipped in fixtures/data; return the entry count."""
    versions = code_table_versions()
    db.session.execute(delete(CodeEntry))
    rows = []
    for table, entries in load_code_tables().items():
        for e in entries:
            extra = {k: v for k, v in e.items() if k not in ("code", "label", "parent")}
            rows.append(
                CodeEntry(
                    table_name=table,
                    code=e["code"],
                    label=e["label"],
                    parent_code=e.get("parent"),
                    data=extra,
                    version=versions[table],
                )
            )
    db.session.add_all(rows)
    db.session.commit()
    forget()
    return len(rows)


def _clock_at(moment: str | None) -> HybridClock:
    when = (
        datetime.fromisoformat(moment)
        if moment
        else datetime.combine(DEFAULT_TODAY, datetime.min.time())
    )
    return HybridClock("fixtures", now=lambda: int(when.timestamp() * 1000))


def load_district(
    size: str = "demo", seed: int = 1, progress: Callable[[str, int], None] | None = None
) -> LoadReport:
    """Load units, users and records of a generated district into an empty database."""
    started = time.perf_counter()
    if db.session.scalar(select(func.count()).select_from(Record)):
        raise RuntimeError("the database already holds records; load into an empty one")
    units = generate_units(size, seed)
    for unit in units:
        if db.session.get(AdminUnit, unit.code) is None:
            db.session.add(
                AdminUnit(
                    code=unit.code, name=unit.name, level=unit.level, parent_code=unit.parent_code
                )
            )
    db.session.flush()
    users = generate_users(units, seed)
    password_hash = hash_password(DEMO_PASSWORD)  # one hash: every demo account shares it
    by_grid: dict[str, int] = {}
    for u in users:
        user = User(
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            unit_code=u.unit_code,
            password_hash=password_hash,
            grids=[UserGrid(grid_code=g) for g in u.grid_codes],
        )
        db.session.add(user)
        db.session.flush()
        for g in u.grid_codes:
            by_grid.setdefault(g, user.id)
    db.session.commit()
    count = 0
    for chunk in _chunks(iter_records(size, seed, units=units), _CHUNK):
        _load_chunk(chunk, by_grid, count + 1)
        count += len(chunk)
        if progress:
            progress("records", count)
    audit.record(
        "cli",
        "fixtures.load",
        f"district:{size}",
        {"seed": seed, "units": len(units), "users": len(users), "records": count},
    )
    db.session.commit()
    refresh_statistics()
    return LoadReport(len(units), len(users), count, time.perf_counter() - started)


def refresh_statistics() -> None:
    """After a bulk load on PostgreSQL, give the planner the tables' statistics at once.

    Until autovacuum gets to it, a freshly filled table has none; a pull's scope filter is
    then estimated at a few rows and planned as a scan and sort of every record in the change
    range (a page of 2,000 took 450 ms instead of 5 ms over 100,000 records). SQLite plans
    these queries by its indexes alone.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE record, sync_op, grid_digest"))
        db.session.commit()


def _chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_chunk(records: list[Any], by_grid: dict[str, int], first_seq: int) -> None:
    batch = RecordBatch(db.session, None)
    recent = utcnow() - timedelta(days=3)
    for seq, r in enumerate(records, start=first_seq):
        when = r.fields.get("visited_at") or getattr(r, "reported_at", None)
        clock = _clock_at(when)
        op = Operation(
            device_id="fixtures",
            seq=seq,
            kind=OpKind.CREATE,
            record_type=r.type,
            record_id=r.id,
            base_version=0,
            hlc=str(clock.now()),
            author=str(by_grid.get(r.fields["grid_code"], "")),
            fields=r.fields,
        )
        result = merge(None, op)
        rec = batch.apply(None, op, result, grid_code=r.fields["grid_code"])
        batch.receipt(op, result)
        rec.author_id = by_grid.get(r.fields["grid_code"])
        rec.device_id = "fixtures"
        created = datetime.fromisoformat(when) if when else None
        if created is not None:
            rec.created_at = created
        if created is None or created < recent:
            rec.review_status = "approved"
            rec.review = {
                "status": "approved",
                "comment": None,
                "by": "fixtures",
                "at": (created or utcnow()).isoformat(timespec="seconds"),
            }
        if r.type == "dispute":
            _dispute(batch, rec, r)
    batch.write()
    db.session.commit()


def _dispute(batch: RecordBatch, rec: Any, dispute: Any) -> None:
    server = {k: v for k, v in dispute.server.items() if v is not None}
    for step in dispute.steps:
        item = {k: v for k, v in step.items()}
        op = Operation(
            device_id="server",
            seq=batch.next_server_seq(),
            kind=OpKind.APPEND,
            record_type="dispute",
            record_id=rec.id,
            base_version=rec.state.version,
            hlc=str(_clock_at(step.get("at")).now()),
            author="",
            collection="steps",
            item=item,
        )
        batch.apply(rec, op, merge(rec.state, op))
    if server:
        batch.server_write(rec, server)
