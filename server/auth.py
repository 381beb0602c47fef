"""Request authentication: bearer access tokens only (never a session cookie).

``@require_auth()`` lets any authenticated user in; ``@require_auth(Role.STREET_ADMIN, ...)``
also checks the role (403 "forbidden"). Inside the view ``g.user``, ``g.device`` and
``g.scope`` are set. Every request re-checks the device, so a revoked device is refused on its
very next request (401 "device_revoked"), however fresh its access token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from server.db import read_phase, utcnow
from server.errors import Forbidden, Unauthorized
from server.extensions import db
from server.models import Device, User
from server.scope import Scope
from server.tokens import ACCESS, decode

F = TypeVar("F", bound=Callable[..., Any])

# The device, its user and the user's grids (the scope) in one round trip. Built once: building
# the statement and its loader options cost about as much as running it (~0.6 ms a request).
_IDENTITY = (
    select(Device)
    .options(joinedload(Device.user).joinedload(User.grids))
    .where(Device.id == bindparam("device_id"))
)


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.", code="missing_token")
    return token.strip()


def authenticate(token: str) -> tuple[User, Device, Scope]:
    """The active user, live device and jurisdiction an access token speaks for; Unauthorized
    otherwise. Checked once per request (the answer is kept with the request for the same
    token), in a read phase: authenticating never holds SQLite's write lock. A request that
    writes must check again once it holds the write lock (see ``server.push``)."""
    known = request.environ.get("linli.auth")  # this request's answer, never another's
    if known is not None and known[0] == token:
        return known[1]
    claims = decode(token, ACCESS)
    with read_phase(db.session):
        device = (
            db.session.execute(_IDENTITY, {"device_id": claims["did"]})
            .unique()
            .scalar_one_or_none()
        )
        if device is None or str(device.user_id) != claims["sub"]:
            raise Unauthorized("The token's device is not registered.", code="invalid_token")
        if device.revoked:
            raise Unauthorized("This device has been revoked.", code="device_revoked")
        user = device.user
        if not user.active:
            raise Unauthorized("This account is disabled.", code="account_disabled")
        scope = Scope.for_user(user)
    _touch(device)
    request.environ["linli.auth"] = (token, (user, device, scope))
    return user, device, scope


def _touch(device: Device) -> None:
    now = utcnow()
    interval = timedelta(seconds=current_app.config["DEVICE_SEEN_INTERVAL_S"])
    if device.last_seen_at is None or now - device.last_seen_at >= interval:
        device.last_seen_at = now
        db.session.commit()


def require_auth(*roles: str) -> Callable[[F], F]:
    """Decorate a view: authenticate the bearer token, then check ``roles`` if any are given."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user, device, scope = authenticate(bearer_token())
            if roles and user.role not in roles:
                raise Forbidden("Your role does not allow this.", code="forbidden")
            g.user, g.device, g.scope = user, device, scope
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def warm() -> None:
    """Run authentication's reads once for no device (see ``server.serving.warm``)."""
    db.session.execute(_IDENTITY, {"device_id": ""}).unique().scalar_one_or_none()
    db.session.get(Device, "")
    some = db.session.scalar(select(Device.id).limit(1))
    if some is not None:  # a device loaded as a request loads it, then again after a commit
        device = db.session.execute(_IDENTITY, {"device_id": some}).unique().scalar_one()
        db.session.expire(device)
        device.revoked_at  # noqa: B018


__all__ = ["authenticate", "bearer_token", "require_auth", "warm"]
