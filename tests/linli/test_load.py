"""`make load` reduced: the end-of-day burst (S6) against gunicorn on PostgreSQL, zero errors.

The full burst (2,000 syncs) runs with `make load`; here the quick scale keeps CI short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.slow
def test_end_of_day_burst_on_postgresql_has_no_errors(pg_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    env["LINLI_DATABASE_URL"] = pg_url
    run = subprocess.run(
        [sys.executable, "-m", "linli.bench", "--quick", "--scenario", "S6"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    burst = [line for line in lines if line["scenario"] == "S6"]
    assert len(burst) == 1 and "skipped" not in burst[0], run.stdout
    assert burst[0]["errors"] == 0, burst[0]
    assert burst[0]["syncs"] > 0 and burst[0]["db"] == "postgresql"
