"""The audit trail: append entries to a hash chain, and verify the chain.

``record`` adds to the caller's transaction (it does not commit). Appends are serialised: on
PostgreSQL by a transaction-scoped advisory lock taken before the last hash is read, on SQLite by
the BEGIN IMMEDIATE every transaction starts with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from server.db import utcnow
from server.extensions import db
from server.models import GENESIS_HASH, AuditEntry

_PG_LOCK_KEY = 0x4C494E4C49  # "LINLI"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str, payload: Any
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


_ENTRY = AuditEntry.__table__
# Built once; run as Core statements on the session's connection. Through the ORM (a query, an
# object added and flushed) an entry cost about twice the CPU for the same three statements.
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_LAST = select(_ENTRY.c.seq, _ENTRY.c.hash).order_by(_ENTRY.c.seq.desc()).limit(1)
_APPEND = _ENTRY.insert()


def record(actor: str, action: str, target: str, payload: dict[str, Any] | None = None) -> None:
    """Append one entry to the chain within the current transaction (written at once; the
    caller commits)."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": _PG_LOCK_KEY})
    last = conn.execute(_LAST).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
    payload = payload or {}
    at = utcnow()
    conn.execute(
        _APPEND,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "target": target,
            "payload": canonical_json(payload),
            "prev_hash": prev_hash,
            "hash": entry_hash(prev_hash, seq, at, actor, action, target, payload),
        },
    )


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(batch_size: int = 1000) -> ChainReport:
    """Walk the chain in seq order; report the first entry that does not link or hash."""
    result = db.session.execute(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    )
    with result:  # closes the server-side cursor when the walk stops early
        return _walk(result.scalars())


def _walk(rows: Any) -> ChainReport:
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for entry in rows:
        checked += 1
        if entry.seq != expected_seq:
            return ChainReport(False, checked, entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev_hash:
            return ChainReport(False, checked, entry.seq, "prev_hash does not link")
        try:
            payload = json.loads(entry.payload)
        except ValueError:
            return ChainReport(False, checked, entry.seq, "payload is not JSON")
        recomputed = entry_hash(
            prev_hash, entry.seq, entry.at, entry.actor, entry.action, entry.target, payload
        )
        if recomputed != entry.hash:
            return ChainReport(False, checked, entry.seq, "hash does not match content")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return ChainReport(True, checked)


__all__ = ["ChainReport", "canonical_json", "entry_hash", "record", "verify_chain"]
