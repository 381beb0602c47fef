"""Pooled PostgreSQL connections: tested before use only after being idle, replaced when the
server closed them, and a connection lost under a request is a 503 to retry, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from server.extensions import db
from tests.conftest import _dispose, build_app

pytestmark = pytest.mark.postgres


def _kill_other_sessions(url: str) -> int:
    """Terminate every other server process of this database (what a restart does to them)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def _pings(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    with app.app_context():
        dialect = db.engine.dialect
    calls: list[int] = []
    real = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        calls.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counting)
    return calls


def _select_one(app: Any) -> int:
    with app.app_context():
        value = db.session.execute(text("SELECT 1")).scalar()
        db.session.commit()
        return value


def test_a_connection_used_a_moment_ago_is_not_pinged(tmp_path, pg_url, monkeypatch):
    app = build_app(tmp_path, pg_url)
    try:
        pings = _pings(app, monkeypatch)
        for _ in range(5):
            assert _select_one(app) == 1
        assert pings == []  # checked out five times, no extra round trip
    finally:
        _dispose(app)


def test_an_idle_connection_closed_by_the_server_is_replaced_before_use(
    tmp_path, pg_url, monkeypatch
):
    app = build_app(tmp_path, pg_url, DB_IDLE_PING_S=0.0)  # every reuse counts as idle
    try:
        pings = _pings(app, monkeypatch)
        assert _select_one(app) == 1
        before = len(pings)
        assert _kill_other_sessions(pg_url) >= 1
        assert _select_one(app) == 1  # the dead connection was found and replaced
        assert len(pings) == before + 1
    finally:
        _dispose(app)


def test_a_connection_lost_under_a_request_is_a_503_and_the_next_request_works(tmp_path, pg_url):
    app = build_app(tmp_path, pg_url)  # within the idle window: not pinged
    try:
        client = app.test_client()
        login = {"username": "nobody", "password": "x" * 12, "device_id": str(uuid.uuid4())}
        assert client.post("/api/v1/auth/login", json=login).status_code == 401
        assert _kill_other_sessions(pg_url) >= 1
        lost = client.post("/api/v1/auth/login", json=login)
        assert lost.status_code == 503, lost.get_data(as_text=True)
        assert lost.get_json()["code"] == "busy" and lost.headers["Retry-After"] == "1"
        assert client.post("/api/v1/auth/login", json=login).status_code == 401
    finally:
        _dispose(app)
