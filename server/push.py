"""Applying a device's push: one transaction, one result per operation, in order.

Each operation is checked in turn — replay (receipt), clock, jurisdiction, server-owned fields,
validation, workflow — and merged; a rejected operation is answered on its own and never blocks
the ones behind it. The whole batch is written with a few set-based statements and committed
once: either every result the device receives is durable, or none is.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import select

from server import audit
from server.cases import case_state, local_today, open_new_case, step_item
from server.codes import CodeBook, codebook
from server.db import utcnow
from server.extensions import db
from server.models import AdminUnit, Device, SyncOp, User
from server.scope import Scope
from server.store import RecordBatch, StoredRecord
from sync import (
    DELETED,
    HLC,
    TRANSIENT_REASONS,
    MalformedOperation,
    MergeResult,
    Operation,
    OpKind,
    OpResult,
    Outcome,
    PushRequest,
    PushResponse,
    Reason,
    Receipt,
    apply_operation,
    merge,
    validate_fields,
)
from sync.workflow import Refused, decide

__all__ = ["push"]

_NOTE_MAX = 4000


class _OutOfScope(Exception):
    """The record exists, but outside the caller's jurisdiction."""


class _Refusal(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message


def _receipts(device_id: str, seqs: list[int]) -> dict[int, Receipt]:
    found: dict[int, Receipt] = {}
    for start in range(0, len(seqs), 500):
        rows = db.session.execute(
            select(SyncOp).where(
                SyncOp.device_id == device_id, SyncOp.seq.in_(seqs[start : start + 500])
            )
        ).scalars()
        for r in rows:
            found[r.seq] = Receipt(
                f"{r.device_id}:{r.seq}",
                r.digest,
                Outcome(r.outcome),
                r.record_id,
                r.version,
                r.reason,
                tuple(r.conflicts.split(",")) if r.conflicts else (),
            )
    return found


def _grids(codes: set[str]) -> set[str]:
    if not codes:
        return set()
    rows = db.session.execute(
        select(AdminUnit.code).where(AdminUnit.code.in_(codes), AdminUnit.level == "grid")
    )
    return {r.code for r in rows}


class _Pusher:
    def __init__(self, user: User, device: Device, scope: Scope, book: CodeBook) -> None:
        self.user, self.device, self.scope, self.book = user, device, scope, book
        self.batch = RecordBatch(db.session, user.id)
        self.today: date = local_today(self.batch.now)
        self.max_ahead_ms = current_app.config["MAX_CLOCK_DRIFT_MS"]
        self.now_ms = int(self.batch.now.timestamp() * 1000)
        self.codes = book.sets()

    def run(self, request: PushRequest) -> list[OpResult]:
        ops = [o for o in request.operations if isinstance(o, Operation)]
        self.prior = _receipts(self.device.id, sorted({o.seq for o in ops}))
        self.batch.load(o.record_id for o in ops)
        self.valid_grids = _grids(
            {
                o.fields.get("grid_code")
                for o in ops
                if o.kind is OpKind.CREATE and isinstance(o.fields.get("grid_code"), str)
            }
        )
        results = []
        for item in request.operations:
            if isinstance(item, MalformedOperation):
                results.append(
                    OpResult(
                        item.key,
                        Outcome.REJECTED,
                        reason=item.error.code,
                        message=item.error.message,
                    )
                )
            else:
                results.append(self.one(replace(item, author=str(self.user.id))))
        self.batch.write()
        return results

    def one(self, op: Operation) -> OpResult:
        rec = self.batch.records.get(op.record_id)
        receipt = self.prior.get(op.seq)
        if receipt is not None:
            result = apply_operation(rec.state if rec else None, op, receipt=receipt)
            return _result(op, result)
        try:
            self.check(op, rec)
            result = self.merge(op, rec)
        except _OutOfScope:
            # Answer exactly as for a record that does not exist: nothing about it leaks.
            result = (
                merge(None, op)
                if op.kind is not OpKind.CREATE
                else MergeResult(Outcome.REJECTED, None, None, Reason.RECORD_EXISTS)
            )
            self.keep(op, result)
            return _result(op, result)
        except _Refusal as refusal:
            result = MergeResult(
                Outcome.REJECTED, None, rec.state.version if rec else None, refusal.reason
            )
            if refusal.reason not in TRANSIENT_REASONS:
                self.keep(op, result)
            return _result(op, result, refusal.message)
        self.keep(op, result)
        return _result(op, result)

    def keep(self, op: Operation, result: MergeResult) -> None:
        canonical = op.canonical()  # once: the stored receipt and the replay check share it
        self.batch.receipt(op, result, canonical=canonical)
        self.prior[op.seq] = Receipt(
            op.key,
            op.digest(canonical),
            result.outcome,
            op.record_id,
            result.version,
            result.reason,
            result.conflicts,
        )

    def check(self, op: Operation, rec: StoredRecord | None) -> None:
        if HLC.parse(op.hlc).wall > self.now_ms + self.max_ahead_ms:
            raise _Refusal(
                Reason.CLOCK_AHEAD,
                "the device clock is ahead of the server's; "
                "correct it and send the operation again",
            )
        if rec is not None and not self.scope.contains(rec.grid_code):
            raise _OutOfScope
        if rec is None and op.kind is OpKind.CREATE:
            grid = op.fields.get("grid_code")
            if not isinstance(grid, str) or grid not in self.valid_grids:
                raise _Refusal(Reason.INVALID_FIELDS, "grid_code: not a known grid")
            if not self.scope.contains(grid):
                raise _Refusal(Reason.FORBIDDEN, f"grid {grid} is outside your jurisdiction")
        if op.kind in (OpKind.UPDATE, OpKind.RESOLVE) and "grid_code" in op.fields:
            raise _Refusal(
                Reason.FORBIDDEN,
                "grid_code: moving a record to another grid is "
                "done by a community head, not by an edit",
            )
        if op.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
            fields = {
                k: v
                for k, v in op.fields.items()
                if not (op.kind is OpKind.RESOLVE and k == DELETED)
            }
            if op.kind is OpKind.RESOLVE and DELETED in op.fields:
                if not isinstance(op.fields[DELETED], bool):
                    raise _Refusal(Reason.INVALID_FIELDS, "_deleted: must be true or false")
                if rec is None or DELETED not in rec.state.conflicts():
                    raise _Refusal(
                        Reason.INVALID_FIELDS,
                        "_deleted: only an open delete/edit conflict can be resolved this way",
                    )
            errors = validate_fields(
                op.record_type, fields, partial=op.kind is not OpKind.CREATE, codes=self.codes
            )
            if errors:
                raise _Refusal(
                    Reason.INVALID_FIELDS, "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
                )
        if op.kind is OpKind.APPEND and op.collection == "notes":
            text = op.item.get("text") if op.item else None
            if not isinstance(text, str) or not text.strip() or len(text) > _NOTE_MAX:
                raise _Refusal(
                    Reason.INVALID_FIELDS,
                    f"item.text: a note needs text of 1-{_NOTE_MAX} characters",
                )

    def merge(self, op: Operation, rec: StoredRecord | None) -> MergeResult:
        if op.kind is OpKind.APPEND and op.collection == "steps":
            return self.step(op, rec)
        result = merge(rec.state if rec else None, op)
        if result.outcome is Outcome.REJECTED:
            return result
        grid = op.fields.get("grid_code") if rec is None else None
        rec = self.batch.apply(rec, op, result, grid_code=grid)
        if result.changed and rec is not None:
            self.resubmitted(rec)
            if op.kind is OpKind.CREATE and op.record_type == "dispute":
                open_new_case(
                    self.batch, rec, self.user.role, actor=self.user.display_name, today=self.today
                )
        return result

    def step(self, op: Operation, rec: StoredRecord | None) -> MergeResult:
        """A workflow action made on the device: decided here, by the server's rules."""
        if rec is None:
            raise _Refusal(Reason.UNKNOWN_RECORD, "no such case")
        item = dict(op.item or {})
        params = item.get("params") if isinstance(item.get("params"), dict) else {}
        if item.get("opinion"):
            params = {**params, "opinion": item["opinion"]}
        decision = decide(
            case_state(rec.state.values(), self.book),
            str(item.get("action")),
            self.user.role,
            params,
            today=self.today,
            rules=self.book.rules,
        )
        if isinstance(decision, Refused):
            raise _Refusal(Reason.ILLEGAL_TRANSITION, f"{decision.reason_code}: {decision.message}")
        stored = replace(
            op,
            item=step_item(
                item,
                decision,
                actor=self.user.display_name,
                at=self.batch.now.isoformat(timespec="seconds"),
            ),
        )
        result = merge(rec.state, stored)
        if result.outcome is Outcome.REJECTED:
            return result
        self.batch.apply(rec, stored, result)
        if result.changed:
            self.batch.server_write(rec, decision.changes)
            self.resubmitted(rec)
        return result

    def resubmitted(self, rec: StoredRecord) -> None:
        """A device changed the record: it needs a (new) review."""
        if rec.review_status != "pending":
            rec.review_status = "pending"
            rec.review = {
                **(rec.review or {}),
                "status": "pending",
                "resubmitted_at": self.batch.now.isoformat(timespec="seconds"),
            }


def _result(op: Operation, result: MergeResult, message: str | None = None) -> OpResult:
    return OpResult(
        op.key,
        result.outcome,
        op.record_id,
        result.version,
        result.reason,
        message,
        result.conflicts,
        result.original,
    )


def push(request: PushRequest, *, user: User, device: Device, scope: Scope) -> PushResponse:
    """Apply a push in one transaction and commit it."""
    pusher = _Pusher(user, device, scope, codebook())
    results = pusher.run(request)
    counts: dict[str, Any] = {}
    for r in results:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    audit.record(
        user.username,
        "sync.push",
        f"device:{device.id}",
        {"batch": pusher.batch.batch_id, "operations": len(results), **counts},
    )
    device.last_sync_at = utcnow()
    db.session.commit()
    return PushResponse(results, int(utcnow().timestamp() * 1000))
