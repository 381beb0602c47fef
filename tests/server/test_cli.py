"""The ``linli`` command: migrations, users, devices, serving."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from server.cli import default_workers, main
from server.extensions import db
from server.models import Device, User
from server.passwords import verify_password
from tests.conftest import COMMUNITY, GRID_1, LinliCliRunner, build_app

# Tables whose migration this suite checks; the lead widens it as models are added.
FOUNDATION_TABLES = {
    "admin_unit",
    "user_account",
    "user_grid",
    "device",
    "refresh_token",
    "login_attempt",
    "audit_entry",
    "access_log",
    "code_entry",
    "record",
    "sync_op",
    "removal",
    "sync_counter",
    "grid_digest",
}


def _tables_in(diff) -> set[str]:
    names = set()
    for item in diff if isinstance(diff, list) else [diff]:
        for part in item if isinstance(item, tuple) else [item]:
            table = getattr(part, "table", None)
            name = getattr(table, "name", None) or getattr(part, "name", None)
            if isinstance(part, str) and part in FOUNDATION_TABLES:
                names.add(part)
            elif name in FOUNDATION_TABLES:
                names.add(name)
    return names


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_db_upgrade_builds_the_models_tables(request, tmp_path, backend):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    app = build_app(tmp_path, url, create_tables=False)
    result = LinliCliRunner(app).invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) >= FOUNDATION_TABLES
        diffs = compare_metadata(MigrationContext.configure(connection), db.metadata)
        ours = [diff for diff in diffs if _tables_in(diff)]
    with app.app_context():
        db.engine.dispose()
    assert ours == [], "migrations differ from the models; regenerate them"


def test_users_create(app, runner, make_unit):
    make_unit(GRID_1)
    result = runner.invoke(
        args=[
            "users", "create", "--username", "li", "--role", "grid_worker",
            "--unit", COMMUNITY, "--password", "a good password", "--grid", GRID_1,
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "li")).scalar_one()
        assert user.grid_codes == [GRID_1]
        assert verify_password(user.password_hash, "a good password")


def test_users_create_prompts_for_the_password(app, runner, make_unit):
    make_unit(COMMUNITY)
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--username",
            "zhao",
            "--role",
            "community_head",
            "--unit",
            COMMUNITY,
        ],
        input="secret password\nsecret password\n",
    )
    assert result.exit_code == 0, result.output
    assert "secret password" not in result.output


def test_users_create_reports_errors(runner):
    result = runner.invoke(
        args=["users", "create", "--username", "x1", "--role", "grid_worker",
              "--unit", COMMUNITY, "--password", "a good password"]
    )  # fmt: skip
    assert result.exit_code == 1 and "not_found" in result.output


def test_devices_register_and_revoke(app, runner, make_user, client):
    user = make_user()
    device_id = str(uuid.uuid4())
    registered = runner.invoke(
        args=[
            "devices",
            "register",
            "--user",
            user.username,
            "--device-id",
            device_id,
            "--name",
            "A",
        ]
    )
    assert registered.exit_code == 0, registered.output
    again = runner.invoke(
        args=["devices", "register", "--user", user.username, "--device-id", device_id]
    )
    assert again.exit_code == 1 and "device_exists" in again.output
    assert runner.invoke(args=["devices", "revoke", device_id]).exit_code == 0
    with app.app_context():
        assert db.session.get(Device, device_id).revoked_at is not None
    assert runner.invoke(args=["devices", "revoke", str(uuid.uuid4())]).exit_code == 1


def test_every_command_has_help(runner):
    def walk(group, path):
        for name, command in group.commands.items():
            assert command.help or command.short_help, f"{path} {name} has no help"
            if hasattr(command, "commands"):
                walk(command, f"{path} {name}")

    walk(main, "linli")
    result = runner.invoke(args=["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


def test_default_workers_is_capped():
    assert 3 <= default_workers() <= 17
