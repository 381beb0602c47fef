"""The benchmark's record shape and the raw limits it is compared with.

A record is a visit (走访记录) with the visited resident's details, about 0.7–1 KB of JSON as a
pushed operation, built from the synthetic district's own visits (names, addresses, findings
and ID numbers are generated; none is a real person's). The raw limits are what no sync
protocol can beat on this machine: ``executemany`` of the same rows into SQLite in one
transaction, and the gzip size of the same records (the wire floor).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any

from fixtures import iter_records
from sync.ids import uuid7_at

__all__ = ["gzip_floor", "raw_sqlite_rate", "storage_floor_rate", "visit_fields", "visits"]


@cache
def _templates() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    residents: dict[str, dict[str, Any]] = {}
    found: list[dict[str, Any]] = []
    for record in iter_records("small", seed=7):
        if record.type == "resident":
            residents[record.id] = record.fields
        elif record.type == "visit":
            found.append(record.fields)
    return found, residents


def visit_fields(rng: random.Random, grid_code: str) -> dict[str, Any]:
    """One visit's fields, resident details filled in (phone and ID number always present)."""
    found, residents = _templates()
    base = rng.choice(found)
    other = rng.choice(found)
    resident = residents.get(base["resident_id"], {})
    return {
        **base,
        "grid_code": grid_code,
        "household_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "resident_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "findings": f"{base['findings']}{other['findings']}",
        "resident_phone": resident.get("phone") or base.get("resident_phone") or "17100000000",
        "resident_id_number": resident.get("id_number") or base.get("resident_id_number"),
    }


_EPOCH_MS = 1_795_000_000_000  # the made-up moment the synthetic records were made


def visits(count: int, grid_code: str, seed: int = 1) -> Iterator[tuple[str, dict[str, Any]]]:
    """``count`` (record id, fields) pairs of visits in ``grid_code``, fixed by ``seed``; the
    ids are time-ordered as the SDK makes them (``sync.ids``), one millisecond apart."""
    rng = random.Random(f"linli-bench:{seed}:{grid_code}")
    for n in range(count):
        rid = str(uuid7_at(_EPOCH_MS + n, rng.randbytes(10)))
        yield rid, visit_fields(rng, grid_code)


def _rows(records: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [
        json.dumps({"id": rid, "type": "visit", "fields": f}, ensure_ascii=False).encode()
        for rid, f in records
    ]


def gzip_floor(records: list[tuple[str, dict[str, Any]]]) -> int:
    """Bytes of the records as one gzip-compressed JSON array: what the wire cannot go below."""
    return len(gzip.compress(b"[" + b",".join(_rows(records)) + b"]", compresslevel=6))


def raw_sqlite_rate(
    records: list[tuple[str, dict[str, Any]]], directory: str | None = None
) -> float:
    """Records/s of ``executemany`` of the same rows into a SQLite file in one transaction
    (WAL, synchronous=FULL as the server's database), JSON encoding included."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "raw.sqlite3"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE record (id TEXT PRIMARY KEY, type TEXT, grid_code TEXT, data TEXT)"
        )
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO record VALUES (?, ?, ?, ?)",
            (
                (rid, "visit", f["grid_code"], json.dumps(f, ensure_ascii=False))
                for rid, f in records
            ),
        )
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.close()
    return len(records) / seconds


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return int(value) if isinstance(value, bool) else value


def storage_floor_rate(url: str, batch: int, directory: str | None = None) -> float:
    """Records/s of storing, and nothing else, what the server stored for the records of the
    database at ``url``: each record's row and its operation's receipt, read back as they were
    written, inserted into a fresh SQLite file with the server's own tables and indexes (WAL,
    synchronous=FULL) by ``executemany``, ``batch`` records a transaction as a push commits
    them. No request, decoding, checks or merge: what the apply path cannot go below with this
    schema, where :func:`raw_sqlite_rate` is one row of one table in one transaction."""
    from sqlalchemy import JSON, Text, cast, create_engine, select

    from server.models import Record, SyncOp

    tables = (Record.__table__, SyncOp.__table__)
    source = create_engine(url)
    try:
        with source.connect() as conn:
            rows = [
                [
                    tuple(map(_sqlite_value, row))
                    for row in conn.execute(
                        select(
                            *[cast(c, Text) if isinstance(c.type, JSON) else c for c in t.c]
                        ).order_by(t.c.seq)
                    )
                ]
                for t in tables
            ]
    finally:
        source.dispose()
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = os.path.join(tmp, "floor.sqlite3")
        engine = create_engine(f"sqlite:///{path}")
        for table in tables:
            table.create(engine)  # with its indexes
        engine.dispose()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        inserts = [
            f"INSERT INTO {t.name} ({', '.join(t.c.keys())}) VALUES ({', '.join('?' * len(t.c))})"
            for t in tables
        ]
        records = len(rows[0])
        batches = max(1, -(-records // batch))
        # Each table in as many transactions, its rows spread evenly (a record may have more
        # than one receipt).
        steps = [max(1, -(-len(table_rows) // batches)) for table_rows in rows]
        started = time.perf_counter()
        for n in range(batches):
            conn.execute("BEGIN IMMEDIATE")
            for insert, table_rows, step in zip(inserts, rows, steps, strict=True):
                conn.executemany(insert, table_rows[n * step : (n + 1) * step])
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        stored = [conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in tables]
        conn.close()
    if stored != [len(table_rows) for table_rows in rows]:
        raise RuntimeError(f"storage floor: stored {stored} rows of {[len(r) for r in rows]}")
    return records / seconds if records and seconds > 0 else 0.0
