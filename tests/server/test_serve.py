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
from tests.conftest import TEST_SECRET

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
