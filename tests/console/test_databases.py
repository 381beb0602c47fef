"""The console's queries (JSON fields, local-day grouping, scope ranges) on SQLite and
PostgreSQL."""

from __future__ import annotations

from server.console.labels import today_local
from tests.console.conftest import Console
from tests.server.devices import ApiDevice


def test_queue_dashboard_and_export_on_both_databases(any_app, make_user, login):
    head = make_user("community_head")
    worker = make_user("grid_worker")
    device = ApiDevice(any_app.test_client(), login(worker))
    device.create("dispute", title="噪音扰民", category="0202", risk_grade="high")
    device.create("visit", findings="一切正常")
    device.sync()
    c = Console(any_app.test_client())
    assert c.sign_in(head).status_code == 303
    queue = c.get("/console/?status=all&date_from=2020-01-01&date_to=2099-12-31")
    assert queue.status_code == 200 and "噪音扰民" in queue.get_data(as_text=True)
    dashboard = c.get("/console/dashboard")
    text = dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200 and "邻里纠纷" in text
    assert f"<td>{today_local().isoformat()}</td><td>2</td>" in text  # synced today
    assert c.post("/console/export", data={"format": "xlsx", "status": "all"}).status_code == 200
