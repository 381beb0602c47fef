"""Masking, reveal with a reason (logged once), the access log, exports, stored XSS."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from server.extensions import db
from server.models import AccessLog
from tests.console.conftest import ID_NUMBER, PHONE, XSS

MASKED_ID = ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]


def _log_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(AccessLog.id))).scalar_one()


def test_sensitive_fields_are_masked_on_every_page(world, console):
    c = console(world.head)
    for path in [
        f"/console/records/{world.resident}",
        f"/console/records/{world.visit}",
        "/console/?status=all",
        "/console/dashboard",
    ]:
        page = c.get(path).get_data(as_text=True)
        assert ID_NUMBER not in page and PHONE not in page, path
        assert "低保" not in page, path  # a sensitive tag
    page = c.get(f"/console/records/{world.resident}").get_data(as_text=True)
    assert MASKED_ID in page and "138****5678" in page


def test_reveal_needs_a_reason_and_is_logged_once(app, world, console):
    c = console(world.head)
    url = f"/console/records/{world.resident}/reveal"
    for reason in ("", "看看"):
        refused = c.post(url, data={"field": "id_number", "reason": reason})
        assert refused.status_code == 422 and "查看理由" in refused.get_data(as_text=True)
        assert ID_NUMBER not in refused.get_data(as_text=True)
    assert c.post(url, data={"field": "name", "reason": "核实身份信息"}).status_code == 422
    assert _log_count(app) == 0

    shown = c.post(url, data={"field": "id_number", "reason": "办理低保核实身份"})
    assert shown.status_code == 200 and ID_NUMBER in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    with app.app_context():
        entries = db.session.execute(select(AccessLog)).scalars().all()
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.user_id, entry.record_id, entry.field, entry.reason) == (
            world.head.id,
            world.resident,
            "id_number",
            "办理低保核实身份",
        )
        assert entry.at is not None
    # Shown once: the record page is masked again.
    assert ID_NUMBER not in c.get(f"/console/records/{world.resident}").get_data(as_text=True)

    log = console(world.street).get("/console/access-log").get_data(as_text=True)
    assert "办理低保核实身份" in log and "身份证号" in log
    assert "办理低保核实身份" not in console(world.other_head).get("/console/").get_data(
        as_text=True
    )


def test_stored_xss_from_the_field_renders_as_text(world, console):
    page = console(world.head).get(f"/console/records/{world.visit}").get_data(as_text=True)
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_export_csv_and_excel_are_masked(world, console):
    c = console(world.head)
    response = c.post("/console/export", data={"format": "csv", "status": "all"})
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    flat = "\n".join(",".join(r) for r in rows)
    assert rows[0][0] == "记录编号" and len(rows) == 5  # header + 4 records of this community
    assert ID_NUMBER not in flat and PHONE not in flat and MASKED_ID in flat
    assert "外社区纠纷" not in flat

    xlsx = c.post("/console/export", data={"format": "xlsx", "status": "all", "type": "resident"})
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    values = [str(v) for row in sheet.iter_rows(values_only=True) for v in row if v]
    assert MASKED_ID in values and ID_NUMBER not in values


def test_unmasked_export_is_for_district_admins_with_a_reason(app, world, console):
    head = console(world.head)
    assert (
        head.post(
            "/console/export", data={"format": "csv", "unmasked": "1", "reason": "统计核对"}
        ).status_code
        == 403
    )
    admin = console(world.district)
    data = {"format": "csv", "status": "all", "type": "resident", "unmasked": "1"}
    refused = admin.post("/console/export", data=data)
    assert refused.status_code == 422 and "请填写导出理由" in refused.get_data(as_text=True)
    assert _log_count(app) == 0
    response = admin.post("/console/export", data={**data, "reason": "民政低保复核"})
    assert ID_NUMBER in response.get_data().decode("utf-8-sig")
    with app.app_context():
        entry = db.session.execute(select(AccessLog)).scalar_one()
        assert entry.record_id == world.resident and "id_number" in entry.field
        assert "民政低保复核" in entry.reason


def test_export_neutralises_spreadsheet_formulas(world, console):
    world.dev.update(world.visit, "visit", findings='=HYPERLINK("http://x")')
    world.dev.sync()
    rows = _csv(
        console(world.head).post("/console/export", data={"format": "csv", "type": "visit"})
    )
    assert any(cell.startswith("'=HYPERLINK") for row in rows for cell in row)
