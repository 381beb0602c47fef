"""``linli demo --no-serve``: the demo database has real work for the console to show."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from linli.demo import DATABASE, MARKER, demo


@pytest.mark.slow
def test_demo_sets_up_a_district_with_a_conflict_a_returned_record_and_a_queue(tmp_path):
    instance = tmp_path / "instance"
    args = ["--no-serve", "--instance", str(instance), "--size", "small"]

    first = CliRunner().invoke(demo, args)

    assert first.exit_code == 0, first.output
    assert (instance / MARKER).exists()
    with sqlite3.connect(instance / DATABASE) as conn:
        conflicts = conn.execute("SELECT COUNT(*) FROM record WHERE has_conflict").fetchone()[0]
        returned = conn.execute(
            "SELECT COUNT(*) FROM record WHERE review_status = 'returned'"
        ).fetchone()[0]
        pending = conn.execute(
            "SELECT COUNT(*) FROM record WHERE review_status = 'pending'"
        ).fetchone()[0]
        comment = conn.execute(
            "SELECT review FROM record WHERE review_status = 'returned'"
        ).fetchone()[0]
    assert conflicts >= 1
    assert returned == 1 and "联系电话" in json.loads(comment)["comment"]
    assert pending >= 3
    assert "http://127.0.0.1:5000/console/" in first.output
    for username in ("admin", "street1", "head1", "worker1", "worker2"):
        assert username in first.output

    second = CliRunner().invoke(demo, args)  # finds the database: no second setup

    assert second.exit_code == 0, second.output
    assert "using the demo database" in second.output
    assert "loading" not in second.output
