"""Console forms drive server.actions: review, conflict resolution, case workflow, moves;
refusals show their reason. (The transition table itself is tested in tests/sync.)"""

from __future__ import annotations

from server.extensions import db
from server.models import Record
from tests.console.conftest import GRID_2, OTHER_GRID


def _record(app, rid):
    with app.app_context():
        rec = db.session.get(Record, rid)
        db.session.expunge(rec)
        return rec


def test_approve_and_return(app, world, console):
    c = console(world.head)
    done = c.post(
        f"/console/records/{world.visit}/review",
        data={"decision": "approved"},
        follow_redirects=True,
    )
    assert "已通过审核" in done.get_data(as_text=True)
    assert _record(app, world.visit).review_status == "approved"

    refused = c.post(f"/console/records/{world.resident}/review", data={"decision": "returned"})
    assert refused.status_code == 422
    assert "退回时必须填写退回意见" in refused.get_data(as_text=True)
    assert _record(app, world.resident).review_status == "pending"

    c.post(
        f"/console/records/{world.resident}/review",
        data={"decision": "returned", "comment": "身份证号与户籍不符，请核对"},
    )
    rec = _record(app, world.resident)
    assert rec.review_status == "returned" and rec.review["comment"] == "身份证号与户籍不符，请核对"
    # The worker's device receives the decision through the ordinary pull.
    world.dev.pull()
    assert world.dev.snapshots[world.resident]["review"]["status"] == "returned"


def test_queue_filters_and_counts(world, console):
    c = console(world.head)
    page = c.get("/console/").get_data(as_text=True)
    assert "楼上漏水" in page and "外社区纠纷" not in page
    conflicts = c.get("/console/?status=all&conflict=1").get_data(as_text=True)
    assert "3号楼2单元502" in conflicts and "楼上漏水" not in conflicts
    disputes = c.get("/console/?type=dispute").get_data(as_text=True)
    assert "楼上漏水" in disputes and "李建国" not in disputes
    mine = c.get(f"/console/?worker={world.worker2.id}&status=all").get_data(as_text=True)
    assert "楼上漏水" not in mine
    assert "楼上漏水" not in c.get(f"/console/?grid={GRID_2}").get_data(as_text=True)
    assert "楼上漏水" not in c.get("/console/?date_to=2000-01-01").get_data(as_text=True)


def test_resolve_a_conflict_by_picking_a_value(app, world, console):
    c = console(world.head)
    page = c.get(f"/console/records/{world.conflict}").get_data(as_text=True)
    assert "冲突待解决" in page and "赵大军" in page and "赵达" in page
    version = _record(app, world.conflict).version
    no_reason = c.post(
        f"/console/records/{world.conflict}/resolve",
        data={"field": "head_name", "choice": "0", "version": version},
    )
    assert no_reason.status_code == 422 and "请填写理由" in no_reason.get_data(as_text=True)
    stale = c.post(
        f"/console/records/{world.conflict}/resolve",
        data={
            "field": "head_name",
            "choice": "0",
            "version": version - 1,
            "reason": "电话核实户主",
        },
    )
    assert stale.status_code == 422 and "记录已被更新" in stale.get_data(as_text=True)
    done = c.post(
        f"/console/records/{world.conflict}/resolve",
        data={
            "field": "head_name",
            "choice": "new",
            "new_value": "赵大军",
            "version": version,
            "reason": "电话核实户主",
        },
        follow_redirects=True,
    )
    assert "已解决“户主姓名”的冲突" in done.get_data(as_text=True)
    rec = _record(app, world.conflict)
    assert not rec.has_conflict and rec.data["head_name"] == "赵大军"
    assert "冲突待解决" not in c.get(f"/console/records/{world.conflict}").get_data(as_text=True)


