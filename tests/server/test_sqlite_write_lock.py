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
