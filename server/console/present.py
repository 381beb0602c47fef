"""How a record is shown: summary line, fields with provenance, conflicts, history, notes.

Sensitive values (ID numbers, phones, health tags) are masked here, in one place, before any
template sees them; only the reveal view shows one value, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from server.codes import CodeBook
from server.console.labels import (
    DEADLINE_CLASSES,
    KIND_LABELS,
    OUTCOME_LABELS,
    device_time,
    field_label,
    local,
    show_value,
)
from server.extensions import db
from server.models import Device, Record, SyncOp, User
from server.privacy import mask_value, sensitive_fields
from server.store import SERVER_DEVICE, stored_state
from sync import DELETED, RecordState, Write
from sync.deadlines import deadline_status
from sync.schema import RECORD_TYPES


def summary(record_type: str, data: dict[str, Any]) -> str:
    """One line naming the record (never a sensitive value)."""
    if record_type == "dispute":
        return data.get("title") or "（无标题）"
    if record_type == "resident":
        return data.get("name") or "（无姓名）"
    if record_type == "household":
        return data.get("address") or "（无地址）"
    when = (data.get("visited_at") or "")[:16].replace("T", " ")
    who = data.get("resident_name") or data.get("address") or ""
    return f"{when} {who}".strip() or "走访记录"


def case_summary(data: dict[str, Any], book: CodeBook, today: date) -> dict[str, Any]:
    """Status label and deadline traffic light of a dispute case."""
    status = data.get("status") or "reported"
    result = {
        "status": status,
        "status_label": book.label("dispute_statuses", status),
        "due": data.get("due_date") or "",
        "deadline": "",
        "deadline_class": "",
    }
    if result["due"] and status not in ("closed", "rejected"):
        try:
            due = date.fromisoformat(result["due"])
            warn = book.rules.rule_for(book.rule_code_for_category(data.get("category"))).warn_days
        except (ValueError, KeyError):
            return result
        state = deadline_status(due, today, warn)
        result.update(deadline=state.label_zh, deadline_class=DEADLINE_CLASSES[state.value])
    return result


@dataclass
class Who:
    """Names of the people and devices a record's writes point to."""

    users: dict[str, str] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    received: dict[tuple[str, int], datetime] = field(default_factory=dict)

    def user(self, user_id: Any) -> str:
        key = str(user_id) if user_id not in (None, "") else ""
        return self.users.get(key, f"用户 {key}" if key else "系统")

    def device(self, device_id: str) -> str:
        if device_id == SERVER_DEVICE:
            return "服务器（控制台）"
        return self.devices.get(device_id, device_id[:8])

    def server_time(self, write: Write) -> str:
        return local(self.received.get((write.device_id, write.seq)))


def history(record_id: str) -> list[SyncOp]:
    return list(
        db.session.execute(
            select(SyncOp)
            .where(SyncOp.record_id == record_id)
            .order_by(SyncOp.received_at, SyncOp.seq)
        ).scalars()
    )


def who_for(state: RecordState, ops: list[SyncOp]) -> Who:
    writes = [w for ws in state.fields.values() for w in ws]
    writes += [w for items in state.collections.values() for w in items.values()]
    user_ids = {int(w.author) for w in writes if str(w.author).isdigit()}
    user_ids |= {op.user_id for op in ops if op.user_id is not None}
    device_ids = {w.device_id for w in writes} | {op.device_id for op in ops}
    who = Who(received={(op.device_id, op.seq): op.received_at for op in ops})
    if user_ids:
        who.users = {
            str(r.id): r.display_name
            for r in db.session.execute(
                select(User.id, User.display_name).where(User.id.in_(user_ids))
            )
        }
    if device_ids:
        who.devices = {
            r.id: r.name or r.id[:8]
            for r in db.session.execute(
                select(Device.id, Device.name).where(Device.id.in_(device_ids))
            )
        }
    return who


def _shown(book: CodeBook, rtype: str, name: str, value: Any) -> str:
    return show_value(book, rtype, name, mask_value(rtype, name, value))


