"""The review console: server-rendered pages (zh-CN) for community heads and admins.

A cookie session of its own (never a bearer token; the API never accepts the cookie), CSRF
tokens on every form, strict security headers, and every read and write checked against the
user's jurisdiction. Views are thin: they parse a form, call ``server.actions`` /
``server.accounts``, and render.

    queue.py      /console/                the review queue, search
    record.py     /console/records/<id>    one record: provenance, history, conflicts, case
    dashboard.py  /console/dashboard       figures and charts (inline SVG)
    export.py     /console/export          the filtered queue as CSV or Excel
    admin.py      /console/admin           users and devices; /console/access-log
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

_STATIC = Path(__file__).resolve().parent.parent / "static" / "console"

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder=str(_STATIC),
    static_url_path="/static",
)


def init_console(app: Flask) -> None:
    """Register the console blueprint and its cookie, header and template settings."""
    from server.console import (  # noqa: F401  (routes register on import)
        admin,
        auth,
        dashboard,
        errors,
        export,
        queue,
        record,
    )
    from server.console.security import configure

    configure(app)
    app.register_blueprint(bp)


__all__ = ["bp", "init_console"]
