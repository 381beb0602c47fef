"""Sign-in sessions of a user on a device: login, refresh, logout.

Each function is one unit of work and commits. Failures that must leave a trace (a failed login
counted by the rate limit, a reused refresh token revoking its family) commit that trace before
raising.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from server import audit, ratelimit
from server.errors import Forbidden, Unauthorized
from server.extensions import db
from server.models import Device, User
from server.passwords import hash_password, needs_rehash, verify_password
from server.scope import Scope
from server.tokens import RefreshReused, TokenPair, issue_pair, revoke_device, rotate


@dataclass(frozen=True, slots=True)
class Session:
    tokens: TokenPair
    user: User
    device: Device
    scope: Scope


def login(
    username: str, password: str, device_id: str, device_name: str, address: str | None
) -> Session:
    """Check the password, register the device on first use, and issue a token pair."""
    limits = ratelimit.login_limits(username, address)
    ratelimit.check(limits)
    found = db.session.execute(
        select(User.id, User.password_hash).where(User.username == username)
    ).first()
    # End the transaction while Argon2 runs (~30 ms): on SQLite it holds the write lock.
    db.session.rollback()
    password_ok = verify_password(found.password_hash if found else None, password)
    user = db.session.get(User, found.id) if found else None
    if user is None or not user.active or not password_ok:
        ratelimit.record(limits, ok=False)
        audit.record(username, "auth.login_failed", f"user:{username}", {"address": address})
        db.session.commit()
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    device = db.session.get(Device, device_id)
    if device is not None and device.user_id != user.id:
        raise Forbidden("This device is registered to another user.", code="device_taken")
    if device is not None and device.revoked:
        raise Unauthorized("This device has been revoked.", code="device_revoked")
    new_device = device is None
    if device is None:
        device = Device(id=device_id, user_id=user.id, name=device_name)
        db.session.add(device)
        db.session.flush()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    ratelimit.record(limits, ok=True)
    tokens = issue_pair(user.id, device.id)
    audit.record(
        user.username,
        "auth.login",
        f"device:{device.id}",
        {"device_name": device_name, "new_device": new_device, "address": address},
    )
    db.session.commit()
    return Session(tokens, user, device, Scope.for_user(user))


def refresh(refresh_token: str) -> TokenPair:
    """Rotate a refresh token; a reused one revokes its family (and that is committed)."""
    try:
        tokens, row = rotate(refresh_token)
    except RefreshReused as exc:
        audit.record("system", "auth.refresh_reused", f"device:{exc.device_id}", {})
        db.session.commit()
        raise
    user = db.session.get(User, row.user_id)
    if user is None or not user.active:
        db.session.rollback()
        raise Unauthorized("This account is disabled.", code="account_disabled")
    db.session.commit()
    return tokens


def logout(user: User, device: Device) -> None:
    """Revoke every refresh token of this device; its access token expires on its own."""
    revoke_device(device.id)
    audit.record(user.username, "auth.logout", f"device:{device.id}", {})
    db.session.commit()


__all__ = ["Session", "login", "logout", "refresh"]