def _write_view(book: CodeBook, rtype: str, name: str, write: Write, who: Who) -> dict[str, Any]:
    return {
        "value": _shown(book, rtype, name, write.value),
        "author": who.user(write.author),
        "device": who.device(write.device_id),
        "device_time": device_time(write.hlc),
        "server_time": who.server_time(write),
        "version": write.version,
    }


def field_rows(book: CodeBook, state: RecordState, who: Who) -> list[dict[str, Any]]:
    """Every current field (schema order first), masked, with who set it, where and when."""
    rtype = RECORD_TYPES.get(state.record_type)
    declared = list(rtype.fields) if rtype else []
    names = declared + sorted(n for n in state.fields if n not in declared and n != DELETED)
    sensitive = sensitive_fields(state.record_type)
    conflicted = set(state.conflicts())
    rows = []
    for name in names:
        write = state.provenance(name)
        if write is None:
            continue
        row = _write_view(book, state.record_type, name, write, who)
        row.update(
            name=name,
            label=field_label(name),
            sensitive=name in sensitive,
            conflict=name in conflicted,
            empty=write.value in (None, "", []),
        )
        rows.append(row)
    return rows


def conflict_views(book: CodeBook, state: RecordState, who: Who) -> list[dict[str, Any]]:
    """Each field in conflict, with every competing value (masked if sensitive) and author."""
    rtype = RECORD_TYPES.get(state.record_type)
    out = []
    for name, writes in state.conflicts().items():
        spec = rtype.fields.get(name) if rtype else None
        current = state.provenance(name)
        out.append(
            {
                "name": name,
                "label": field_label(name),
                "kind": "deleted" if name == DELETED else (spec.kind if spec else "text"),
                "sensitive": name in sensitive_fields(state.record_type),
                "writes": [
                    {
                        **_write_view(book, state.record_type, name, w, who),
                        "index": i,
                        "current": w == current,
                    }
                    for i, w in enumerate(writes)
                ],
            }
        )
    return out


def _op_changes(book: CodeBook, rtype: str, payload: dict[str, Any]) -> str:
    if payload.get("kind") == "append":
        item = payload.get("item") or {}
        if payload.get("collection") == "notes":
            return f"备注：{item.get('text') or ''}"
        opinion = f"（{item['opinion']}）" if item.get("opinion") else ""
        return f"办理环节：{book.label('step_actions', item.get('action'))}{opinion}"
    fields = payload.get("fields") or {}
    parts = [f"{field_label(k)}={_shown(book, rtype, k, v)}" for k, v in fields.items()]
    if payload.get("reason"):
        parts.append(f"理由：{payload['reason']}")
    return "；".join(parts)


def history_rows(book: CodeBook, rtype: str, ops: list[SyncOp], who: Who) -> list[dict[str, Any]]:
    rows = []
    for op in ops:
        try:
            payload = json.loads(op.payload)
        except ValueError:
            payload = {}
        rows.append(
            {
                "server_time": local(op.received_at),
                "device_time": device_time(payload.get("hlc")),
                "user": who.user(op.user_id),
                "device": who.device(op.device_id),
                "kind": KIND_LABELS.get(payload.get("kind"), payload.get("kind") or ""),
                "outcome": OUTCOME_LABELS.get(op.outcome, op.outcome),
                "outcome_code": op.outcome,
                "version": op.version,
                "reason": op.reason or "",
                "changes": _op_changes(book, rtype, payload),
            }
        )
    return rows


def notes(state: RecordState, who: Who) -> list[dict[str, Any]]:
    entries = sorted(state.collections.get("notes", {}).values(), key=lambda w: w.rank)
    return [
        {
            "text": str((w.value or {}).get("text", "")),
            "author": who.user(w.author),
            "device": who.device(w.device_id),
            "device_time": device_time(w.hlc),
            "server_time": who.server_time(w),
        }
        for w in entries
    ]


def load_state(rec: Record) -> RecordState:
    return stored_state(rec.state, rec.data)


__all__ = [
    "Who",
    "case_summary",
    "conflict_views",
    "field_rows",
    "history",
    "history_rows",
    "load_state",
    "notes",
    "summary",
    "who_for",
]