def test_case_forms_show_only_legal_actions_and_close_a_case(app, world, console):
    c = console(world.head)
    url = f"/console/records/{world.dispute}"
    page = c.get(url).get_data(as_text=True)
    assert 'value="accept"' in page and 'value="close"' not in page
    assert 'value="start"' not in page  # a grid worker's move, not the head's

    illegal = c.post(f"{url}/case", data={"action": "close"})
    assert illegal.status_code == 422
    text = illegal.get_data(as_text=True)
    assert "操作被拒绝" in text and "当前状态下不能执行此操作" in text

    missing = c.post(f"{url}/case", data={"action": "reject"})
    assert missing.status_code == 422 and "请填写必填项" in missing.get_data(as_text=True)

    assert (
        c.post(f"{url}/case", data={"action": "accept", "opinion": "属实，受理"}).status_code == 303
    )
    assert (
        c.post(
            f"{url}/case",
            data={
                "action": "assign",
                "responsible_unit": "第一网格",
                "responsible_person": "张网格",
            },
        ).status_code
        == 303
    )
    rec = _record(app, world.dispute)
    assert rec.data["status"] == "assigned" and rec.data["due_date"]
    page = c.get(url).get_data(as_text=True)
    assert "等待网格员在移动端开始办理" in page and "未到期" in page

    # The grid worker acts on the tablet; the server decides each step.
    dev = world.dev
    dev.pull()
    dev.step(world.dispute, "start")
    dev.step(world.dispute, "resolve", mediation_outcome="written_agreement")
    dev.step(world.dispute, "follow_up", note="双方满意")
    dev.sync()
    assert [r["status"] for r in dev.last_results] == ["applied"] * 3

    closed = c.post(
        f"{url}/case", data={"action": "close", "opinion": "归档"}, follow_redirects=True
    )
    text = closed.get_data(as_text=True)
    assert "已归档" in text and "案件已归档，办理结束" in text
    assert _record(app, world.dispute).data["status"] == "closed"
    for step in ("受理", "交办", "开始办理", "化解", "回访", "归档"):
        assert step in text


def test_extension_days_must_be_a_number(world, console):
    c = console(world.head)
    url = f"/console/records/{world.dispute}/case"
    c.post(url, data={"action": "accept"})
    c.post(url, data={"action": "assign", "responsible_unit": "一网格", "responsible_person": "张"})
    bad = c.post(url, data={"action": "request_extension", "days": "很多", "reason": "需要鉴定"})
    assert bad.status_code == 422 and "延期天数必须是整数" in bad.get_data(as_text=True)
    too_long = c.post(
        url, data={"action": "request_extension", "days": "400", "reason": "需要鉴定"}
    )
    assert too_long.status_code == 422 and "延期天数超过规定上限" in too_long.get_data(as_text=True)


def test_move_a_resident(app, world, console):
    c = console(world.head)
    assert (
        c.post(
            f"/console/records/{world.resident}/move", data={"grid_code": OTHER_GRID}
        ).status_code
        == 404
    )
    assert (
        c.post(f"/console/records/{world.resident}/move", data={"grid_code": GRID_2}).status_code
        == 303
    )
    assert _record(app, world.resident).grid_code == GRID_2
    refused = c.post(f"/console/records/{world.visit}/move", data={"grid_code": GRID_2})
    assert refused.status_code == 422


def test_record_page_shows_provenance_and_history(world, console):
    page = console(world.head).get(f"/console/records/{world.conflict}").get_data(as_text=True)
    assert "平板一" in page and "平板二" in page  # device names
    assert "设备时间" in page and "服务器时间" in page
    assert page.count("已应用") >= 2 and "冲突" in page  # history outcomes


def test_dashboard(world, console):
    c = console(world.head)
    page = c.get("/console/dashboard").get_data(as_text=True)
    assert "<svg" in page and "近14天每日同步记录数" in page
    assert "邻里纠纷" in page  # open disputes by category
    assert "3号楼2单元502" in page  # conflicts awaiting resolution
    assert "超过 3 天未同步的设备" in page
    assert "超过 7 天未同步的设备" in c.get("/console/dashboard?days=7").get_data(as_text=True)


def test_queue_is_paginated_newest_first(world, console):
    for i in range(26):
        world.dev.create("visit", findings=f"第{i}次走访", resident_name=f"居民{i:02d}")
    world.dev.sync()
    c = console(world.head)
    first = c.get("/console/?type=visit").get_data(as_text=True)
    assert "第 1 / 2 页" in first and "居民25" in first and "居民00" not in first
    second = c.get("/console/?type=visit&page=2").get_data(as_text=True)
    assert "居民00" in second and "王秀英" in second
