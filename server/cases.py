"""Dispute cases on the server: the workflow of sync.workflow applied to stored records.

A transition is decided by the pure rules (``sync.workflow.decide``) against the case's current
values and the actor's role, then written as two changes to the record: the step appended to
the append-only ``steps`` collection (actor, time, from → to, opinion), and the server-owned
fields the transition sets (status, responsible person, due date, ...). Both go through the
same merge as every edit, so they reach devices through the ordinary pull.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from server.codes import CodeBook
from server.store import SERVER_DEVICE, RecordBatch, StoredRecord, server_hlc
from sync import Operation, OpKind, merge
from sync.workflow import Allowed, CaseState, Refused, decide, open_case

__all__ = ["case_state", "local_today", "open_new_case", "step_item", "transition"]


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def case_state(values: dict[str, Any], book: CodeBook) -> CaseState:
    """The workflow's view of a dispute record's current values."""
    return CaseState(
        status=values.get("status") or "reported",
        category=values.get("category") or "",
        rule_code=book.rule_code_for_category(values.get("category")),
        accepted_on=_date(values.get("accepted_on")),
        due_date=_date(values.get("due_date")),
        extension_used=bool(values.get("extension_used")),
        extension_days=int(values.get("extension_days") or 0),
        extension_pending=values.get("extension_pending"),
        supervision=values.get("supervision"),
    )


def step_item(base: dict[str, Any], allowed: Allowed, *, actor: str, at: str) -> dict[str, Any]:
    """The case step as stored: what the device sent, plus what the server decided."""
    return {**base, **allowed.step, "by": actor, "at": at}


def open_new_case(
    batch: RecordBatch, rec: StoredRecord, role: str, *, actor: str, today: date
) -> None:
    """Give a newly screened dispute its initial status and its first step (reported)."""
    decision = open_case(role, today=today)
    if isinstance(decision, Allowed):
        _append_step(batch, rec, decision, actor=actor)
        batch.server_write(rec, decision.changes)


def transition(
    batch: RecordBatch,
    rec: StoredRecord,
    action: str,
    params: dict[str, Any],
    *,
    role: str,
    actor: str,
    book: CodeBook,
    today: date,
    opinion: str | None = None,
) -> Allowed | Refused:
    """A person's workflow action from the console: decide, then append the step and write."""
    full = {**params, **({"opinion": opinion} if opinion else {})}
    decision = decide(
        case_state(rec.state.values(), book), action, role, full, today=today, rules=book.rules
    )
    if isinstance(decision, Refused):
        return decision
    _append_step(batch, rec, decision, actor=actor)
    batch.server_write(rec, decision.changes)
    return decision


def _append_step(batch: RecordBatch, rec: StoredRecord, decision: Allowed, *, actor: str) -> None:
    item = step_item(
        {"id": str(uuid.uuid4())}, decision, actor=actor, at=batch.now.isoformat(timespec="seconds")
    )
    op = Operation(
        device_id=SERVER_DEVICE,
        seq=batch.next_server_seq(),
        kind=OpKind.APPEND,
        record_type="dispute",
        record_id=rec.id,
        base_version=rec.state.version,
        hlc=server_hlc(),
        author=str(batch.user_id or ""),
        collection="steps",
        item=item,
    )
    result = merge(rec.state, op)
    batch.apply(rec, op, result)
    batch.receipt(op, result)


def local_today(now: datetime) -> date:
    """The calendar date where the district is (deadlines count local days)."""
    return now.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date()
