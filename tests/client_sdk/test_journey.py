"""End to end with the real app in process: login, offline work, sync, review, conflicts."""

from __future__ import annotations

import pytest

from client_sdk import DeviceRevoked, InvalidCredentials

from .conftest import GRID_1, GRID_2, id_number


def test_a_worker_saves_offline_and_syncs(make_user, make_device):
    worker = make_user(grids=[GRID_1])
    device = make_device(worker)
    home = device.create_household(grid_code=GRID_1, address="幸福里 3-301", head_name="张三")
    device.create_resident(
        grid_code=GRID_1,
        name="张三",
        household_id=home["id"],
        id_number=id_number(),
        phone="17012345678",
    )
    device.record_visit(
        grid_code=GRID_1, household_id=home["id"], findings="独居", notes=["下周复访"]
    )
    assert device.pending_count() == 4
    seen = []
    report = device.sync(progress=lambda phase, done, total: seen.append(phase))
    assert (report.pushed, report.applied, report.rejected) == (4, 4, 0)
    # Protocol 3: the household and the resident, still the device's own creates, are not sent
    # back; the visit is (a note was added to it after its create).
    assert report.pulled == 1 and report.checksum_ok is True
    assert device.pending_count() == 0
    assert device.store.count("acked") == 0
    assert seen[0] == "handshake" and seen[-1] == "done" and "push" in seen and "pull" in seen
    view = device.get(home["id"])
    assert view["version"] >= 1 and view["fields"]["head_name"] == "张三"
    again = device.sync()
    assert (again.pushed, again.pulled) == (0, 0)


def _console(app, login, user):
    """The console side (a community head or admin), through the real HTTP API."""
    web = app.test_client()
    headers = login(user).headers

    def post(path, **body):
        response = web.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code < 300, response.get_json()
        return response.get_json()

    return post


def _shared_view(view):
    return {k: view[k] for k in ("id", "version", "deleted", "fields", "conflicts", "review")} | {
        "collections": {k: sorted(i["id"] for i in v) for k, v in view["collections"].items()}
    }


def test_three_devices_and_a_head_converge(make_user, make_device):
    w1 = make_device(make_user(grids=[GRID_1]), "w1")
    w2 = make_device(make_user(grids=[GRID_1]), "w2")
    w3 = make_device(make_user(grids=[GRID_2]), "w3")
    head = make_device(make_user(role="community_head"), "head")
    home = w1.create_household(grid_code=GRID_1, address="和平里 1-101", head_name="周一")
    w3.create_household(grid_code=GRID_2, address="和平里 9-901")
    w1.sync()
    w2.sync()
    head.sync()
    # Offline, concurrently: different fields merge; the same field conflicts; notes add up.
    w1.update(home["id"], head_name="周一一")
    w2.update(home["id"], phone="17011112222")
    w2.update(home["id"], head_name="周壹")
    head.update(home["id"], note="重点关注")
    for device in (w1, w2, head):
        device.add_note(home["id"], f"note from {device.device_id[:4]}")
    w3.record_visit(grid_code=GRID_2, findings="无异常")
    for order in ([w2, head, w3, w1], [head, w1, w3, w2]):
        for device in order:
            device.sync()
    views = {
        d: {v["id"]: _shared_view(v) for v in d.find(include_deleted=True)}
        for d in (w1, w2, w3, head)
    }
    assert views[w1] == views[w2]
    assert set(views[head]) == set(views[w1]) | set(views[w3])
    for device in (w1, w2, w3):
        for rid, view in views[device].items():
            assert views[head][rid] == view
    final = w1.get(home["id"])
    assert final["fields"]["phone"] == "17011112222" and final["fields"]["note"] == "重点关注"
    assert len(final["collections"]["notes"]) == 3
    [conflict] = w1.conflicts()
    assert conflict.field == "head_name"
    assert sorted(v["value"] for v in conflict.values) == ["周一一", "周壹"]
    assert all(v["author"] and v["device_id"] for v in conflict.values)
    assert home["id"] not in views[w3]


def test_a_worker_resolves_a_conflict(make_user, make_device):
    w1 = make_device(make_user(grids=[GRID_1]), "w1")
    w2 = make_device(make_user(grids=[GRID_1]), "w2")
    visit = w1.record_visit(grid_code=GRID_1, findings="a")
    w1.sync()
    w2.sync()
    w1.update(visit["id"], findings="b")
    w2.update(visit["id"], findings="c")
    for device in (w1, w2, w1):
        device.sync()
    assert [c.field for c in w1.conflicts()] == ["findings"]
    resolved = w1.resolve(visit["id"], "findings", "b 和 c 都对", reason="现场核实")
    assert resolved["conflicts"] == {} and resolved["fields"]["findings"] == "b 和 c 都对"
    w1.sync()
    w2.sync()
    assert w1.conflicts() == w2.conflicts() == []
    assert w2.get(visit["id"])["fields"]["findings"] == "b 和 c 都对"


