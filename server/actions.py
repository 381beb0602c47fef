"""What people do to synced records, for the API and the console alike: review (approve or
return with a comment), resolve a conflict, move a record to another grid, and advance a dispute
case. Each runs in one write batch, is audited, and reaches devices through the next pull.
"""

from __future__ import annotations

from typing import Any

from server import audit
from server.cases import local_today, transition
from server.codes import codebook
from server.errors import Forbidden, NotFound, ValidationFailed
from server.extensions import db
from server.models import AdminUnit, Role, User
from server.scope import Scope
from server.store import RecordBatch, StoredRecord
from sync import DELETED, OpKind, Outcome, validate_fields
from sync.workflow import Refused

__all__ = ["REVIEWER_ROLES", "advance_case", "load_in_scope", "move", "resolve", "review"]

REVIEWER_ROLES = (Role.COMMUNITY_HEAD, Role.STREET_ADMIN, Role.DISTRICT_ADMIN)
DECISIONS = ("approved", "returned")


def load_in_scope(batch: RecordBatch, record_id: str, scope: Scope) -> StoredRecord:
    """The record, or 404 when it does not exist or lies outside ``scope`` (no leak)."""
    rec = batch.get(record_id)
    if rec is None or not scope.contains(rec.grid_code):
        raise NotFound("No such record.", code="not_found")
    return rec


def _finish(
    batch: RecordBatch, user: User, action: str, rec: StoredRecord, payload: dict[str, Any]
) -> StoredRecord:
    batch.write()
    audit.record(user.username, action, f"record:{rec.id}", payload)
    db.session.commit()
    return rec


def review(
    user: User, scope: Scope, record_id: str, decision: str, comment: str | None
) -> StoredRecord:
    """Approve a record, or return it to the worker with a comment."""
    if user.role not in REVIEWER_ROLES:
        raise Forbidden("Only community heads and admins review records.", code="forbidden")
    if decision not in DECISIONS:
        raise ValidationFailed(
            "decision must be approved or returned",
            details={"decision": ["must be approved or returned"]},
        )
    if decision == "returned" and not (comment or "").strip():
        raise ValidationFailed(
            "A returned record needs a comment for the worker.",
            details={"comment": ["required when returning"]},
        )
    batch = RecordBatch(db.session, user.id)
    rec = load_in_scope(batch, record_id, scope)
    rec.review_status = decision
    rec.review = {
        "status": decision,
        "comment": (comment or "").strip() or None,
        "by": user.display_name,
        "at": batch.now.isoformat(timespec="seconds"),
        "version": rec.state.version,
    }
    batch.touch(rec)
    return _finish(
        batch, user, f"review.{decision}", rec, {"comment": comment, "version": rec.state.version}
    )


def resolve(
    user: User, scope: Scope, record_id: str, field: str, value: Any, reason: str
) -> StoredRecord:
    """Settle a conflict on ``field`` with ``value`` (one of the competing values or new)."""
    if not (reason or "").strip():
        raise ValidationFailed("A resolution needs a reason.", details={"reason": ["required"]})
    batch = RecordBatch(db.session, user.id)
    rec = load_in_scope(batch, record_id, scope)
    if field not in rec.state.conflicts():
        raise ValidationFailed(f"{field} has no open conflict.", details={"field": ["no conflict"]})
    if field == DELETED:
        value = bool(value)
    else:
        errors = validate_fields(
            rec.state.record_type, {field: value}, partial=True, codes=codebook().sets()
        )
        if errors:
            raise ValidationFailed(
                "The chosen value is not valid.", details={k: [v] for k, v in errors.items()}
            )
    result = batch.server_write(rec, {field: value}, kind=OpKind.RESOLVE, reason=reason)
    if result.outcome is Outcome.REJECTED:
        raise ValidationFailed(f"The resolution was refused: {result.reason}.")
    return _finish(
        batch, user, "conflict.resolve", rec, {"field": field, "value": value, "reason": reason}
    )


def move(user: User, scope: Scope, record_id: str, grid_code: str) -> StoredRecord:
    """Reassign a record to another grid (e.g. a resident moved). Devices of the old grid are
    told to remove it; devices of the new grid receive it with its full history."""
    if user.role not in REVIEWER_ROLES:
        raise Forbidden("Only community heads and admins move records.", code="forbidden")
    unit = db.session.get(AdminUnit, grid_code)
    if unit is None or unit.level != "grid" or not scope.contains(grid_code):
        raise NotFound("No such grid in your jurisdiction.", code="not_found")
    batch = RecordBatch(db.session, user.id)
    rec = load_in_scope(batch, record_id, scope)
    old = rec.grid_code
    if old == grid_code:
        return rec
    rec.old_grid, rec.grid_code = old, grid_code
    batch.server_write(rec, {"grid_code": grid_code})
    return _finish(batch, user, "record.move", rec, {"from": old, "to": grid_code})


def advance_case(
    user: User,
    scope: Scope,
    record_id: str,
    action: str,
    params: dict[str, Any],
    opinion: str | None = None,
) -> StoredRecord:
    """A dispute workflow action by a person (console or API); illegal moves are refused."""
    batch = RecordBatch(db.session, user.id)
    rec = load_in_scope(batch, record_id, scope)
    if rec.state.record_type != "dispute":
        raise ValidationFailed("Only dispute cases have a workflow.")
    decision = transition(
        batch,
        rec,
        action,
        params,
        role=user.role,
        actor=user.display_name,
        book=codebook(),
        today=local_today(batch.now),
        opinion=opinion,
    )
    if isinstance(decision, Refused):
        raise ValidationFailed(
            decision.message,
            code=f"workflow.{decision.reason_code}",
            details={"action": [decision.message]},
        )
    return _finish(batch, user, f"case.{action}", rec, {"params": params, "opinion": opinion})
