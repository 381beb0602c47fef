"""Crash safety: a device process killed with SIGKILL at random moments loses no saved edit."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client_sdk import Client

from .conftest import GRID_1

ROOT = Path(__file__).resolve().parents[2]
CHILD = f"""
import sys
from client_sdk import Client
with Client(db_path=sys.argv[1]) as device:
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        view = device.create_household(grid_code="{GRID_1}", address=f"{{n}}号")
        device.add_note(view["id"], "走访记录")
        print(view["id"], flush=True)
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_save(tmp_path):
    db_path = str(tmp_path / "device.sqlite3")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(20261127)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    acknowledged: list[str] = []
    for _ in range(22):
        child = subprocess.Popen(
            [sys.executable, str(script), db_path], stdout=subprocess.PIPE, env=env, text=True
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        acknowledged += [line for line in out.split("\n")[:-1] if line]  # last may be partial
        conn = sqlite3.connect(db_path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            records = {r[0] for r in conn.execute("SELECT id FROM records")}
            with_op = {r[0] for r in conn.execute("SELECT record_id FROM outbox")}
            seqs = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        finally:
            conn.close()
        assert set(acknowledged) <= records
        assert set(acknowledged) <= with_op
        assert seqs == list(range(1, len(seqs) + 1))  # no gap, no reuse
    assert len(acknowledged) > 22
    with Client(db_path=db_path) as device:
        views = {v["id"]: v for v in device.households()}
        assert set(acknowledged) <= set(views)
        assert all(len(views[i]["collections"]["notes"]) == 1 for i in acknowledged)
