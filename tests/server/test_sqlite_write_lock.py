"""server.db.begin_immediate: a writer waiting for SQLite's write lock tries again every half
millisecond with SQLite's own back-off switched off, so it takes the lock at the first try
after it is freed; it gives up with "database is locked" at its deadline; and it leaves the
connection's busy timeout at the engine's setting. The waiting runs on a fake clock: what is
checked is the steps taken, not how long a loaded machine took to take them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import server.db
from server.db import _WAIT_STEP_S, begin_immediate


def _connect(path: Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")  # as the server's engine sets it
    return conn


class _FakeClock:
    """``time.monotonic`` and ``time.sleep`` for server.db: sleeping moves the clock on and
    runs ``on_sleep`` (with the waiter's busy timeout as it is during the wait)."""

    def __init__(self, waiter: sqlite3.Connection, on_sleep: Callable[[int], None]) -> None:
        self.now, self.sleeps, self.waiter, self.on_sleep = 1000.0, [], waiter, on_sleep
        self.timeouts: list[int] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.timeouts.append(self.waiter.execute("PRAGMA busy_timeout").fetchone()[0])
        self.now += seconds
        self.on_sleep(len(self.sleeps))


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[..., _FakeClock]:
    def install(waiter: sqlite3.Connection, on_sleep: Callable[[int], None]) -> _FakeClock:
        clock = _FakeClock(waiter, on_sleep)
        monkeypatch.setattr(server.db.time, "monotonic", clock.monotonic)
        monkeypatch.setattr(server.db.time, "sleep", clock.sleep)
        return clock

    return install


def test_a_waiting_writer_gets_the_lock_at_the_first_try_after_it_is_freed(
    tmp_path: Path, fake_clock: Callable[..., _FakeClock]
) -> None:
    holder, waiter = _connect(tmp_path / "w.db"), _connect(tmp_path / "w.db")
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")

    def release_after_the_fifth(count: int) -> None:
        if count == 5:
            holder.execute("COMMIT")

    clock = fake_clock(waiter, release_after_the_fifth)
    begin_immediate(waiter, 5000)
    assert clock.sleeps == [_WAIT_STEP_S] * 5  # taken at the try right after the release
    assert clock.timeouts == [0] * 5  # SQLite itself never slept in between
    waiter.execute("INSERT INTO t VALUES (2)")
    waiter.execute("COMMIT")
    assert [n for (n,) in waiter.execute("SELECT n FROM t ORDER BY n")] == [1, 2]
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (5000,)


def test_a_writer_gives_up_at_its_deadline(
    tmp_path: Path, fake_clock: Callable[..., _FakeClock]
) -> None:
    holder, waiter = _connect(tmp_path / "w.db"), _connect(tmp_path / "w.db", 100)
    holder.execute("BEGIN IMMEDIATE")
    clock = fake_clock(waiter, lambda count: None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(waiter, 100)
    waited = len(clock.sleeps)  # 100 ms of half-millisecond steps (one more for rounding)
    assert set(clock.sleeps) == {_WAIT_STEP_S} and 200 <= waited <= 201
    assert not waiter.in_transaction
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (100,)
    holder.execute("ROLLBACK")
    begin_immediate(waiter, 100)  # free now: taken at once, no step
    assert waiter.in_transaction and len(clock.sleeps) == waited


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
