"""``linli field``: a reference field app on the command line, built only on the public SDK.

Configure with ``--server`` / ``--db`` / ``--key`` or the environment (``LINLI_FIELD_SERVER``,
``LINLI_FIELD_DB``, ``LINLI_FIELD_KEY``, ``LINLI_FIELD_PASSWORD``). Example::

    linli field --server http://127.0.0.1:5000 login worker1
    linli field visit --grid 990101001001001 --findings "独居老人，身体尚可" --note "下周复访"
    linli field note 3f2a... "电话回访：已修好"
    linli field advance 3f2a... assign --param responsible_unit=调委会 --opinion 受理
    linli field status
    linli field sync

A test may pass ``obj={"transport": ...}`` to click to run the commands against an app in
process (``AppTransport``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from client_sdk import Client, ClientError, ValidationError

__all__ = ["field"]


@click.group()
@click.option(
    "--db",
    "db_path",
    envvar="LINLI_FIELD_DB",
    default="linli-field.sqlite3",
    show_default=True,
    help="The device's local database file.",
)
@click.option(
    "--server",
    envvar="LINLI_FIELD_SERVER",
    default=None,
    help="The Linli server's base URL, e.g. https://linli.example.gov.",
)
@click.option(
    "--key",
    envvar="LINLI_FIELD_KEY",
    default=None,
    help="Passphrase of an encrypted device database (SQLCipher); "
    "prefer the LINLI_FIELD_KEY environment variable to keep it out of the shell history.",
)
@click.pass_context
def field(ctx: click.Context, db_path: str, server: str | None, key: str | None) -> None:
    """The field app of a grid worker: work offline, then sync."""
    ctx.ensure_object(dict).update(db_path=db_path, server=server, key=key)


@contextmanager
def _client(ctx: click.Context) -> Iterator[Client]:
    """Open the device; turn SDK errors into a clean message and exit status 1."""
    try:
        with Client(
            db_path=ctx.obj["db_path"],
            base_url=ctx.obj["server"],
            transport=ctx.obj.get("transport"),
            encryption_key=ctx.obj["key"],
        ) as client:
            yield client
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {v}" for k, v in sorted(exc.errors.items()))
        raise click.ClickException(f"{exc.message} ({problems})") from None
    except ClientError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from None


def _line(view: dict[str, Any], *names: str) -> str:
    f = view["fields"]
    return "  ".join([view["id"][:8], *(str(f.get(n, "")) for n in names)])


_password = click.option(
    "--password",
    envvar="LINLI_FIELD_PASSWORD",
    prompt=True,
    hide_input=True,
    help="Your password (prompted when not given).",
)


@field.command()
@click.argument("username")
@_password
@click.pass_context
def login(ctx: click.Context, username: str, password: str) -> None:
    """Sign in online (once per device); afterwards `unlock` works offline."""
    with _client(ctx) as client:
        user = client.login(username, password)
        click.echo(f"Signed in as {user.get('display_name') or username} ({user.get('role')}).")


@field.command()
@_password
@click.pass_context
def unlock(ctx: click.Context, password: str) -> None:
    """Check your password offline, against the last online sign-in."""
    with _client(ctx) as client:
        user = client.unlock(password)
        click.echo(f"Unlocked for {user.get('username')}.")


@field.command()
@click.option("--grid", default=None, help="Only this grid (15-digit code).")
@click.pass_context
def households(ctx: click.Context, grid: str | None) -> None:
    """List the households on this device."""
    with _client(ctx) as client:
        for view in client.households(grid):
            click.echo(_line(view, "address", "head_name"))


@field.command("add-household")
@click.option("--grid", required=True, help="Grid code (15 digits).")
@click.option("--address", required=True, help="Address of the household.")
@click.option("--head-name", default=None, help="Name of the head of household.")
@click.pass_context
def add_household(ctx: click.Context, grid: str, address: str, head_name: str | None) -> None:
    """Register a household."""
    with _client(ctx) as client:
        view = client.create_household(grid_code=grid, address=address, head_name=head_name)
        click.echo(f"Saved household {view['id']}.")


@field.command()
@click.option("--grid", required=True, help="Grid code (15 digits).")
@click.option("--findings", default=None, help="What you found.")
@click.option("--household", default=None, help="Household id, if the visit was to one.")
@click.option("--note", "notes", multiple=True, help="A note (repeat for several).")
@click.pass_context
def visit(
    ctx: click.Context,
    grid: str,
    findings: str | None,
    household: str | None,
    notes: tuple[str, ...],
) -> None:
    """Record a door-to-door visit (走访)."""
    with _client(ctx) as client:
        view = client.record_visit(
            grid_code=grid, findings=findings, household_id=household, notes=list(notes)
        )
        click.echo(f"Saved visit {view['id']}.")


@field.command()
@click.option("--grid", required=True, help="Grid code (15 digits).")
@click.option("--title", required=True, help="A short title of the dispute.")
@click.option("--category", required=True, help="Dispute category code, e.g. 0201.")
@click.option("--description", default=None, help="What happened.")
@click.pass_context
def dispute(
    ctx: click.Context, grid: str, title: str, category: str, description: str | None
) -> None:
    """Report a dispute found while screening (矛盾纠纷排查)."""
    with _client(ctx) as client:
        view = client.screen_dispute(
            grid_code=grid, title=title, category=category, description=description
        )
        click.echo(f"Saved dispute {view['id']}.")


@field.command()
@click.argument("record_id")
@click.argument("text")
@click.pass_context
def note(ctx: click.Context, record_id: str, text: str) -> None:
    """Add a note to a record already on this device (notes are never lost to a conflict)."""
    with _client(ctx) as client:
        view = client.add_note(record_id, text)
        click.echo(f"Note added to {view['type']} {view['id']}.")


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; each value is JSON (a number, a list, ...) or else plain text."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            found[name.strip()] = json.loads(text)
        except ValueError:
            found[name.strip()] = text
    return found


@field.command()
@click.argument("dispute_id")
@click.argument("action")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the step, e.g. responsible_unit=调委会 (repeat for several).",
)
@click.option("--opinion", default=None, help="Your opinion or comment on this step.")
@click.pass_context
def advance(
    ctx: click.Context, dispute_id: str, action: str, params: tuple[str, ...], opinion: str | None
) -> None:
    """Take a workflow step on a dispute (accept, assign, start, resolve, follow_up, ...).

    The step is checked here with the server's rules; the server decides again on sync.
    """
    values = _params(params)
    with _client(ctx) as client:
        view = client.advance(dispute_id, action, opinion=opinion, **values)
        allowed = client.allowed_actions(view["id"])
        click.echo(
            f"Step {action} saved on dispute {view['id']}; it will be sent with the next sync."
        )
        click.echo("Next possible steps: " + (", ".join(allowed) if allowed else "none") + ".")


@field.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """How many changes wait to be synced, conflicts, returned records."""
    with _client(ctx) as client:
        s = client.status()
        click.echo(f"{s['pending']} changes not yet synced.")
        for key, label in (
            ("rejected", "refused by the server"),
            ("conflicts", "conflicts"),
            ("returned", "records returned for rework"),
        ):
            if s[key]:
                click.echo(f"{s[key]} {label}.")


def _progress() -> Callable[[str, int, int | None], None]:
    def show(phase: str, done: int, total: int | None) -> None:
        if phase == "done":
            click.echo()
            return
        width = 20
        fill = width if not total else width * done // max(total, 1)
        bar = "#" * fill + "-" * (width - fill)
        click.echo(
            f"\r{phase:<9} [{bar}] {done}/{total if total is not None else '?'}   ", nl=False
        )

    return show


@field.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Send your changes and fetch what changed in your grids."""
    with _client(ctx) as client:
        report = client.sync(progress=_progress())
        click.echo(
            f"Sent {report.pushed} (conflicts {report.conflicts}, refused "
            f"{report.rejected}), received {report.pulled}, removed {report.removed} "
            f"in {report.duration:.1f}s."
        )


