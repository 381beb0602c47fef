"""Console sign-in and sign-out with a cookie session, and the per-request user check.

The session holds the user id, the sign-in time and a fingerprint of the password hash, so a
password reset or a disabled account ends every console session at its next request. A bearer
token is never looked at here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from server import audit, ratelimit
from server.actions import REVIEWER_ROLES
from server.console import bp
from server.console.security import csrf_token
from server.errors import RateLimited
from server.extensions import db
from server.models import ADMIN_ROLES, User
from server.passwords import verify_password
from server.scope import Scope

F = TypeVar("F", bound=Callable[..., Any])


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def current_user() -> User | None:
    """The signed-in user of this request (cached on ``g``), or None."""
    if "console_user" in g:
        return g.console_user
    user = None
    user_id, since = session.get("uid"), session.get("at", 0)
    max_age = int(current_app.config["CONSOLE_SESSION_HOURS"]) * 3600
    if user_id is not None and time.time() - since < max_age:
        found = db.session.get(User, user_id)
        if found is not None and found.active and session.get("pw") == _fingerprint(found):
            user = found
    g.console_user = user
    if user is not None:
        g.scope = Scope.for_user(user)
    return user


def _guard(roles: tuple[str, ...] | None) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                session.pop("uid", None)
                return redirect(url_for("console.login", next=request.full_path))
            if roles is not None and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def signed_in(view: F) -> F:
    """Any signed-in user (grid workers included)."""
    return _guard(None)(view)


def reviewer(view: F) -> F:
    """Community heads and admins; grid workers get 403."""
    return _guard(tuple(REVIEWER_ROLES))(view)


def admin(view: F) -> F:
    """Street and district admins."""
    return _guard(tuple(ADMIN_ROLES))(view)


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (no scheme, no host, no '//')."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return url_for("console.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        csrf_token()
        return render_template("console/login.html", next=request.args.get("next"))
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    nxt = request.form.get("next")
    limits = ratelimit.login_limits(username, request.remote_addr)
    try:
        ratelimit.check(limits)
    except RateLimited as exc:
        db.session.rollback()
        minutes = max(1, exc.retry_after // 60)
        error = f"登录失败次数过多，请 {minutes} 分钟后再试。"
        return (
            render_template("console/login.html", error=error, next=nxt),
            429,
            {"Retry-After": str(exc.retry_after)},
        )
    found = db.session.execute(
        select(User.id, User.password_hash).where(User.username == username)
    ).first()
    db.session.rollback()  # no transaction (on SQLite: no write lock) while Argon2 runs
    ok = verify_password(found.password_hash if found else None, password)
    user = db.session.get(User, found.id) if found else None
    if user is None or not user.active or not ok:
        ratelimit.record(limits, ok=False)
        audit.record(
            username or "-",
            "console.login_failed",
            f"user:{username}",
            {"address": request.remote_addr},
        )
        db.session.commit()
        return render_template(
            "console/login.html", error="用户名或密码错误。", next=nxt, username=username
        ), 401
    ratelimit.record(limits, ok=True)
    audit.record(
        user.username, "console.login", f"user:{user.id}", {"address": request.remote_addr}
    )
    db.session.commit()
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session.permanent = True
    session.update(uid=user.id, at=int(time.time()), pw=_fingerprint(user))
    csrf_token()
    return redirect(_safe_next(nxt), code=303)


@bp.post("/logout")
def logout() -> Any:
    user = current_user()
    if user is not None:
        audit.record(user.username, "console.logout", f"user:{user.id}", {})
        db.session.commit()
    session.clear()
    return redirect(url_for("console.login"), code=303)


__all__ = ["admin", "current_user", "reviewer", "signed_in"]
