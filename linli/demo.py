"""``linli demo``: a living demo district on SQLite, served on http://127.0.0.1:5000.

The first run builds ``instance/`` at the repository root (or ``--instance``): migrations
(``linli db upgrade``), code tables and the synthetic district (``linli load-fixtures``), then a
short working day played by real field devices — the client SDK on the in-process transport:

- worker1 and worker2 record visits offline and screen a dispute, then sync;
- worker1's two tablets change the same field of one visit to different values → a conflict
  the console shows with both values;
- head1 returns one of worker1's visits with a comment and approves one of worker2's; the
  workers sync again and see the decision; the other new records wait in the review queue.

A marker file records that the setup finished, so a second run starts in seconds. Every
account's password is :data:`fixtures.DEMO_PASSWORD`; all data is synthetic.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fixtures import DEMO_PASSWORD

__all__ = ["demo"]

ROOT = Path(__file__).resolve().parents[1]
MARKER = "demo-ready.json"
DATABASE = "linli.sqlite3"
DEVICES = "demo-devices"
LOGINS = (
    ("admin", "区级管理员 district admin"),
    ("street1", "街道管理员 street admin"),
    ("head1", "社区负责人 community head (reviews)"),
    ("worker1", "网格员 grid worker"),
    ("worker2", "网格员 grid worker"),
)


def _config(instance: Path) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / DATABASE}",
        # The console is served over plain http on this machine: a Secure cookie would never
        # come back and nobody could sign in.
        "SESSION_COOKIE_SECURE": False,
    }


def _reset(instance: Path) -> None:
    for name in (MARKER, DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm"):
        (instance / name).unlink(missing_ok=True)
    shutil.rmtree(instance / DEVICES, ignore_errors=True)


def _step(message: str) -> None:
    click.echo(click.style("▸ ", fg="cyan") + message)


def setup(instance: Path, size: str = "demo") -> dict[str, Any]:
    """Build the demo database in ``instance``; return what was made (also kept in the marker)."""
    from flask_migrate import upgrade

    from server import create_app, loader

    started = time.perf_counter()
    instance.mkdir(parents=True, exist_ok=True)
    app = create_app(_config(instance))
    with app.app_context():
        _step("database: applying migrations")
        upgrade(directory=str(ROOT / "server" / "migrations"))
        entries = loader.load_code_tables_into_db()
        _step(f"code tables: {entries} entries")

        def progress(what: str, done: int) -> None:
            click.echo(f"\r  {what}: {done:,}", nl=False)

        _step(f"loading the synthetic district ({size})")
        report = loader.load_district(size, progress=progress)
        click.echo(
            f"\r  {report.records:,} records, {report.users} accounts in {report.seconds:.1f} s"
        )
    _step("a working day on real field devices (client SDK, in process)")
    story = _working_day(app, instance / DEVICES)
    _dispose(app)
    summary = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": size,
        "records": report.records,
        "seconds": round(time.perf_counter() - started, 1),
        **story,
    }
    (instance / MARKER).write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary


def _dispose(app: Any) -> None:
    from server.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def _working_day(app: Any, folder: Path) -> dict[str, Any]:
    from client_sdk import AppTransport, Client

    folder.mkdir(parents=True, exist_ok=True)

    def device(username: str, name: str) -> Client:
        client = Client(
            db_path=folder / f"{name}.sqlite3", transport=AppTransport(app), device_name=name
        )
        client.login(username, DEMO_PASSWORD)
        client.sync()
        return client

    w1a, w1b = device("worker1", "worker1-tablet"), device("worker1", "worker1-phone")
    w2 = device("worker2", "worker2-tablet")
    try:
        grid1 = w1a.user and _grid(w1a)
        grid2 = _grid(w2)
        # Offline: visits and a dispute screening on each grid.
        first = _visit(w1a, grid1, "独居老人张大爷身体尚可，反映楼道灯坏了，已报物业。")
        second = _visit(w1a, grid1, "低保户李阿姨家中漏水，已联系社区协调维修。")
        _visit(w2, grid2, "走访残疾人王先生，康复器材使用正常，申请了助残补贴。")
        w1a.screen_dispute(
            grid_code=grid1,
            title="楼上漏水引发邻里纠纷",
            category=_category(w1a),
            description="602 室漏水至 502 室，双方对维修费用有争议。",
        )
        w2.screen_dispute(
            grid_code=grid2,
            title="停车位占用纠纷",
            category=_category(w2),
            description="两户居民因固定车位被占多次争吵。",
        )
        for client in (w1a, w2):
            client.sync()
        _step("worker1 and worker2 synced their visits and disputes")
        # Both of worker1's devices hold the same visit; each changes its findings offline.
        w1b.sync()
        w1a.update(second["id"], findings="李阿姨家漏水已修好，费用由物业承担。")
        w1b.update(second["id"], findings="李阿姨家仍在漏水，需再次上门查看。")
        for client in (w1a, w1b, w1a):
            client.sync()
        conflicts = len(w1a.conflicts())
        _step(f"two devices of one grid changed the same field: {conflicts} conflict(s)")
        returned, approved = _review(app, first["id"], _latest_visit(w2, grid2))
        _step("head1 returned a visit with a comment and approved another")
        for client in (w1a, w1b, w2):
            client.sync()
        back = len(w1a.returned())
        _step(f"worker1's tablet received the returned visit ({back})")
        return {"conflicts": conflicts, "returned": returned, "approved": approved}
    finally:
        for client in (w1a, w1b, w2):
            client.close()


def _grid(client: Any) -> str:
    scope = client.store.get("scope") or client.store.get("login_scope") or {}
    return sorted(scope.get("prefixes") or [])[0]


def _category(client: Any) -> str:
    from fixtures import load_code_tables

    leaves = [e["code"] for e in load_code_tables()["dispute_categories"] if e.get("parent")]
    return leaves[0]


def _visit(client: Any, grid: str, findings: str) -> dict[str, Any]:
    return client.record_visit(
        grid_code=grid, findings=findings, visit_type="routine", notes=["下周复访"]
    )


def _latest_visit(client: Any, grid: str) -> str:
    mine = [v for v in client.visits(grid) if (v.get("review") or {}).get("status") != "approved"]
    return max(mine, key=lambda v: v["fields"].get("visited_at") or "")["id"]


def _review(app: Any, return_id: str, approve_id: str) -> tuple[str, str]:
    from sqlalchemy import select

    from server import actions
    from server.extensions import db
    from server.models import User
    from server.scope import Scope

    with app.app_context():
        head = db.session.execute(select(User).where(User.username == "head1")).scalar_one()
        scope = Scope.for_user(head)
        actions.review(
            head, scope, return_id, "returned", "请补充走访对象的联系电话和身体状况描述。"
        )
        actions.review(head, scope, approve_id, "approved", None)
    return return_id, approve_id


def serve(instance: Path, host: str, port: int, workers: int) -> None:
    """Serve with gunicorn. The app is built here, outside any application context: workers
    must not inherit one (Flask would reuse it for every request and never end a session)."""
    from server import create_app
    from server.serving import GunicornApp

    app = create_app(_config(instance))
    GunicornApp(app, {"bind": f"{host}:{port}", "workers": workers}).run()


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=5000, show_default=True, help="Port to serve on.")
@click.option("--reset", is_flag=True, help="Delete the demo database and start over.")
@click.option("--no-serve", is_flag=True, help="Set up only; do not start the server.")
@click.option(
    "--instance",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instance folder [LINLI_INSTANCE_PATH or <repo>/instance].",
)
@click.option(
    "--size",
    type=click.Choice(["small", "demo"]),
    default="demo",
    show_default=True,
    help="How big a district to load (small: 4 grids, for tests).",
)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
def demo(
    host: str,
    port: int,
    reset: bool,
    no_serve: bool,
    instance: Path | None,
    size: str,
    workers: int,
) -> None:
    """Set up a demo district on SQLite (first run) and serve the console."""
    folder = instance or Path(os.environ.get("LINLI_INSTANCE_PATH") or ROOT / "instance")
    folder = folder.resolve()
    if reset:
        _reset(folder)
        _step(f"reset {folder}")
    marker = folder / MARKER
    if marker.exists() and (folder / DATABASE).exists():
        summary = json.loads(marker.read_text())
        _step(
            f"using the demo database in {folder} (made {summary.get('created_at')}; "
            "--reset starts over)"
        )
    else:
        if (folder / DATABASE).exists():
            _step("an unfinished demo database was found: starting over")
            _reset(folder)
        _step(f"first run: building the demo in {folder}")
        summary = setup(folder, size)
        _step(f"ready in {summary['seconds']} s")
    click.echo()
    click.echo(f"  Console:  http://{host}:{port}/console/")
    click.echo(f"  Password for every account: {DEMO_PASSWORD}")
    for username, role in LOGINS:
        click.echo(f"    {username:<8} {role}")
    click.echo()
    if no_serve:
        return
    click.echo("  Ctrl-C stops the server.")
    serve(folder, host, port, workers)
