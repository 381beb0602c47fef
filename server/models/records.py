"""Synced records and the sync bookkeeping around them.

- ``Record``: one row per record of any syncable type. ``data`` holds the current values (for
  the console's queries, and the one copy of each settled field's value), ``state`` the merge
  state (every live write of every field, compact JSON; a settled field is only its stamp),
  ``envelope`` the rest of what a pull sends — the snapshot without its fields, built at write
  time so that a pull splices two texts instead of re-encoding (``server.store.snapshot_text``).
  ``seq`` is the change sequence of its latest change. ``echo_of`` names the device whose own
  create the record still is (a pull can leave it out for that device; protocol 3).
- ``SyncOp``: the receipt of every operation a device pushed (idempotency key device_id + seq)
  and its payload, which is also the record's history with server time and batch; ``made_seq``
  for an operation the device numbered again (its twin in another copy of the store is found
  by it).
- ``Removal``: a record left a grid (reassignment); devices of that grid must drop it.
- ``SyncCounter``: the change sequence, allocated under the write lock so that sequence order is
  commit order (no pull can skip a change committed late).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server import jsontext
from server.db import UTCDateTime, utcnow
from server.extensions import db


def snapshot_text(envelope: str, data: str) -> str:
    """A record's snapshot (what a pull sends) as JSON text, from its ``envelope`` and ``data``
    columns as text: the fields spliced into the envelope, nothing decoded or encoded."""
    return '{"fields":' + data + "," + envelope[1:]


class Record(db.Model):
    __tablename__ = "record"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    grid_code: Mapped[str] = mapped_column(String(15))
    version: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    has_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    review: Mapped[dict | None] = mapped_column(JSON, default=None)
    author_id: Mapped[int | None] = mapped_column(Integer, default=None)
    device_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(Text)
    envelope: Mapped[str] = mapped_column(Text)
    # The device whose create the record still is, unchanged since (any later write clears
    # it): a pull may leave it out for that device, which holds it already.
    echo_of: Mapped[str | None] = mapped_column(String(64), default=None)

    @property
    def snapshot(self) -> str:
        """The snapshot a pull sends for this record, as JSON text."""
        return snapshot_text(self.envelope, jsontext.dumps(self.data))

    __table_args__ = (
        Index("ix_record_grid_seq", "grid_code", "seq"),
        Index("ix_record_type_grid_updated", "type", "grid_code", "updated_at"),
    )


class SyncOp(db.Model):
    __tablename__ = "sync_op"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(36), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(64))
    conflicts: Mapped[str | None] = mapped_column(String(500))
    user_id: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[str] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[str] = mapped_column(Text)
    # The number the device made the operation with, if it numbered it again (protocol §3):
    # how another copy's twin of it, numbered differently, is found. NULL for nearly all.
    made_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (
        Index(
            "ix_sync_op_device_made_seq",
            "device_id",
            "made_seq",
            sqlite_where=text("made_seq IS NOT NULL"),
            postgresql_where=text("made_seq IS NOT NULL"),
        ),
    )


class Removal(db.Model):
    __tablename__ = "removal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    record_id: Mapped[str] = mapped_column(String(36))
    grid_code: Mapped[str] = mapped_column(String(15))
    reason: Mapped[str] = mapped_column(String(32), default="scope")


class GridDigest(db.Model):
    """Per grid: how many records it holds and the sum of their versions — the record-set
    checksum of a scope is the sum over its grids, kept up to date by every write."""

    __tablename__ = "grid_digest"

    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    version_sum: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncCounter(db.Model):
    __tablename__ = "sync_counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = ["GridDigest", "Record", "Removal", "SyncCounter", "SyncOp", "snapshot_text"]
