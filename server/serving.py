"""Running the app under gunicorn from Python (``linli serve``)."""

from __future__ import annotations

import gc
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
        advice); each worker opens its own. Then tune the garbage collector (:func:`tune_gc`)."""
        from server.extensions import db

        with self.application.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        warm(self.application)
        gc.collect()  # what warming left behind, before the rest is frozen for good
        tune_gc()

    def load(self) -> Flask:
        return self.application


def warm(app: Flask) -> None:
    """Do, once in each worker before it takes requests, what a first sync would otherwise wait
    for: load the code tables and run the reads of authentication and push for a device and
    records that do not exist (their statements compiled, the worker's database connection
    open). Reads only; a failure is logged and left to the first request."""
    from server import auth, push
    from server.codes import codebook
    from server.db import read_phase
    from server.extensions import db

    try:
        with app.app_context():
            try:
                with read_phase(db.session):
                    codebook()
                    auth.warm()
                    push.warm()
            finally:
                db.session.remove()
    except Exception:
        app.logger.warning("worker warm-up failed; the first request will do it", exc_info=True)


# Collect the youngest generation after this many new container objects instead of CPython's
# 700: a push allocates tens of thousands of small tuples and dicts that live until it commits,
# and with the default every one of them is scanned again and again. Cycles (rare here) wait a
# little longer to be freed; memory stays bounded by the same rule.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> tuple[int, int, int]:
    """Set up the garbage collector of a server process; return the thresholds it had.

    Everything loaded so far (the app, its modules, the code tables) is moved out of the
    collector's sight for good (``gc.freeze``): it is never garbage, and a full collection no
    longer walks it. Measured on the in-process apply path: the collector took about 45 µs of
    the ~300 µs a pushed record costs; with these settings about 5.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return before


__all__ = ["GC_THRESHOLDS", "GunicornApp", "tune_gc", "warm"]
