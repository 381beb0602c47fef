"""Configuration layering, the generated secret, and SQLite connection setup."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from server import config as config_module
from server import create_app
from server.extensions import db


def test_env_overrides_defaults_with_types():
    found = config_module.from_env(
        {
            "LINLI_JWT_ISSUER": "district-7",
            "LINLI_ACCESS_TOKEN_TTL_S": "60",
            "LINLI_TEST_PG_URL": "ignored",
            "OTHER": "ignored",
        }
    )
    assert found == {"JWT_ISSUER": "district-7", "ACCESS_TOKEN_TTL_S": 60}


def test_mapping_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_JWT_ISSUER", "from-env")
    monkeypatch.setenv("LINLI_JWT_AUDIENCE", "aud-from-env")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "JWT_ISSUER": "from-mapping"})
    assert app.config["JWT_ISSUER"] == "from-mapping"
    assert app.config["JWT_AUDIENCE"] == "aud-from-env"


def test_database_defaults_to_sqlite_in_the_instance_folder(tmp_path):
    instance = tmp_path / "inst"
    app = create_app({"INSTANCE_PATH": str(instance)})
    assert instance.is_dir()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'linli.sqlite3'}"


def test_secret_is_generated_once_and_kept_private(tmp_path):
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    secret_file = tmp_path / "secret_key"
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 40
    assert secret_file.stat().st_mode & 0o077 == 0


def test_configured_secret_is_not_written(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 40})
    assert app.config["SECRET_KEY"] == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_sqlite_pragmas(app):
    with app.app_context(), db.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 30000
        assert pragma("synchronous") == 2  # FULL
        assert pragma("wal_autocheckpoint") == 10000  # SQLITE_WAL_AUTOCHECKPOINT


def test_every_transaction_begins_immediate(app, tmp_path):
    """A transaction that has only read already holds the write lock, so a second writer
    cannot start: read-then-write transactions queue instead of failing mid-way."""
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        assert connection.in_transaction()
        other = sqlite3.connect(tmp_path / "linli.sqlite3", timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        connection.rollback()


def test_foreign_keys_are_enforced(app):
    from sqlalchemy.exc import IntegrityError

    from server.models import AdminUnit

    with app.app_context():
        db.session.add(AdminUnit(code="990101001", name="x", level="street", parent_code="123456"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
