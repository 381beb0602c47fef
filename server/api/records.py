"""People's actions on synced records over the API: read, review, resolve, move, advance."""

from __future__ import annotations

import json
from typing import Any

from flask import g
from sqlalchemy import Text, cast, select

from server import actions
from server.api import URL_PREFIX, Blueprint
from server.auth import require_auth
from server.errors import NotFound
from server.extensions import db
from server.models import Record, snapshot_text
from server.privacy import mask_snapshot
from server.schemas import CaseActionSchema, MoveSchema, RecordSchema, ResolveSchema, ReviewSchema

blp = Blueprint(
    "records",
    __name__,
    url_prefix=f"{URL_PREFIX}/records",
    description="Records: review, conflicts, moves, dispute cases",
)


def _snapshot(record_id: str) -> dict[str, Any]:
    row = db.session.execute(
        select(Record.grid_code, Record.envelope, cast(Record.data, Text).label("data")).where(
            Record.id == record_id
        )
    ).first()
    if row is None or not g.scope.contains(row.grid_code):
        raise NotFound("No such record.", code="not_found")
    return mask_snapshot(json.loads(snapshot_text(row.envelope, row.data)))


@blp.get("/<uuid:record_id>")
@require_auth()
@blp.response(200, RecordSchema)
def get_record(record_id: Any) -> dict[str, Any]:
    """A record in your jurisdiction, sensitive fields masked."""
    return _snapshot(str(record_id))


@blp.post("/<uuid:record_id>/review")
@require_auth(*actions.REVIEWER_ROLES)
@blp.arguments(ReviewSchema)
@blp.response(200, RecordSchema)
def review(args: dict[str, Any], record_id: Any) -> dict[str, Any]:
    """Approve, or return to the worker with a comment."""
    actions.review(g.user, g.scope, str(record_id), args["decision"], args["comment"])
    return _snapshot(str(record_id))


@blp.post("/<uuid:record_id>/resolve")
@require_auth()
@blp.arguments(ResolveSchema)
@blp.response(200, RecordSchema)
def resolve(args: dict[str, Any], record_id: Any) -> dict[str, Any]:
    """Settle a conflict on one field, with a reason."""
    actions.resolve(g.user, g.scope, str(record_id), args["field"], args["value"], args["reason"])
    return _snapshot(str(record_id))


@blp.post("/<uuid:record_id>/move")
@require_auth(*actions.REVIEWER_ROLES)
@blp.arguments(MoveSchema)
@blp.response(200, RecordSchema)
def move(args: dict[str, Any], record_id: Any) -> dict[str, Any]:
    """Reassign the record to another grid in your jurisdiction."""
    actions.move(g.user, g.scope, str(record_id), args["grid_code"])
    return _snapshot(str(record_id))


@blp.post("/<uuid:record_id>/case")
@require_auth()
@blp.arguments(CaseActionSchema)
@blp.response(200, RecordSchema)
def advance_case(args: dict[str, Any], record_id: Any) -> dict[str, Any]:
    """A dispute workflow action (accept, assign, resolve, close, ...)."""
    actions.advance_case(
        g.user, g.scope, str(record_id), args["action"], args["params"], args["opinion"]
    )
    return _snapshot(str(record_id))
