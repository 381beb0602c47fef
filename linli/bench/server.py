"""The server under test: a fresh database, seeded and loaded in process, served by gunicorn.

``BenchDatabase`` makes a new database per scenario (a SQLite file in a temp folder, or a fresh
PostgreSQL database on ``LINLI_DATABASE_URL``'s server, dropped afterwards), applies the
migrations (``linli db upgrade`` semantics), loads the code tables and the bench territory, and
loads records server-side through the same record store a push uses. ``ServerProcess`` serves
it with ``linli serve`` (gunicorn) on a free loopback port and reads the peak RSS of the master
and its workers from ``/proc/<pid>/status`` (VmHWM).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

from fixtures import DEMO_PASSWORD, Size, generate_units, generate_users

__all__ = [
    "BenchDatabase",
    "ServerProcess",
    "free_port",
    "pid_cpu_s",
    "pid_peak_mb",
    "postgres_cpu_s",
]

SHAPE = Size(2, 3, 10, 1)  # 60 grids in 6 communities of 2 streets
SECRET = "linli-bench-" + "k" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_peak_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a process in MiB, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


_TICKS = os.sysconf("SC_CLK_TCK")


def pid_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every PostgreSQL process of this machine (the database
    shares the cores with the server and the clients; its share belongs in the budget)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += pid_cpu_s(int(entry.name))
            except OSError:
                continue
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


@dataclass
class BenchDatabase:
    """One fresh database with the bench territory; ``url`` is a SQLAlchemy URL."""

    workdir: Path
    pg_base: str | None = None
    url: str = ""
    _pg_name: str | None = None
    app: Any = None
    users: dict[str, int] = field(default_factory=dict)
    grids: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "postgresql" if self.pg_base else "sqlite"

    def create(self) -> BenchDatabase:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.pg_base:
            import psycopg

            self._pg_name = f"linli_bench_{secrets.token_hex(5)}"
            with psycopg.connect(self._admin_dsn(), autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self._pg_name}"')
            self.url = make_url(self.pg_base).set(database=self._pg_name).render_as_string(False)
        else:
            self.url = f"sqlite:///{self.workdir / 'server.sqlite3'}"
        from flask_migrate import upgrade

        from server import create_app, loader

        self.app = create_app(self.config())
        with self.app.app_context():
            upgrade(directory=str(Path(__file__).parents[2] / "server" / "migrations"))
            loader.load_code_tables_into_db()
            self._seed()
        return self

    def _admin_dsn(self) -> str:
        url = make_url(self.pg_base or "")
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def config(self) -> dict[str, Any]:
        return {
            "DATABASE_URL": self.url,
            "INSTANCE_PATH": str(self.workdir / "instance"),
            "SECRET_KEY": SECRET,
        }

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
        env.update(
            LINLI_DATABASE_URL=self.url,
            LINLI_INSTANCE_PATH=str(self.workdir / "instance"),
            LINLI_SECRET_KEY=SECRET,
        )
        return env

    def _seed(self) -> None:
        from server.extensions import db
        from server.models import AdminUnit, User, UserGrid
        from server.passwords import hash_password

        units = generate_units(SHAPE, 1)
        for u in units:
            db.session.add(
                AdminUnit(code=u.code, name=u.name, level=u.level, parent_code=u.parent_code)
            )
        db.session.flush()
        password_hash = hash_password(DEMO_PASSWORD)
        for u in generate_users(units, 1):
            db.session.add(
                User(
                    username=u.username,
                    display_name=u.display_name,
                    role=u.role,
                    unit_code=u.unit_code,
                    password_hash=password_hash,
                    grids=[UserGrid(grid_code=g) for g in u.grid_codes],
                )
            )
        db.session.commit()
        self.users = dict(db.session.execute(select(User.username, User.id)).tuples().all())
        self.grids = [u.code for u in units if u.level == "grid"]

    def load(self, records: Iterable[tuple[str, dict[str, Any]]], chunk: int = 2000) -> int:
        """Create records server-side through the record store (merge, batch write), as the
        grid's worker would have pushed them; return how many."""
        from server.extensions import db
        from server.loader import refresh_statistics
        from server.store import RecordBatch
        from sync import HybridClock, Operation, OpKind, merge

        clock = HybridClock("benchload")
        count = 0
        with self.app.app_context():
            pending = list(records)
            for start in range(0, len(pending), chunk):
                batch = RecordBatch(db.session, None)
                for rid, fields in pending[start : start + chunk]:
                    count += 1
                    author = self.users.get(f"gw_{fields['grid_code']}")
                    op = Operation(
                        device_id="benchload",
                        seq=count,
                        kind=OpKind.CREATE,
                        record_type="visit",
                        record_id=rid,
                        base_version=0,
                        hlc=str(clock.now()),
                        author=str(author or ""),
                        fields=fields,
                    )
                    result = merge(None, op)
                    rec = batch.apply(None, op, result, grid_code=fields["grid_code"])
                    batch.receipt(op, result)
                    rec.author_id = author
                batch.write()
                db.session.commit()
            refresh_statistics()  # as the district loader does after a bulk load
        return count

    def query(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        from server.extensions import db

        with self.app.app_context():
            rows = db.session.execute(text(sql), params).all()
            db.session.rollback()
            return rows

    def drop(self) -> None:
        if self.app is not None:
            from server.extensions import db

            with self.app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
            self.app = None
        if self._pg_name:
            import psycopg

            with psycopg.connect(self._admin_dsn(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
            self._pg_name = None


def serve() -> None:
    """Entry point of the server process: ``serve <host:port> <workers>``.

    What ``linli serve`` does, minus one thing: ``linli serve`` runs gunicorn inside the CLI's
    application context, which the forked workers inherit; Flask then reuses it for every
    request, so Flask-SQLAlchemy's per-context session is never removed and a transaction a
    request leaves open (on SQLite a BEGIN IMMEDIATE, i.e. the write lock) outlives the
    request and blocks the other workers (reported to the lead). Here the app is built and
    served with no context pushed.
    """
    from server import create_app
    from server.serving import GunicornApp

    bind, workers = sys.argv[1], int(sys.argv[2])
    GunicornApp(create_app(), {"bind": bind, "workers": workers, "timeout": 120}).run()


class ServerProcess:
    """gunicorn (as ``linli serve`` runs it, see :func:`serve`) on a free loopback port."""

    def __init__(self, database: BenchDatabase, workers: int = 2) -> None:
        self.database = database
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._peaks: dict[int, float] = {}

    def __enter__(self) -> ServerProcess:
        log = open(self.database.workdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from linli.bench.server import serve; serve()",
                f"127.0.0.1:{self.port}",
                str(self.workers),
            ],
            env=self.database.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.database.workdir}/server.log")
            try:
                up = httpx.get(f"{self.base_url}/api/openapi.json", timeout=2).status_code == 200
                if up and len(_children(self.proc.pid)) >= self.workers:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not start within 60 s")

    def sample(self) -> None:
        """Remember each process's peak (workers can be replaced; their peaks would be lost)."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            self._peaks[pid] = max(self._peaks.get(pid, 0.0), pid_peak_mb(pid))

    def cpu_s(self) -> float:
        """CPU seconds used so far by the master and its current workers."""
        if self.proc is None:
            return 0.0
        return sum(pid_cpu_s(pid) for pid in [self.proc.pid, *_children(self.proc.pid)])

    def peak_mb(self) -> float:
        """Sum of the peaks of the master and its workers (the server's footprint)."""
        self.sample()
        return round(sum(self._peaks.values()), 1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.sample()
        if self.proc.poll() is None:
            self.proc.terminate()  # gunicorn's master stops its workers gracefully
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *exc: Any) -> None:
        self.stop()
