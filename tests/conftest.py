"""Fixtures shared by every test package.

Apps and factories (real app, real database file in ``tmp_path``)::

    app, client, runner          the app on SQLite; runner.invoke(args=[...]) runs `linli`
    any_app                      the app on SQLite and on PostgreSQL (parametrized)
    pg_url                       a fresh, empty PostgreSQL database URL (dropped afterwards)
    pg_app_url                   the session's PostgreSQL database with every table emptied
    make_unit(code, name=None)   creates the unit and any missing ancestors; returns the code
    make_user(role=..., unit=None, grids=None, username=None, password=...) -> TestUser
    login(user, device_id=None, device_name="tablet") -> Login   (.headers for requests)

Factories work on ``any_app`` when the test uses it, otherwise on ``app``.
Territory used by default: district 990101 → street 990101001 → community 990101001001 →
grids 990101001001001 and 990101001001002 (the 99 prefix exists nowhere).
"""

from __future__ import annotations

import itertools
import os
import threading
from contextlib import contextmanager

# Cheap password hashing for the thousands of test accounts; production refuses these values
# (server/passwords.py). tests/server/test_passwords.py checks the production parameters.
os.environ.setdefault("LINLI_ARGON2_WEAK_FOR_TESTS", "1")
os.environ.setdefault("LINLI_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("LINLI_ARGON2_TIME_COST", "1")
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from server import create_app
from server.extensions import db
from server.models import AdminUnit, User, UserGrid, level_of, parent_code_of
from server.passwords import hash_password

DISTRICT = "990101"
STREET = "990101001"
COMMUNITY = "990101001001"
GRID_1 = "990101001001001"
GRID_2 = "990101001001002"
DEFAULT_PASSWORD = "correct horse battery"
TEST_SECRET = "test-secret-key-" + "x" * 32

_HOME_BY_ROLE = {
    "grid_worker": COMMUNITY,
    "community_head": COMMUNITY,
    "street_admin": STREET,
    "district_admin": DISTRICT,
}


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("LINLI_REQUIRE_PG") == "1":
        pytest.fail(f"PostgreSQL required (LINLI_REQUIRE_PG=1) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@contextmanager
def _pg_database(prefix: str) -> Iterator[str]:
    """Create a database on LINLI_TEST_PG_URL's server; drop it afterwards. Skips (or fails
    with LINLI_REQUIRE_PG=1) when the server is not there."""
    base = os.environ.get("LINLI_TEST_PG_URL")
    if not base:
        _pg_unavailable("LINLI_TEST_PG_URL is not set")
    import psycopg

    url = make_url(base)
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _pg_unavailable(f"cannot connect to {url.render_as_string()}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on LINLI_TEST_PG_URL's server, dropped after the test."""
    with _pg_database("linli_test") as url:
        yield url


@pytest.fixture(scope="session")
def _pg_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per test session with the schema created once (see ``pg_app_url``)."""
    with _pg_database("linli_shared") as shared:
        _dispose(build_app(tmp_path_factory.mktemp("pg_schema"), shared))
        yield shared


@pytest.fixture
def pg_app_url(_pg_shared: str) -> str:
    """The session's PostgreSQL database, every table emptied: fast isolation for app tests."""
    import psycopg

    dsn = make_url(_pg_shared).set(drivername="postgresql").render_as_string(hide_password=False)
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return _pg_shared


# --- apps -------------------------------------------------------------------------------------


def build_app(
    tmp_path: Any, database_url: str | None = None, *, create_tables: bool = True, **config: Any
) -> Flask:
    """A test app on ``database_url`` (default: a SQLite file in tmp_path), tables created
    unless ``create_tables`` is false (a test of the migrations builds them itself)."""
    settings = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'linli.sqlite3'}",
        "SECRET_KEY": TEST_SECRET,
        **config,
    }
    app = create_app(settings)
    if create_tables:
        with app.app_context():
            db.create_all()
    return app


def _dispose(app: Flask) -> None:
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra config for ``app``/``any_app``; override this fixture in a module to tune it."""
    return {}


@pytest.fixture
def app(tmp_path: Any, app_config: dict[str, Any]) -> Iterator[Flask]:
    application = build_app(tmp_path, **app_config)
    yield application
    _dispose(application)


@pytest.fixture(params=["sqlite", "postgres"])
def any_app(
    request: pytest.FixtureRequest, tmp_path: Any, app_config: dict[str, Any]
) -> Iterator[Flask]:
    url = request.getfixturevalue("pg_app_url") if request.param == "postgres" else None
    application = build_app(tmp_path, url, **app_config)
    yield application
    _dispose(application)


@pytest.fixture
def test_app(request: pytest.FixtureRequest) -> Flask:
    """The app the test uses: ``any_app`` if requested, else ``app``."""
    name = "any_app" if "any_app" in request.fixturenames else "app"
    return request.getfixturevalue(name)


@pytest.fixture
def live_server(test_app: Flask) -> Iterator[str]:
    """The app on a real socket at 127.0.0.1 (threaded server), stopped after the test."""
    server = make_server("127.0.0.1", 0, test_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def client(test_app: Flask) -> FlaskClient:
    return test_app.test_client()


class LinliCliRunner(FlaskCliRunner):
    """Runs the ``linli`` command group (not ``app.cli``) against the test app."""

    def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:
        from server.cli import main

        return super().invoke(cli or main, args, **kwargs)


@pytest.fixture
def runner(test_app: Flask) -> LinliCliRunner:
    return LinliCliRunner(test_app)


# --- factories --------------------------------------------------------------------------------


@pytest.fixture
def make_unit(test_app: Flask) -> Callable[..., str]:
    def make(code: str, name: str | None = None) -> str:
        with test_app.app_context():
            chain = [code]
            while (parent := parent_code_of(chain[-1])) is not None:
                chain.append(parent)
            for unit_code in reversed(chain):
                if db.session.get(AdminUnit, unit_code) is None:
                    db.session.add(
                        AdminUnit(
                            code=unit_code,
                            name=name if unit_code == code and name else f"Unit {unit_code}",
                            level=level_of(unit_code).value,
                            parent_code=parent_code_of(unit_code),
                        )
                    )
                    db.session.flush()
            db.session.commit()
        return code

    return make


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a test class

    id: int
    username: str
    password: str
    role: str
    unit_code: str
    grids: list[str] = field(default_factory=list)


@pytest.fixture
def make_user(test_app: Flask, make_unit: Callable[..., str]) -> Callable[..., TestUser]:
    counter = itertools.count(1)

    def make(
        role: str = "grid_worker",
        unit: str | None = None,
        grids: list[str] | None = None,
        username: str | None = None,
        password: str = DEFAULT_PASSWORD,
        active: bool = True,
    ) -> TestUser:
        unit = unit or _HOME_BY_ROLE[role]
        if grids is None:
            grids = [GRID_1] if role == "grid_worker" else []
        for code in [unit, *grids]:
            make_unit(code)
        username = username or f"{role}{next(counter)}_{secrets.token_hex(2)}"
        with test_app.app_context():
            user = User(
                username=username,
                display_name=username.title(),
                role=role,
                unit_code=unit,
                password_hash=hash_password(password),
                active=active,
                grids=[UserGrid(grid_code=code) for code in grids],
            )
            db.session.add(user)
            db.session.commit()
            return TestUser(user.id, username, password, role, unit, list(grids))

    return make


@dataclass(frozen=True)
class Login:
    access_token: str
    refresh_token: str
    device_id: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture
def login(test_app: Flask) -> Callable[..., Login]:
    def do_login(
        user: TestUser, device_id: str | None = None, device_name: str = "tablet"
    ) -> Login:
        device_id = device_id or str(uuid.uuid4())
        response = test_app.test_client().post(
            "/api/v1/auth/login",
            json={
                "username": user.username,
                "password": user.password,
                "device_id": device_id,
                "device_name": device_name,
            },
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return Login(body["access_token"], body["refresh_token"], device_id, body)

    return do_login
