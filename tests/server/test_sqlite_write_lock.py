"""server.db.begin_immediate: a writer waiting for SQLite's write lock gets it as soon as it
is free (not at SQLite's next back-off step), gives up with "database is locked" at its
deadline, and leaves the connection's busy timeout at the engine's setting."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from server.db import begin_immediate


def _connect(path: Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")  # as the server's engine sets it
    return conn


def test_a_waiting_writer_gets_the_lock_when_it_is_freed(tmp_path: Path) -> None:
    holder, waiter = _connect(tmp_path / "w.db"), _connect(tmp_path / "w.db")
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    freed: list[float] = []

    def release() -> None:
        time.sleep(0.05)
        holder.execute("INSERT INTO t VALUES (1)")
        freed.append(time.monotonic())
        holder.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    begin_immediate(waiter, 5000)
    got = time.monotonic()
    thread.join()
    waiter.execute("INSERT INTO t VALUES (2)")
    waiter.execute("COMMIT")
    assert [n for (n,) in waiter.execute("SELECT n FROM t ORDER BY n")] == [1, 2]
    # Within a few half-millisecond steps of the release (SQLite's own wait would be at its
    # 25 ms steps by then); generous for a loaded machine, still far below 25 ms.
    assert got - freed[0] < 0.02
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (5000,)


def test_a_writer_gives_up_at_its_deadline(tmp_path: Path) -> None:
    holder, waiter = _connect(tmp_path / "w.db"), _connect(tmp_path / "w.db", 100)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(waiter, 100)
    assert 0.1 <= time.monotonic() - started < 2
    assert not waiter.in_transaction
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (100,)
    holder.execute("ROLLBACK")
    begin_immediate(waiter, 100)  # free now: taken at once
    assert waiter.in_transaction


class _Locked(sqlite3.OperationalError):
    def __init__(self, code: int) -> None:
        super().__init__("database is locked")
        self.sqlite_errorcode = code


def test_the_extended_busy_codes_are_waited_for_too() -> None:
    from server.db import _busy

    assert _busy(_Locked(5)) and _busy(_Locked(261)) and _busy(_Locked(517))  # BUSY_RECOVERY…
    assert not _busy(_Locked(2067))  # a unique constraint: not a wait


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SQLITE_BUSY_TIMEOUT_MS": 100}


def test_a_push_that_cannot_get_the_lock_in_time_is_503_busy(
    app, client, make_user, login, tmp_path: Path
) -> None:
    from tests.conftest import GRID_1
    from tests.server.devices import ApiDevice

    device = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    rid = device.create("visit", findings="等锁")
    body = {"device_id": device.device_id, "operations": [o.to_dict() for o in device.outbox]}
    holder = sqlite3.connect(tmp_path / "linli.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        answer = device.post("push", body)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503 and answer.get_json()["code"] == "busy"
    assert answer.headers["Retry-After"] == "1"
    device.push()  # the same operation again, the lock free: applied once
    device.pull()
    assert rid in device.snapshots
