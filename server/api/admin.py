"""User and device administration for street and district admins, within their scope."""

from __future__ import annotations

from typing import Any

from flask import g

from server import accounts
from server.api import URL_PREFIX, Blueprint
from server.auth import require_auth
from server.extensions import db
from server.models import ADMIN_ROLES
from server.schemas import (
    AdminUserSchema,
    DeviceSchema,
    GridsSchema,
    PasswordResetSchema,
    UserCreateSchema,
)

blp = Blueprint("admin", __name__, url_prefix=f"{URL_PREFIX}/admin", description="Administration")


@blp.get("/users")
@require_auth(*ADMIN_ROLES)
@blp.response(200, AdminUserSchema(many=True))
def list_users() -> Any:
    """Users whose home unit is within your scope."""
    return accounts.list_users(g.scope)


@blp.post("/users")
@require_auth(*ADMIN_ROLES)
@blp.arguments(UserCreateSchema)
@blp.response(201, AdminUserSchema)
def create_user(args: dict[str, Any]) -> Any:
    """Create a user within your scope, with a role no higher than yours."""
    user = accounts.create_user(g.user.username, scope=g.scope, actor_role=g.user.role, **args)
    db.session.commit()
    return user


@blp.post("/users/<int(max=2147483647):user_id>/password")
@require_auth(*ADMIN_ROLES)
@blp.arguments(PasswordResetSchema)
@blp.response(204)
def reset_password(args: dict[str, Any], user_id: int) -> None:
    """Set a new password for a user."""
    accounts.reset_password(g.user.username, user_id, args["password"], scope=g.scope)
    db.session.commit()


@blp.put("/users/<int(max=2147483647):user_id>/grids")
@require_auth(*ADMIN_ROLES)
@blp.arguments(GridsSchema)
@blp.response(200, AdminUserSchema)
def set_grids(args: dict[str, Any], user_id: int) -> Any:
    """Replace a grid worker's assigned grids."""
    user = accounts.set_grids(g.user.username, user_id, args["grids"], scope=g.scope)
    db.session.commit()
    return user


@blp.get("/devices")
@require_auth(*ADMIN_ROLES)
@blp.response(200, DeviceSchema(many=True))
def list_devices() -> Any:
    """Devices of users within your scope."""
    return accounts.list_devices(g.scope)


@blp.post("/devices/<device_id>/revoke")
@require_auth(*ADMIN_ROLES)
@blp.response(200, DeviceSchema)
def revoke_device(device_id: str) -> Any:
    """Revoke a device; its tokens stop working on their next use."""
    device = accounts.revoke_device(g.user.username, device_id, scope=g.scope)
    db.session.commit()
    return device
