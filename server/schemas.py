"""Every marshmallow schema of the API, in one module. Request schemas reject unknown fields."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import RAISE, fields, post_load, validate

from server.models import Role

ROLES = [role.value for role in Role]
_UNIT_CODE = validate.Regexp(r"^\d{6}(\d{3}){0,3}$", error="Not a unit code.")
_GRID_CODE = validate.Regexp(r"^\d{15}$", error="Not a grid code.")


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