@field.command()
@click.pass_context
def conflicts(ctx: click.Context) -> None:
    """List fields with competing values and who wrote each."""
    with _client(ctx) as client:
        for c in client.conflicts():
            click.echo(f"{c.record_id} {c.record_type}.{c.field}:")
            for v in c.values:
                click.echo(
                    f"    {json.dumps(v['value'], ensure_ascii=False)}  by {v['author']} "
                    f"(device {str(v['device_id'])[:8]}, {v['hlc']})"
                )


@field.command()
@click.argument("record_id")
@click.argument("field_name")
@click.argument("value")
@click.option("--reason", required=True, help="Why this value (e.g. checked on site).")
@click.pass_context
def resolve(ctx: click.Context, record_id: str, field_name: str, value: str, reason: str) -> None:
    """Choose the value of a conflicting field (VALUE is JSON or plain text)."""
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    with _client(ctx) as client:
        client.resolve(record_id, field_name, parsed, reason)
        click.echo("Resolved; it will be sent with the next sync.")


@field.command()
@click.pass_context
def returned(ctx: click.Context) -> None:
    """List records a reviewer returned for rework, with the comment."""
    with _client(ctx) as client:
        for view in client.returned():
            review = view["review"] or {}
            click.echo(
                f"{view['id']} {view['type']}: {review.get('comment') or ''} "
                f"({review.get('by') or ''})"
            )
