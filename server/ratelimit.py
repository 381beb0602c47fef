"""Login rate limits, counted in the database so they hold across worker processes.

Two keys per attempt: the account (``user:<username>``; a successful login clears its count)
and the client address (``ip:<address>``; only the window clears it, so logging in to one's own
account does not reset an attacker's address). Limits and window come from the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from server.db import utcnow
from server.errors import RateLimited
from server.extensions import db
from server.models import LoginAttempt


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    max_failures: int
    resets_on_success: bool


def login_limits(username: str, address: str | None) -> list[Limit]:
    config = current_app.config
    limits = [Limit(f"user:{username.lower()}", config["RATELIMIT_ACCOUNT_FAILURES"], True)]
    if address:
        limits.append(Limit(f"ip:{address}", config["RATELIMIT_ADDRESS_FAILURES"], False))
    return limits


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["RATELIMIT_WINDOW_S"])


def _counted_failures(limit: Limit, now: datetime) -> tuple[int, datetime | None]:
    """How many failures count against ``limit`` now, and the oldest of them."""
    since = now - _window()
    if limit.resets_on_success:
        last_ok = db.session.execute(
            select(func.max(LoginAttempt.at)).where(
                LoginAttempt.key == limit.key, LoginAttempt.ok.is_(True), LoginAttempt.at > since
            )
        ).scalar()
        since = last_ok or since
    count, oldest = db.session.execute(
        select(func.count(), func.min(LoginAttempt.at)).where(
            LoginAttempt.key == limit.key, LoginAttempt.ok.is_(False), LoginAttempt.at > since
        )
    ).one()
    return count, oldest


def check(limits: list[Limit]) -> None:
    """Raise RateLimited (with Retry-After) if any limit is used up."""
    now = utcnow()
    for limit in limits:
        count, oldest = _counted_failures(limit, now)
        if count >= limit.max_failures and oldest is not None:
            wait = (oldest + _window() - now).total_seconds()
            raise RateLimited(
                "Too many failed login attempts; try again later.",
                retry_after=max(1, math.ceil(wait)),
            )


def record(limits: list[Limit], ok: bool) -> None:
    """Note one attempt under every key, and forget attempts older than the window."""
    now = utcnow()
    keys = [limit.key for limit in limits]
    db.session.execute(
        delete(LoginAttempt).where(LoginAttempt.key.in_(keys), LoginAttempt.at < now - _window())
    )
    db.session.add_all(LoginAttempt(key=key, at=now, ok=ok) for key in keys)


__all__ = ["Limit", "check", "login_limits", "record"]
