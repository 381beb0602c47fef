"""``python -m linli.bench --quick``: a smoke test; every scenario prints a valid JSON line.

No timing is asserted: the numbers depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linli.bench import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
COMMON = {
    "scenario",
    "db",
    "records",
    "seconds",
    "records_per_s",
    "bytes_up",
    "bytes_down",
    "requests",
    "server_peak_mb",
    "client_peak_mb",
}


@pytest.mark.slow
def test_quick_bench_prints_a_json_line_for_every_scenario():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    run = subprocess.run(
        [sys.executable, "-m", "linli.bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    seen = {line["scenario"] for line in lines}
    expected = set(SCENARIOS) | {"S3a", "S3z"}
    assert expected <= seen, run.stderr[-3000:]
    for line in lines:
        assert "error" not in line, line
        if line["scenario"] == "S6":
            assert line == {"scenario": "S6", "skipped": "needs PostgreSQL"}
            continue
        assert set(line) >= COMMON, line
        assert line["db"] == "sqlite"
        if "target" in line:
            assert isinstance(line["met"], bool)
    limits = next(line for line in lines if line["scenario"] == "L")
    # the apply path's rows stored alone: read back and written again, so never nothing
    assert limits["storage_floor_records_per_s"] > 0 and limits["storage_floor_ratio"] > 0
    s4 = next(line for line in lines if line["scenario"] == "S4")
    assert s4["edits_lost"] == 0 and s4["convergence"] is True


def test_the_storage_floor_stores_every_row_of_a_database_with_edits(app, client, make_user, login):
    """More receipts than records (creates and edits): every row of both tables is stored again
    (the function checks the counts and raises if any row was left out)."""
    from linli.bench.records import storage_floor_rate
    from tests.conftest import GRID_1
    from tests.server.devices import ApiDevice

    device = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    made = [device.create("visit", findings=f"第{n}户") for n in range(3)]
    device.push()
    device.pull()
    for rid in made:
        device.update(rid, findings="复访")
    device.push()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    assert storage_floor_rate(url, batch=2) > 0
