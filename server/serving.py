"""Running the app under gunicorn from Python (``linli serve``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class GunicornApp(BaseApplication):
    """A gunicorn application serving an already-built Flask app."""

    def __init__(self, app: Flask, options: dict[str, Any] | None = None) -> None:
        self.application = app
        self.options = options or {}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key.lower(), value)
        self.cfg.set("post_fork", self._after_fork)

    def _after_fork(self, _server: Any, _worker: Any) -> None:
        """Drop pooled connections inherited from the master (SQLAlchemy's pooling-with-fork
        advice); each worker opens its own."""
        from server.extensions import db

        with self.application.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)

    def load(self) -> Flask:
        return self.application


__all__ = ["GunicornApp"]
