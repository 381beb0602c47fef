"""Migrations that change how rows are stored carry the rows across, both ways.

0002: a record's snapshot column became its envelope (the snapshot without its fields, which are
``data``); a row written before reads back as the same snapshot after the upgrade, and a
downgrade gives the old column its text back.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from server.extensions import db
from server.models import snapshot_text
from sync import HybridClock, Operation, OpKind, merge, snapshot
from tests.conftest import GRID_1, build_app

MIGRATIONS = str(Path(__file__).parents[2] / "server" / "migrations")


def _old_rows(n: int) -> list[dict]:
    clock = HybridClock("m" * 20)
    rows = []
    for i in range(n):
        rid = str(uuid.uuid4())
        fields = {
            "grid_code": GRID_1,
            "findings": f"第{i}次走访：独居老人，需上门",
            "address": "1号楼",
        }
        op = Operation("dev", i + 1, OpKind.CREATE, "visit", rid, 0, str(clock.now()), "7", fields)
        state = merge(None, op).state
        snap = snapshot(state, grid_code=GRID_1, review={"status": "approved"} if i % 2 else None)
        now = datetime(2026, 11, 27, 12, tzinfo=UTC)
        rows.append(
            {
                "id": rid,
                "type": "visit",
                "grid_code": GRID_1,
                "version": 1,
                "seq": i + 1,
                "deleted": False,
                "has_conflict": False,
                "review_status": "pending",
                "review": json.dumps(snap["review"]),
                "author_id": 7,
                "device_id": "dev",
                "created_at": now,
                "updated_at": now,
                "data": json.dumps(snap["fields"], ensure_ascii=False),
                "state": json.dumps(state.to_dict(), ensure_ascii=False),
                "snapshot": json.dumps(snap, ensure_ascii=False),
            }
        )
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_record_snapshots_survive_0002_up_and_down(request, tmp_path, backend):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    app = build_app(tmp_path, url, create_tables=False)
    rows = _old_rows(2005)  # more than one chunk of the conversion
    columns = ", ".join(rows[0])
    marks = ", ".join(f":{k}" for k in rows[0])
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="0001")
        db.session.execute(text(f"INSERT INTO record ({columns}) VALUES ({marks})"), rows)
        db.session.commit()

        upgrade(directory=MIGRATIONS, revision="0002")
        stored = db.session.execute(
            text("SELECT id, envelope, CAST(data AS TEXT) FROM record")
        ).all()
        db.session.commit()
        assert len(stored) == len(rows)
        before = {r["id"]: json.loads(r["snapshot"]) for r in rows}
        for rid, envelope, data in stored:
            assert "fields" not in json.loads(envelope)
            assert json.loads(snapshot_text(envelope, data)) == before[rid]

        downgrade(directory=MIGRATIONS, revision="0001")
        back = db.session.execute(text("SELECT id, snapshot FROM record")).all()
        db.session.commit()
        assert {rid: json.loads(s) for rid, s in back} == before
        db.engine.dispose()
