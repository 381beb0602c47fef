"""Field devices for the benchmark: the real SDK (``Client`` over ``HTTPTransport``), each with
its own SQLite file, and the client side's peak memory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from client_sdk import Client
from fixtures import DEMO_PASSWORD

__all__ = ["PhaseTimer", "enter_visits", "new_device", "reset_peak", "self_peak_mb"]


def reset_peak() -> None:
    """Reset this process's VmHWM (Linux ≥ 4.0), so the next reading is this scenario's peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def self_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def new_device(base_url: str, folder: Path, username: str, name: str) -> Client:
    """A fresh device signed in as ``username`` (every bench account has the demo password)."""
    folder.mkdir(parents=True, exist_ok=True)
    client = Client(
        db_path=folder / f"{name}.sqlite3", base_url=base_url, device_name=name, timeout=120.0
    )
    client.login(username, DEMO_PASSWORD)
    return client


def enter_visits(client: Client, records: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Record visits offline through the field API; return their ids (the SDK makes them).

    Data entry is not what is measured: the store runs with synchronous=OFF meanwhile (one
    fsync per visit otherwise) and goes back to FULL before any sync.
    """
    conn = client.store.db.conn
    conn.execute("PRAGMA synchronous=OFF")
    try:
        ids = [client.record_visit(**fields)["id"] for _, fields in records]
    finally:
        conn.execute("PRAGMA synchronous=FULL")
    return ids


class PhaseTimer:
    """A sync progress callback that remembers when each phase started."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        self.started.setdefault(phase, time.perf_counter())

    def between(self, first: str, then: str) -> float | None:
        if first in self.started and then in self.started:
            return self.started[then] - self.started[first]
        return None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
