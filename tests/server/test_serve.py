"""`linli serve` under gunicorn: concurrent requests on SQLite never share a session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from fixtures import DEMO_PASSWORD
from tests.conftest import GRID_1, TEST_SECRET

USERS = ("worker1", "worker2", "head1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_concurrent_logins_and_syncs_without_locking(tmp_path: Path):
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "LINLI_SECRET_KEY": TEST_SECRET,
        "LINLI_INSTANCE_PATH": str(tmp_path),
    }
    linli = [sys.executable, "-m", "linli.cli"]
    subprocess.run([*linli, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run(
        [*linli, "load-fixtures", "--size", "small"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [*linli, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)

        def work(i: int) -> list[int]:
            statuses = []
            with httpx.Client(timeout=20) as http:
                device = str(uuid.uuid4())
                login = http.post(
                    f"{base}/auth/login",
                    json={"username": USERS[i % 3], "password": DEMO_PASSWORD, "device_id": device},
                )
                statuses.append(login.status_code)
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                for _ in range(5):
                    pulled = http.post(f"{base}/sync/pull", json={"cursor": 0}, headers=headers)
                    statuses.append(pulled.status_code)
            return statuses

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(work, range(16)) for s in batch]
        assert set(statuses) == {200}, statuses
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def test_a_forked_worker_tunes_the_collector_and_keeps_its_pool_apart(app, monkeypatch):
    import gc

    from server.serving import GC_THRESHOLDS, GunicornApp

    disposed: list[bool] = []
    with app.app_context():
        from server.extensions import db

        for engine in db.engines.values():
            monkeypatch.setattr(engine, "dispose", lambda close=True: disposed.append(close))
    before = gc.get_threshold()
    try:
        GunicornApp(app, {"workers": 1})._after_fork(None, None)
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # the loaded app is out of the collector's sight
        assert disposed == [False]  # inherited connections dropped, not closed under the master
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_worker_warms_up_with_reads_only_on_both_databases(any_app, make_user, login):
    """``warm``: the code tables loaded and the first sync's reads run once, for a device that
    does not exist; nothing written."""
    import sqlalchemy as sa

    from server.extensions import db
    from server.serving import warm

    login(make_user("grid_worker", grids=[GRID_1]))  # a device whose row warm-up reads
    with any_app.app_context():
        counts = {
            t: db.session.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
            for t in ("audit_entry", "device", "sync_op", "record")
        }
        db.session.remove()
    any_app.extensions.pop("linli.codes", None)
    warm(any_app)
    assert "book" in any_app.extensions["linli.codes"]  # the code tables, loaded
    with any_app.app_context():
        after = {
            t: db.session.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in counts
        }
        assert after == counts


def test_a_failed_warm_up_is_logged_not_raised(app, monkeypatch, caplog):
    from server import push
    from server.serving import warm

    def broken() -> None:
        raise RuntimeError("no database today")

    monkeypatch.setattr(push, "warm", broken)
    with caplog.at_level("WARNING"):
        warm(app)
    assert "warm-up failed" in caplog.text
