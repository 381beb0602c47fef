"""Every marshmallow schema of the API, in one module. Request schemas reject unknown fields."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import RAISE, fields, post_load, validate

from server.models import Role

ROLES = [role.value for role in Role]
_UNIT_CODE = validate.Regexp(r"^\d{6}(\d{3}){0,3}$", error="Not a unit code.")
_GRID_CODE = validate.Regexp(r"^\d{15}$", error="Not a grid code.")


class StrictBoolean(fields.Boolean):
    """``true`` or ``false`` only (marshmallow's Boolean also takes 0, 1, "yes", "false"...)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value


class RawList(fields.List):
    """A JSON array taken as it is, its items checked by the caller (documented as a List of
    its inner field): a push's operations are decoded one by one by ``sync``, which answers a
    bad one in its place, so running 500 of them through marshmallow first only costs time."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if type(value) is not list:
            raise self.make_error("invalid")
        return value


class RequestSchema(ma.Schema):
    class Meta:
        unknown = RAISE


# --- auth -------------------------------------------------------------------------------------


class LoginSchema(RequestSchema):
    username = fields.String(required=True, validate=validate.Length(1, 64))
    password = fields.String(required=True, validate=validate.Length(1, 1024))
    device_id = fields.UUID(required=True)
    device_name = fields.String(load_default="", validate=validate.Length(max=100))

    @post_load
    def _device_id_as_str(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["device_id"] = str(data["device_id"])
        return data


class RefreshSchema(RequestSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(1, 4096))


class UserSchema(ma.Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    unit_code = fields.String()


class ScopeSchema(ma.Schema):
    prefixes = fields.List(fields.String())
    token = fields.String()


class TokenPairSchema(ma.Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class LoginResultSchema(TokenPairSchema):
    user = fields.Nested(UserSchema)
    scope = fields.Nested(ScopeSchema)
    last_seq = fields.Integer(
        metadata={
            "description": "The highest operation seq the server holds for this device id "
            "(0: none): new operations are numbered above it; see docs/protocol.md §3."
        }
    )


class MeSchema(ma.Schema):
    user = fields.Nested(UserSchema)
    scope = fields.Nested(ScopeSchema)
    device_id = fields.String()


# --- admin ------------------------------------------------------------------------------------


class AdminUserSchema(UserSchema):
    active = fields.Boolean()
    created_at = fields.DateTime()
    grids = fields.List(fields.String(), attribute="grid_codes")


class UserCreateSchema(RequestSchema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{2,64}$"))
    display_name = fields.String(load_default="", validate=validate.Length(max=100))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    unit_code = fields.String(required=True, validate=_UNIT_CODE)
    password = fields.String(required=True, validate=validate.Length(8, 1024))
    grids = fields.List(fields.String(validate=_GRID_CODE), load_default=list)


class PasswordResetSchema(RequestSchema):
    password = fields.String(required=True, validate=validate.Length(8, 1024))


class GridsSchema(RequestSchema):
    grids = fields.List(fields.String(validate=_GRID_CODE), required=True)


class DeviceSchema(ma.Schema):
    id = fields.String()
    user_id = fields.Integer()
    name = fields.String()
    registered_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    last_seen_at = fields.DateTime(allow_none=True)
    last_sync_at = fields.DateTime(allow_none=True)
    clock_skew_ms = fields.Integer(allow_none=True)


# --- sync (the Linli Sync Protocol, docs/protocol.md) -------------------------------------------
# The sync views decode bodies with sync.wire (operation by operation, so one malformed operation
# never costs the batch); these schemas check the envelope and describe it in the OpenAPI document.


class ScopeInfoSchema(ma.Schema):
    prefixes = fields.List(fields.String(), required=True)
    token = fields.String(required=True)


class HandshakeSchema(RequestSchema):
    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    # 13 digits of epoch milliseconds, as in an HLC; anything else is not a clock reading.
    device_time_ms = fields.Integer(
        required=True, strict=True, validate=validate.Range(0, 9_999_999_999_999)
    )
    protocol_versions = fields.List(
        fields.Integer(strict=True), required=True, validate=validate.Length(1, 16)
    )
    schema_version = fields.Integer(required=True, strict=True)
    app = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))


class HandshakeResultSchema(ma.Schema):
    protocol_version = fields.Integer()
    schema_version = fields.Integer()
    server_time_ms = fields.Integer()
    clock_skew_ms = fields.Integer()
    max_clock_drift_ms = fields.Integer()
    max_batch = fields.Integer()
    max_page = fields.Integer()
    scope = fields.Nested(ScopeInfoSchema)
    last_seq = fields.Integer(
        metadata={
            "description": "The highest operation seq the server holds for this device id "
            "(0: none); see docs/protocol.md §3."
        }
    )


class PushSchema(RequestSchema):
    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    operations = RawList(
        fields.Raw(allow_none=True),  # a null operation is rejected on its own, like any other
        required=True,
        metadata={"description": "Operations (see docs/protocol.md §4)."},
    )
    pull = fields.Nested(
        lambda: PullSchema(),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Protocol 2: also answer this pull, after the push is committed "
            "(docs/protocol.md §5.1)."
        },
    )
    after = RawList(
        fields.List(fields.Integer(), validate=validate.Length(2, 2)),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Protocol 4: runs [first, last] of the sequence numbers of the batch "
            "this one follows, sent before that one's answer; applied only once all of them are "
            "held, else every operation is answered rejected not_yet (docs/protocol.md §5.6)."
        },
    )


class OpResultSchema(ma.Schema):
    key = fields.String(allow_none=True)
    status = fields.String(
        validate=validate.OneOf(["applied", "duplicate", "conflict", "rejected"])
    )
    record_id = fields.String(allow_none=True)
    version = fields.Integer(allow_none=True)
    reason = fields.String()
    message = fields.String()
    conflicts = fields.List(fields.String())
    original = fields.String()


class PushResultSchema(ma.Schema):
    results = fields.List(fields.Nested(OpResultSchema))
    server_time_ms = fields.Integer()
    pull = fields.Nested(lambda: PullResultSchema(), metadata={"description": "When asked."})


class PullSchema(RequestSchema):
    cursor = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, strict=True, validate=validate.Range(min=1))
    scope_token = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=64)
    )
    echo = StrictBoolean(
        load_default=True,
        metadata={
            "description": "Protocol 3: false leaves out the records that are still your own "
            "create, unchanged since (docs/protocol.md §7.1)."
        },
    )


class ChecksumSchema(ma.Schema):
    count = fields.Integer()
    version_sum = fields.Integer()


class PullResultSchema(ma.Schema):
    changes = fields.List(fields.Dict(), metadata={"description": "Record snapshots."})
    removals = fields.List(fields.Dict())
    cursor = fields.Integer()
    has_more = fields.Boolean()
    reset = fields.Boolean()
    scope = fields.Nested(ScopeInfoSchema)
    checksum = fields.Nested(ChecksumSchema, allow_none=True)


# --- records (review, conflicts, moves, cases) --------------------------------------------------


class RecordSchema(ma.Schema):
    id = fields.String()
    type = fields.String()
    grid_code = fields.String()
    version = fields.Integer()
    deleted = fields.Boolean()
    fields_ = fields.Dict(data_key="fields", attribute="fields")
    conflicts = fields.Dict()
    collections = fields.Dict()
    review = fields.Dict(allow_none=True)


class ReviewSchema(RequestSchema):
    decision = fields.String(required=True, validate=validate.OneOf(["approved", "returned"]))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class ResolveSchema(RequestSchema):
    field = fields.String(required=True, validate=validate.Length(1, 64))
    value = fields.Raw(required=True, allow_none=True)
    reason = fields.String(required=True, validate=validate.Length(1, 1000))


class MoveSchema(RequestSchema):
    grid_code = fields.String(required=True, validate=_GRID_CODE)


class CaseActionSchema(RequestSchema):
    action = fields.String(required=True, validate=validate.Length(1, 32))
    params = fields.Dict(load_default=dict)
    opinion = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
