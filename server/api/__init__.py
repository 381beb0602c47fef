"""HTTP API blueprints (flask-smorest), all under /api/v1.

``BLUEPRINTS`` lists the modules whose ``blp`` ``create_app`` registers, in order. To add one,
append its import path here: the import is not guarded, so a broken module fails loudly.
"""

from __future__ import annotations

URL_PREFIX = "/api/v1"

BLUEPRINTS: tuple[str, ...] = (
    "server.api.auth",
    "server.api.admin",
    "server.api.sync",
    "server.api.records",
)

__all__ = ["BLUEPRINTS", "URL_PREFIX"]
