"""JWT access tokens and rotating, revocable refresh tokens (RFC 8725 hygiene).

An access token is self-contained and lives 15 minutes; every request still checks its device.
A refresh token is a JWT whose ``jti`` names a ``RefreshToken`` row. Refreshing rotates: the old
row is marked rotated and a new one is issued in the same family. Presenting a rotated token
again means it was copied, so the whole family is revoked.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from flask import current_app
from sqlalchemy import select, update

from server.db import utcnow
from server.errors import Unauthorized
from server.extensions import db
from server.models import Device, RefreshToken

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
_REQUIRED = {
    ACCESS: ["iss", "aud", "sub", "iat", "exp", "typ", "did", "jti"],
    REFRESH: ["iss", "aud", "sub", "iat", "exp", "typ", "did", "jti", "fam"],
}


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def _encode(claims: dict[str, Any], ttl_s: int) -> str:
    """A signed token that lives at least ``ttl_s`` seconds (the ``expires_in`` the client is
    told): ``exp`` is whole seconds, rounded up, never down (a token issued at 12:00:00.999
    with a TTL of 1 s would otherwise expire a millisecond later)."""
    config = current_app.config
    now = utcnow()
    claims = {
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
        "iat": now,
        "exp": math.ceil((now + timedelta(seconds=ttl_s)).timestamp()),
        **claims,
    }
    return jwt.encode(claims, config["SECRET_KEY"], algorithm=ALGORITHM)


def decode(token: str, typ: str) -> dict[str, Any]:
    """The verified claims of a token of type ``typ``; Unauthorized for anything else."""
    config = current_app.config
    try:
        claims = jwt.decode(
            token,
            config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            audience=config["JWT_AUDIENCE"],
            issuer=config["JWT_ISSUER"],
            options={"require": _REQUIRED[typ]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is not valid.", code="invalid_token") from exc
    if claims.get("typ") != typ:
        raise Unauthorized(f"An {typ} token is required.", code="invalid_token")
    return claims


def issue_access(user_id: int, device_id: str) -> str:
    claims = {"sub": str(user_id), "typ": ACCESS, "did": device_id, "jti": str(uuid.uuid4())}
    return _encode(claims, current_app.config["ACCESS_TOKEN_TTL_S"])


def _issue_refresh(user_id: int, device_id: str, family_id: str) -> str:
    ttl = current_app.config["REFRESH_TOKEN_TTL_S"]
    jti = str(uuid.uuid4())
    db.session.add(
        RefreshToken(
            jti=jti,
            family_id=family_id,
            device_id=device_id,
            user_id=user_id,
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    claims = {"sub": str(user_id), "typ": REFRESH, "did": device_id, "jti": jti, "fam": family_id}
    return _encode(claims, ttl)


def issue_pair(user_id: int, device_id: str, family_id: str | None = None) -> TokenPair:
    """A new access token and a refresh token (a new family unless one is given)."""
    refresh = _issue_refresh(user_id, device_id, family_id or str(uuid.uuid4()))
    return TokenPair(
        access_token=issue_access(user_id, device_id),
        refresh_token=refresh,
        expires_in=current_app.config["ACCESS_TOKEN_TTL_S"],
    )


def revoke_family(family_id: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_device(device_id: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.device_id == device_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


class RefreshReused(Unauthorized):
    """A rotated refresh token came back: its family has been revoked (commit, then raise)."""

    def __init__(self, device_id: str) -> None:
        super().__init__("The refresh token was already used.", code="token_reused")
        self.device_id = device_id


def _unused_successor(row: RefreshToken) -> RefreshToken | None:
    """For a retried rotation whose response never reached the device (offline networks lose
    and duplicate responses): the one refresh token that rotation issued, if the retry comes
    within the grace window and that token was never used. Any other reuse is theft.
    """
    grace = timedelta(seconds=current_app.config["REFRESH_REUSE_GRACE_S"])
    if row.rotated_at is None or utcnow() - row.rotated_at > grace:
        return None
    successors = (
        db.session.execute(
            select(RefreshToken).where(
                RefreshToken.family_id == row.family_id,
                RefreshToken.issued_at >= row.rotated_at,
            )
        )
        .scalars()
        .all()
    )
    if len(successors) != 1:
        return None
    successor = successors[0]
    if successor.rotated_at is not None or successor.revoked_at is not None:
        return None
    return successor


def _resign_refresh(row: RefreshToken) -> str:
    """The refresh token of an existing row again (same jti: the same token to the server)."""
    claims = {
        "sub": str(row.user_id),
        "typ": REFRESH,
        "did": row.device_id,
        "jti": row.jti,
        "fam": row.family_id,
    }
    ttl = max(1, int((row.expires_at - utcnow()).total_seconds()))
    return _encode(claims, ttl)


def rotate(refresh_token: str) -> tuple[TokenPair, RefreshToken]:
    """Exchange a live refresh token for a new pair in the same family.

    Raises Unauthorized when the token is invalid, expired, revoked or its device is revoked,
    and RefreshReused (after revoking the family, uncommitted) when it was already rotated.
    """
    claims = decode(refresh_token, REFRESH)
    row = db.session.execute(
        select(RefreshToken).where(RefreshToken.jti == claims["jti"]).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.family_id != claims["fam"] or row.device_id != claims["did"]:
        raise Unauthorized("The refresh token is not known.", code="invalid_token")
    # The device first: revoking it also revokes its tokens, and the client must learn the
    # cause (sign in on another device, keep the outbox), not just that the token is dead.
    device = db.session.get(Device, row.device_id)
    if device is None or device.revoked:
        raise Unauthorized("This device has been revoked.", code="device_revoked")
    if row.revoked_at is not None:
        raise Unauthorized("The refresh token has been revoked.", code="token_revoked")
    successor = _unused_successor(row) if row.rotated_at is not None else None
    if row.rotated_at is not None and successor is None:
        revoke_family(row.family_id)
        raise RefreshReused(row.device_id)
    if successor is not None:  # answer the retry with the pair it should have received
        pair = TokenPair(
            access_token=issue_access(row.user_id, row.device_id),
            refresh_token=_resign_refresh(successor),
            expires_in=current_app.config["ACCESS_TOKEN_TTL_S"],
        )
        return pair, row
    row.rotated_at = utcnow()
    return issue_pair(row.user_id, row.device_id, family_id=row.family_id), row


__all__ = [
    "ACCESS",
    "ALGORITHM",
    "REFRESH",
    "RefreshReused",
    "TokenPair",
    "decode",
    "issue_access",
    "issue_pair",
    "revoke_device",
    "revoke_family",
    "rotate",
]
