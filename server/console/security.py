"""Console-wide protections: session cookie settings, CSRF tokens, security headers.

CSRF: one random token per session (``session["csrf"]``), put in every form as the hidden
field ``csrf_token`` and compared in constant time before any POST reaches a view; a missing or
wrong token answers 400.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from flask import Flask, abort, current_app, request, session
from werkzeug.wrappers import Response

from server.console import bp

CSRF_FIELD = "csrf_token"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_TRUE = {"1", "true", "yes", "on"}


def _flag(value: object) -> bool:
    """A config flag that may arrive as a string from the environment."""
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


def configure(app: Flask) -> None:
    """Cookie settings: HttpOnly, SameSite=Lax, Secure unless configured off (plain http)."""
    app.config["SESSION_COOKIE_SECURE"] = _flag(app.config.get("SESSION_COOKIE_SECURE", True))
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("CONSOLE_SESSION_HOURS", 10)
    if not app.config.get("SESSION_COOKIE_NAME") or app.config["SESSION_COOKIE_NAME"] == "session":
        app.config["SESSION_COOKIE_NAME"] = "linli_console"
    # The cookie is only ever sent to console pages, never to /api.
    app.config["SESSION_COOKIE_PATH"] = "/console"
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        hours=int(app.config["CONSOLE_SESSION_HOURS"])
    )
    app.jinja_env.globals["csrf_token"] = csrf_token


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


@bp.before_request
def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        current_app.logger.warning("console: CSRF token missing or wrong for %s", request.path)
        abort(400, description="csrf")


@bp.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(f"{bp.url_prefix}/static/"):
        # Pages may show personal data: never store them in a cache.
        response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["CSRF_FIELD", "SECURITY_HEADERS", "configure", "csrf_token"]


@bp.app_template_filter("cst")
def _cst(value: object) -> str:
    from server.console.labels import local

    return local(value)  # type: ignore[arg-type]


@bp.app_template_filter("field_label")
def _field_label(value: str) -> str:
    from server.console.labels import field_label

    return "、".join(field_label(part) for part in str(value).split(","))
