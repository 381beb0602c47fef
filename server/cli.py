"""The ``linli`` command: a Flask CLI group over ``create_app``.

linli db upgrade                       apply migrations (Flask-Migrate)
linli users create --username ...      create a user
linli devices register / revoke        manage devices
linli audit verify                     check the audit hash chain (exit 1 if broken)
linli serve                            run under gunicorn
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from server import accounts, audit, create_app
from server.errors import APIError
from server.extensions import db
from server.models import Role, User

CLI_ACTOR = "cli"


def _app_factory() -> Flask:
    return create_app()


@click.group(cls=FlaskGroup, create_app=_app_factory, add_version_option=False)
def main() -> None:
    """Linli server: database, users, devices, audit and serving."""


def _fail(error: APIError) -> None:
    raise click.ClickException(f"{error.code}: {error.message}")


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.option("--username", required=True, help="Login name.")
@click.option("--display-name", default="", help="Name shown to people (defaults to username).")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="Role.")
@click.option("--unit", "unit_code", required=True, help="Home unit code.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Password (prompted for if omitted).",
)
@click.option("--grid", "grids", multiple=True, help="Assigned grid code (repeatable).")
@with_appcontext
def create_user(grids: tuple[str, ...], **fields: Any) -> None:
    """Create a user."""
    try:
        user = accounts.create_user(CLI_ACTOR, grids=grids, **fields)
    except APIError as error:
        _fail(error)
    db.session.commit()
    click.echo(f"created user {user.id} {user.username} ({user.role}, {user.unit_code})")


@main.group()
def devices() -> None:
    """Manage registered devices."""


@devices.command("register")
@click.option("--user", "username", required=True, help="Username of the device's owner.")
@click.option("--device-id", required=True, help="The device's UUID.")
@click.option("--name", default="", help="A name people recognise.")
@with_appcontext
def register_device(username: str, device_id: str, name: str) -> None:
    """Register a device for a user before its first login."""
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()
    if user is None:
        raise click.ClickException(f"no user {username}")
    try:
        device = accounts.register_device(CLI_ACTOR, user.id, device_id, name)
    except APIError as error:
        _fail(error)
    db.session.commit()
    click.echo(f"registered device {device.id} for {username}")


@devices.command("revoke")
@click.argument("device_id")
@with_appcontext
def revoke_device(device_id: str) -> None:
    """Revoke a device: its tokens stop working at once."""
    try:
        accounts.revoke_device(CLI_ACTOR, device_id)
    except APIError as error:
        _fail(error)
    db.session.commit()
    click.echo(f"revoked device {device_id}")


@main.group("audit")
def audit_group() -> None:
    """Inspect the audit trail."""


@audit_group.command("verify")
@with_appcontext
def verify_audit() -> None:
    """Verify the audit hash chain; exit status 1 if it is broken."""
    report = audit.verify_chain()
    if report.ok:
        click.echo(f"audit chain ok: {report.checked} entries")
        return
    click.echo(f"audit chain broken at seq {report.first_bad_seq}: {report.reason}", err=True)
    raise SystemExit(1)


def default_workers() -> int:
    """2 × cores + 1, capped at 17 (more rarely helps one database)."""
    return min(2 * multiprocessing.cpu_count() + 1, 17)


@main.command("serve", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, help="Port to bind.")
@click.option("--workers", type=int, default=None, help="Worker processes [2×cores+1, ≤17].")
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the app with gunicorn (use `flask --app server run` for development).

    The app is built here, outside any application context: a context pushed by the CLI would
    be inherited by every forked worker and shared by all its requests, keeping one database
    session (and on SQLite the write lock) open across requests.
    """
    from server.serving import GunicornApp

    app = create_app()
    GunicornApp(app, {"bind": f"{host}:{port}", "workers": workers or default_workers()}).run()


@main.command("load-fixtures")
@click.option(
    "--size",
    type=click.Choice(["small", "demo", "district"]),
    default="demo",
    show_default=True,
    help="How big a synthetic district to generate.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Generator seed.")
@click.option("--codes-only", is_flag=True, help="Load only the code tables.")
@with_appcontext
def load_fixtures(size: str, seed: int, codes_only: bool) -> None:
    """Load the code tables and a synthetic district (no real person's data) into the database."""
    from server import loader

    entries = loader.load_code_tables_into_db()
    click.echo(f"code tables: {entries} entries")
    if codes_only:
        return

    def progress(what: str, done: int) -> None:
        click.echo(f"\r{what}: {done:,}", nl=False)

    try:
        report = loader.load_district(size, seed, progress=progress)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"\nloaded {report.units} units, {report.users} users, {report.records:,} "
        f"records in {report.seconds:.1f} s"
    )


__all__ = ["main"]
