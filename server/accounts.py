"""Managing users, their grids and their devices — for admins (within a scope) and the CLI.

``scope=None`` means unrestricted (the CLI). Objects outside an admin's scope are reported as
not found, so ids cannot be probed. Functions flush but do not commit; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select

from server import audit, tokens
from server.db import utcnow
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.extensions import db
from server.models import AdminUnit, Device, Role, UnitLevel, User, UserGrid
from server.passwords import hash_password
from server.scope import Scope

HOME_LEVELS: dict[Role, set[UnitLevel]] = {
    Role.GRID_WORKER: {UnitLevel.COMMUNITY, UnitLevel.GRID},
    Role.COMMUNITY_HEAD: {UnitLevel.COMMUNITY},
    Role.STREET_ADMIN: {UnitLevel.STREET},
    Role.DISTRICT_ADMIN: {UnitLevel.DISTRICT},
}
MIN_PASSWORD_LENGTH = 8


def _visible(scope: Scope | None, code: str) -> bool:
    return scope is None or scope.contains(code)


def _unit(code: str, scope: Scope | None) -> AdminUnit:
    unit = db.session.get(AdminUnit, code)
    if unit is None or not _visible(scope, code):
        raise NotFound(f"Unit {code} not found.", details={"unit_code": code})
    return unit


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password"
        )


def _check_grids(user: User, grid_codes: Iterable[str], scope: Scope | None) -> list[str]:
    codes = sorted(set(grid_codes))
    if codes and user.role != Role.GRID_WORKER:
        raise ValidationFailed("Only grid workers are assigned grids.", code="grids_not_allowed")
    for code in codes:
        unit = _unit(code, scope)
        if unit.level != UnitLevel.GRID or not code.startswith(user.unit_code):
            raise ValidationFailed(
                f"{code} is not a grid within unit {user.unit_code}.",
                code="invalid_grid",
                details={"grid_code": code},
            )
    return codes


def get_user(user_id: int, scope: Scope | None) -> User:
    user = db.session.get(User, user_id)
    if user is None or not _visible(scope, user.unit_code):
        raise NotFound(f"User {user_id} not found.")
    return user


def list_users(scope: Scope | None) -> Sequence[User]:
    query = select(User).order_by(User.id)
    if scope is not None:
        query = query.where(scope.filter(User.unit_code))
    return db.session.execute(query).scalars().all()


def create_user(
    actor: str,
    *,
    username: str,
    display_name: str,
    role: str,
    unit_code: str,
    password: str,
    grids: Iterable[str] = (),
    scope: Scope | None = None,
    actor_role: str | None = None,
) -> User:
    """Create an active user; an admin may not create a role above their own."""
    role = Role(role)
    if actor_role is not None and role.rank > Role(actor_role).rank:
        raise Forbidden("You cannot create a user with a higher role.", code="forbidden")
    unit = _unit(unit_code, scope)
    if unit.level not in HOME_LEVELS[role]:
        raise ValidationFailed(
            f"A {role} cannot belong to a {unit.level}.", code="unit_level_mismatch"
        )
    _check_password(password)
    taken = db.session.execute(select(User.id).where(User.username == username)).first()
    if taken:
        raise Conflict(f"Username {username} is taken.", code="username_taken")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        unit_code=unit.code,
        password_hash=hash_password(password),
    )
    user.grids = [UserGrid(grid_code=code) for code in _check_grids(user, grids, scope)]
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor,
        "user.create",
        f"user:{user.id}",
        {"username": username, "role": role, "unit_code": unit.code, "grids": user.grid_codes},
    )
    return user


def reset_password(actor: str, user_id: int, password: str, scope: Scope | None = None) -> User:
    user = get_user(user_id, scope)
    _check_password(password)
    user.password_hash = hash_password(password)
    audit.record(actor, "user.password_reset", f"user:{user.id}", {})
    return user


def set_grids(actor: str, user_id: int, grids: Iterable[str], scope: Scope | None = None) -> User:
    user = get_user(user_id, scope)
    codes = _check_grids(user, grids, scope)
    before = user.grid_codes
    user.grids = [UserGrid(grid_code=code) for code in codes]
    db.session.flush()
    audit.record(actor, "user.grids", f"user:{user.id}", {"before": before, "after": codes})
    return user


def get_device(device_id: str, scope: Scope | None) -> Device:
    device = db.session.get(Device, device_id)
    if device is None or not _visible(scope, device.user.unit_code):
        raise NotFound(f"Device {device_id} not found.")
    return device


def list_devices(scope: Scope | None) -> Sequence[Device]:
    query = select(Device).join(User, Device.user_id == User.id).order_by(Device.registered_at)
    if scope is not None:
        query = query.where(scope.filter(User.unit_code))
    return db.session.execute(query).scalars().all()


def register_device(actor: str, user_id: int, device_id: str, name: str) -> Device:
    """Register a device for a user ahead of its first login (CLI)."""
    user = get_user(user_id, None)
    if db.session.get(Device, device_id) is not None:
        raise Conflict(f"Device {device_id} is already registered.", code="device_exists")
    device = Device(id=device_id, user_id=user.id, name=name)
    db.session.add(device)
    db.session.flush()
    audit.record(actor, "device.register", f"device:{device_id}", {"user_id": user.id})
    return device


def revoke_device(actor: str, device_id: str, scope: Scope | None = None) -> Device:
    """Revoke a device: its refresh tokens die now, its access tokens on their next use."""
    device = get_device(device_id, scope)
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        tokens.revoke_device(device.id)
        audit.record(actor, "device.revoke", f"device:{device.id}", {"user_id": device.user_id})
    return device


__all__ = [
    "create_user",
    "get_device",
    "get_user",
    "list_devices",
    "list_users",
    "register_device",
    "reset_password",
    "revoke_device",
    "set_grids",
]