def test_a_review_decision_reaches_the_worker(app, login, make_user, make_device):
    worker = make_user(grids=[GRID_1])
    device = make_device(worker)
    visit = device.record_visit(grid_code=GRID_1, findings="情况一般")
    device.sync()
    console = _console(app, login, make_user(role="community_head"))
    console(f"/records/{visit['id']}/review", decision="returned", comment="请补充家庭成员情况")
    device.sync()
    [back] = device.returned()
    assert back["id"] == visit["id"]
    assert back["review"]["comment"] == "请补充家庭成员情况"
    device.update(visit["id"], findings="情况一般；家中二人")
    device.sync()
    assert device.returned() == []
    assert device.get(visit["id"])["review"]["status"] == "pending"


def test_dispute_steps_and_an_illegal_one(app, login, make_user, make_device):
    worker = make_device(make_user(grids=[GRID_1]), "w")
    head_user = make_user(role="community_head")
    head = make_device(head_user, "head")
    case = worker.screen_dispute(
        grid_code=GRID_1, title="楼上漏水", category="0201", parties=["甲", "乙"], involved_count=2
    )
    worker.sync()
    head.sync()
    assert head.get(case["id"])["fields"]["status"] == "reported"
    head.advance(case["id"], "accept", opinion="受理")
    head.advance(case["id"], "assign", responsible_unit="人民调解委员会", responsible_person="吴")
    head.sync()
    worker.sync()
    assert worker.get(case["id"])["fields"]["status"] == "assigned"
    assert worker.allowed_actions(case["id"]) == ["start", "request_extension"]
    # The head escalates on the console while the worker, offline, starts the case.
    console = _console(app, login, head_user)
    console(f"/records/{case['id']}/case", action="escalate", params={"reason": "涉及多户"})
    worker.advance(case["id"], "start")
    report = worker.sync()
    assert report.rejected == 1
    [refused] = worker.rejected()
    assert refused["reason"] == "illegal_transition"
    assert worker.get(case["id"])["fields"]["status"] == "escalated"
    assert worker.pending_count() == 0


def test_login_unlock_refresh_and_revocation(app, login, make_user, make_device):
    worker = make_user(grids=[GRID_1])
    device = make_device(name="w")
    with pytest.raises(InvalidCredentials):
        device.login(worker.username, "wrong password")
    user = device.login(worker.username, worker.password)
    assert user["username"] == worker.username
    assert device.unlock(worker.password)["username"] == worker.username
    with pytest.raises(InvalidCredentials):
        device.unlock("wrong password")
    assert (
        worker.password
        not in device.store.db.execute("SELECT group_concat(value) FROM meta").fetchone()[0]
    )
    # An expired access token is refreshed on the fly.
    before = device.store.get("tokens")
    device.store.set(tokens={**before, "access": _expired(app, device)})
    device.create_household(grid_code=GRID_1, address="a")
    assert device.sync().pushed == 1
    assert device.store.get("tokens")["refresh"] != before["refresh"]  # rotated
    # A revoked device is refused and keeps its outbox.
    device.create_household(grid_code=GRID_1, address="b")
    outbox = device.store.db.execute("SELECT * FROM outbox").fetchall()
    admin = _console(app, login, make_user(role="street_admin"))
    admin(f"/admin/devices/{device.device_id}/revoke")
    with pytest.raises(DeviceRevoked):
        device.sync()
    # Also when the access token has expired meanwhile: the refresh names the cause.
    device.store.set(tokens={**device.store.get("tokens"), "access": _expired(app, device)})
    with pytest.raises(DeviceRevoked):
        device.sync()
    assert device.store.db.execute("SELECT * FROM outbox").fetchall() == outbox
    assert device.pending_count() == 1


def _expired(app, device):
    """An access token for the device that expired a minute ago (signed by the app)."""
    import jwt

    current = jwt.decode(device.store.get("tokens")["access"], options={"verify_signature": False})
    header = jwt.get_unverified_header(device.store.get("tokens")["access"])
    claims = {**current, "exp": current["iat"] - 60, "iat": current["iat"] - 120}
    return jwt.encode(
        claims,
        app.config["SECRET_KEY"],
        algorithm=header["alg"],
        headers={k: v for k, v in header.items() if k not in ("alg", "typ")},
    )
