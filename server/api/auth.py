"""Sign in, refresh, sign out, and who am I."""

from __future__ import annotations

from typing import Any

from flask import g, request

from server import sessions
from server.api import URL_PREFIX, Blueprint
from server.auth import require_auth
from server.push import last_seq
from server.schemas import LoginResultSchema, LoginSchema, MeSchema, RefreshSchema, TokenPairSchema

blp = Blueprint("auth", __name__, url_prefix=f"{URL_PREFIX}", description="Authentication")


@blp.post("/auth/login")
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
@blp.doc(security=[])
def login(args: dict[str, Any]) -> dict[str, Any]:
    """Sign in on a device (registered to this user on first use)."""
    session = sessions.login(address=request.remote_addr, **args)
    tokens = session.tokens
    return {
        **_pair(tokens),
        "user": session.user,
        "scope": session.scope.as_dict(),
        "last_seq": last_seq(args["device_id"]),  # not session.device: expired by the commit
    }


@blp.post("/auth/refresh")
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
@blp.doc(security=[])
def refresh(args: dict[str, Any]) -> dict[str, Any]:
    """Exchange a refresh token for a new pair (the old one stops working)."""
    return _pair(sessions.refresh(args["refresh_token"]))


@blp.post("/auth/logout")
@require_auth()
@blp.response(204)
def logout() -> None:
    """Revoke this device's refresh tokens."""
    sessions.logout(g.user, g.device)


@blp.get("/me")
@require_auth()
@blp.response(200, MeSchema)
def me() -> dict[str, Any]:
    """The signed-in user, their scope and device."""
    return {"user": g.user, "scope": g.scope.as_dict(), "device_id": g.device.id}


def _pair(tokens: sessions.TokenPair) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type,
        "expires_in": tokens.expires_in,
    }
