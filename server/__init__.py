"""Linli server: the Flask application factory.

app = create_app()                      # defaults < LINLI_* environment
app = create_app({"DATABASE_URL": ...})  # a mapping (tests) wins over both
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from server import config as _config
from server.jsontext import JSONProvider


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, database, error handlers, API blueprints."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("LINLI_INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.json = JSONProvider(app)  # request bodies read with orjson where exact (server.jsontext)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(_config.build(app.instance_path, config))

    from server import models  # noqa: F401  (every table on db.metadata)
    from server.api import BLUEPRINTS
    from server.db import configure_engine
    from server.errors import register_error_handlers
    from server.extensions import api, db, migrate

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            configure_engine(
                engine,
                busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"],
                wal_autocheckpoint=app.config["SQLITE_WAL_AUTOCHECKPOINT"],
                idle_ping_s=app.config["DB_IDLE_PING_S"],
            )
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    api.init_app(app)
    register_error_handlers(app)
    for path in BLUEPRINTS:
        api.register_blueprint(importlib.import_module(path).blp)
    from server.console import init_console

    init_console(app)
    return app


__all__ = ["create_app"]
