"""One record: current values with provenance, history, conflicts, review, case, move, reveal.

Every route loads the record through the user's scope first: outside it, or missing, is 404.
Writes go through ``server.actions`` (which audit and commit); a refusal re-renders the page
with the reason in Chinese (422).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server import actions, audit
from server.codes import codebook
from server.console import bp
from server.console.auth import current_user, reviewer
from server.console.cases import panel, params_from_form
from server.console.forms import FormError, parse_value, reason, text
from server.console.labels import REVIEW_LABELS, TYPE_LABELS, field_label, show_value, today_local
from server.console.messages import chinese
from server.console.present import (
    conflict_views,
    field_rows,
    history,
    history_rows,
    load_state,
    notes,
    summary,
    who_for,
)
from server.console.queue import grids_in_scope, unit_names
from server.errors import ValidationFailed
from server.extensions import db
from server.models import AccessLog, Record
from server.privacy import sensitive_fields
from sync import DELETED
from sync.schema import RECORD_TYPES

MOVABLE_TYPES = ("resident", "household")


def load(record_id: str) -> Record:
    """The record, if it exists and lies in the user's jurisdiction; 404 otherwise."""
    rec = db.session.execute(select(Record).where(Record.id == record_id[:36])).scalar()
    if rec is None or not g.scope.contains(rec.grid_code):
        abort(404)
    return rec


def render(rec: Record, *, error: str | None = None, status: int = 200) -> Any:
    book, user = codebook(), current_user()
    state = load_state(rec)
    ops = history(rec.id)
    who = who_for(state, ops)
    case = panel(book, state, user.role, today_local()) if rec.type == "dispute" else None
    grid_name = unit_names({rec.grid_code}).get(rec.grid_code, rec.grid_code)
    fields = field_rows(book, state, who)
    for row in fields:
        if row["name"] == "grid_code" and row["value"] == rec.grid_code:
            row["value"] = f"{grid_name}（{rec.grid_code}）"
    present_sensitive = [
        (n, field_label(n))
        for n in sorted(sensitive_fields(rec.type))
        if state.provenance(n) is not None and state.provenance(n).value not in (None, "", [])
    ]
    return render_template(
        "console/record.html",
        rec=rec,
        state=state,
        error=error,
        title=summary(rec.type, rec.data),
        type_label=TYPE_LABELS.get(rec.type, rec.type),
        review_label=REVIEW_LABELS.get(rec.review_status, rec.review_status),
        grid_name=grid_name,
        fields=fields,
        conflicts=conflict_views(book, state, who),
        history=history_rows(book, rec.type, ops, who),
        notes=notes(state, who),
        case=case,
        author=who.user(rec.author_id),
        movable=rec.type in MOVABLE_TYPES,
        grids=grids_in_scope() if rec.type in MOVABLE_TYPES else [],
        reveal_fields=present_sensitive,
    ), status


def _act(record_id: str, action: Callable[[Record], str]) -> Any:
    """Run one console action on a record in scope: success → flash and back to the page."""
    rec = load(record_id)
    try:
        message = action(rec)
    except FormError as exc:
        db.session.rollback()
        return render(rec, error=str(exc), status=422)
    except ValidationFailed as exc:
        db.session.rollback()
        db.session.expire_all()
        return render(load(record_id), error=chinese(exc), status=422)
    flash(message, "ok")
    return redirect(url_for("console.record", record_id=rec.id), code=303)


@bp.get("/records/<record_id>")
@reviewer
def record(record_id: str) -> Any:
    return render(load(record_id))


@bp.post("/records/<record_id>/review")
@reviewer
def review(record_id: str) -> Any:
    def run(rec: Record) -> str:
        decision = request.form.get("decision", "")
        actions.review(
            current_user(),
            g.scope,
            rec.id,
            decision,
            text("comment", max_len=1000, label="审核意见") or None,
        )
        return "已通过审核。" if decision == "approved" else "已退回给网格员。"

    return _act(record_id, run)


def _resolution_value(rec: Record, name: str) -> Any:
    """The value chosen in the conflict form: one of the competing writes, or a new value."""
    state = load_state(rec)
    writes = state.conflicts().get(name)
    if writes is None:
        raise FormError("该字段没有待解决的冲突（可能已被他人解决）。")
    if request.form.get("version") != str(state.version):
        raise FormError("记录已被更新，请核对后重新选择。")
    choice = request.form.get("choice", "")
    if choice == "new":
        if name == DELETED:
            raise FormError("删除状态只能在已有的值中选择。")
        spec = RECORD_TYPES[rec.type].fields.get(name)
        value = parse_value(spec.kind if spec else "text", request.form.get("new_value", ""))
        if value is None:
            raise FormError("请输入新的值。")
        return value
    if not choice.isdigit() or int(choice) >= len(writes):
        raise FormError("请选择一个值，或输入新的值。")
    return writes[int(choice)].value


@bp.post("/records/<record_id>/resolve")
@reviewer
def resolve(record_id: str) -> Any:
    def run(rec: Record) -> str:
        name = text("field", required=True, label="字段")
        value = _resolution_value(rec, name)
        actions.resolve(current_user(), g.scope, rec.id, name, value, reason())
        return f"已解决“{field_label(name)}”的冲突。"

    return _act(record_id, run)


@bp.post("/records/<record_id>/case")
@reviewer
def advance(record_id: str) -> Any:
    def run(rec: Record) -> str:
        action = request.form.get("action", "")
        params, opinion = params_from_form(action)
        actions.advance_case(current_user(), g.scope, rec.id, action, params, opinion)
        return f"已{codebook().label('step_actions', action)}。"

    return _act(record_id, run)


@bp.post("/records/<record_id>/move")
@reviewer
def move(record_id: str) -> Any:
    def run(rec: Record) -> str:
        if rec.type not in MOVABLE_TYPES:
            raise FormError("只有居民和户可以调整网格。")
        grid = text("grid_code", required=True, label="目标网格")
        actions.move(current_user(), g.scope, rec.id, grid)
        return "已调整到新的网格。"

    return _act(record_id, run)


@bp.post("/records/<record_id>/reveal")
@reviewer
def reveal(record_id: str) -> Any:
    rec = load(record_id)
    name = request.form.get("field", "")
    state = load_state(rec)
    write = state.provenance(name)
    if name not in sensitive_fields(rec.type) or write is None:
        return render(rec, error="该字段不是可查看的敏感字段。", status=422)
    try:
        why = reason(label="查看理由")
    except FormError as exc:
        return render(rec, error=str(exc), status=422)
    user = current_user()
    db.session.add(AccessLog(user_id=user.id, record_id=rec.id, field=name, reason=why))
    audit.record(user.username, "record.reveal", f"record:{rec.id}", {"field": name, "reason": why})
    db.session.commit()
    shown = show_value(codebook(), rec.type, name, write.value)
    return render_template(
        "console/reveal.html",
        rec=rec,
        title=summary(rec.type, rec.data),
        label=field_label(name),
        value=shown,
        reason=why,
    )


__all__ = ["load", "render"]
