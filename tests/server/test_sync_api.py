"""The sync API end to end through HTTP, several devices, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import pytest

from sync import OpKind
from tests.conftest import GRID_1, GRID_2
from tests.server.devices import ApiDevice


@pytest.fixture
def devices(any_app, client, make_user, login):
    """Two workers in grid 1 (three devices), one in grid 2, and their community head."""
    w1, w2 = make_user("grid_worker", grids=[GRID_1]), make_user("grid_worker", grids=[GRID_1])
    w3 = make_user("grid_worker", grids=[GRID_2])
    head = make_user("community_head")
    return {
        "a": ApiDevice(client, login(w1)),
        "b": ApiDevice(client, login(w2)),
        "c": ApiDevice(client, login(w3)),
        "head": ApiDevice(client, login(head)),
    }


def test_creates_merges_conflicts_deletes_notes_and_resolution(devices):
    a, b, head = devices["a"], devices["b"], devices["head"]
    rid = a.create("visit", findings="初访", address="1号楼")
    gone = a.create("visit", findings="重复录入")
    a.sync()
    b.sync()
    assert b.view(rid)["fields"]["findings"] == "初访"

    a.update(rid, findings="独居，需助餐")  # same field, different values: conflict
    b.update(rid, findings="独居，需上门体检")
    b.update(rid, address="2号楼")  # different field: merges
    a.note(rid, "下次带血压计")
    b.note(rid, "家属电话已核实")
    b.delete(gone)
    results = a.push() + b.push()
    assert [r["status"] for r in results] == [
        "applied",
        "applied",
        "conflict",
        "applied",
        "applied",
        "applied",
    ]
    for d in (a, b, head):
        d.pull()
    snap = head.view(rid)
    assert snap["fields"]["address"] == "2号楼"
    competing = {w["value"] for w in snap["conflicts"]["findings"]}
    assert competing == {"独居，需助餐", "独居，需上门体检"}
    assert {n["text"] for n in snap["collections"]["notes"]} == {"下次带血压计", "家属电话已核实"}
    assert head.view(gone)["deleted"] is True
    assert a.view(rid) == b.view(rid) == snap

    head.resolve(rid, findings="独居，需助餐和上门体检")
    assert head.push()[0]["status"] == "applied"
    for d in (a, b, head):
        d.pull()
    assert a.view(rid)["conflicts"] == {}
    assert a.view(rid)["fields"]["findings"] == "独居，需助餐和上门体检"
    assert a.checksum() == a.last_pull["checksum"]


def test_scope_filters_pull_and_refuses_foreign_pushes(devices):
    a, c = devices["a"], devices["c"]
    mine = a.create("visit", findings="grid 1")
    theirs = c.create("visit", findings="grid 2", grid_code=GRID_2)
    a.sync()
    c.sync()
    assert set(a.snapshots) == {mine} and set(c.snapshots) == {theirs}
    c.snapshots[mine] = {"version": 1}  # a guessed id: the worker never received it
    c.update(mine, findings="hijack")
    result = c.push()[0]
    assert (result["status"], result["reason"]) == ("rejected", "unknown_record")  # no leak
    intruder = c.create("visit", findings="into grid 1")
    result = c.push()[0]
    assert (result["status"], result["reason"]) == ("rejected", "forbidden")
    a.pull()
    assert intruder not in a.snapshots and a.snapshots[mine]["fields"]["findings"] == "grid 1"


def test_only_the_last_page_carries_the_checksum_of_the_scope(devices):
    """The counter and the scope's totals are read together; a page with more behind it sends
    no checksum, the last one sends the totals of the caller's scope only (not grid 2's)."""
    a, b, c = devices["a"], devices["b"], devices["c"]
    b.pull()
    assert b.last_pull["checksum"] == {"count": 0, "version_sum": 0} and b.cursor == 0
    for n in range(5):
        a.create("visit", findings=f"visit {n}")
    c.create("visit", findings="elsewhere", grid_code=GRID_2)
    a.push()
    c.push()
    pages = []
    while True:
        response = b.post("pull", {"cursor": b.cursor, "limit": 2})
        page = response.get_json()
        pages.append(page)
        b.cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert [len(p["changes"]) for p in pages] == [2, 2, 1]
    assert [p["checksum"] for p in pages[:-1]] == [None, None]
    assert pages[-1]["checksum"] == {"count": 5, "version_sum": 5}
    assert pages[-1]["cursor"] == 6  # the counter: grid 2's change is past, not sent


def test_move_removes_from_old_grid_and_delivers_to_new(devices, client):
    a, c, head = devices["a"], devices["c"], devices["head"]
    rid = a.create("resident", name="王某某")
    a.note(rid, "户籍在本网格", rtype="resident")
    a.sync()
    c.sync()
    head.sync()
    moved = client.post(
        f"/api/v1/records/{rid}/move", json={"grid_code": GRID_2}, headers=head.login.headers
    )
    assert moved.status_code == 200, moved.get_json()
    a.pull()
    c.pull()
    head.pull()
    assert rid not in a.snapshots
    assert c.snapshots[rid]["collections"]["notes"][0]["text"] == "户籍在本网格"
    assert rid in head.snapshots, "still in the head's community: not removed"
    assert a.checksum() == a.last_pull["checksum"]
    assert c.checksum() == c.last_pull["checksum"]


def test_review_decision_reaches_the_worker(devices, client):
    a, head = devices["a"], devices["head"]
    rid = a.create("visit", findings="走访记录")
    a.sync()
    response = client.post(
        f"/api/v1/records/{rid}/review",
        json={"decision": "returned", "comment": "请补充家庭成员情况"},
        headers=head.login.headers,
    )
    assert response.status_code == 200, response.get_json()
    a.pull()
    review = a.view(rid)["review"]
    assert review["status"] == "returned" and review["comment"] == "请补充家庭成员情况"
    a.update(rid, findings="走访记录，已补充家庭成员")
    a.sync()
    assert a.view(rid)["review"]["status"] == "pending", "an edit resubmits the record"


def test_dispute_workflow_from_devices_is_decided_by_the_server(devices, client):
    a, head = devices["a"], devices["head"]
    rid = a.create("dispute", title="楼上漏水", category="0201", description="邻里漏水纠纷")
    a.sync()
    assert a.view(rid)["fields"]["status"] == "reported"
    a.step(rid, "accept")  # a grid worker may not accept
    result = a.push()[0]
    assert (result["status"], result["reason"]) == ("rejected", "illegal_transition")
    head.sync()
    head.step(rid, "accept")
    head.step(rid, "assign", responsible_unit="社区调委会", responsible_person="调解员甲")
    assert [r["status"] for r in head.push()] == ["applied", "applied"]
    a.pull()
    fields = a.view(rid)["fields"]
    assert fields["status"] == "assigned" and fields["responsible_person"] == "调解员甲"
    assert fields["due_date"], "the deadline rule set a due date"
    steps = a.view(rid)["collections"]["steps"]
    assert [(s["from"], s["to"]) for s in steps] == [
        (None, "reported"),
        ("reported", "accepted"),
        ("accepted", "assigned"),
    ]


def test_invalid_fields_are_rejected_per_operation_and_never_block_the_rest(devices):
    a = devices["a"]
    ok1 = a.create("resident", name="李某", id_number="990101199001011235")  # bad check digit
    ok2 = a.create("resident", name="赵某", phone="12345")
    ok3 = a.create("visit", findings="正常")
    results = a.push()
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied"]
    assert "id_number" in results[0]["message"] and "phone" in results[1]["message"]
    a.pull()
    assert set(a.snapshots) == {ok3} and ok1 not in a.snapshots and ok2 not in a.snapshots


def test_malformed_operations_are_answered_in_place(devices):
    a = devices["a"]
    good = a.create("visit", findings="ok")
    body = {
        "device_id": a.device_id,
        "operations": [
            {"kind": "create", "record_type": "spaceship"},
            a.outbox[0].to_dict(),
            "not an object",
        ],
    }
    response = a.post("push", body)
    assert response.status_code == 200
    statuses = [(r["status"], r.get("reason")) for r in response.get_json()["results"]]
    assert statuses == [
        ("rejected", "unknown_record_type"),
        ("applied", None),
        ("rejected", "wrong_type"),
    ]
    a.outbox.clear()
    a.pull()
    assert good in a.snapshots


def test_gzip_both_ways_and_protocol_negotiation(devices, client):
    a = devices["a"]
    a.create("visit", findings="压缩" * 300)
    body = gzip.compress(
        json.dumps(
            {"device_id": a.device_id, "operations": [o.to_dict() for o in a.outbox]}
        ).encode()
    )
    response = client.post(
        "/api/v1/sync/push",
        data=body,
        headers={**a.login.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200 and response.get_json()["results"][0]["status"] == "applied"
    response = client.post(
        "/api/v1/sync/pull",
        json={"cursor": 0},
        headers={**a.login.headers, "Accept-Encoding": "gzip"},
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.data))["changes"][0]["fields"]["findings"]
    old = client.post(
        "/api/v1/sync/handshake",
        json={
            "device_id": a.device_id,
            "device_time_ms": 0,
            "protocol_versions": [0],
            "schema_version": 1,
        },
        headers=a.login.headers,
    )
    assert old.status_code == 426 and old.get_json()["code"] == "protocol_unsupported"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (json.dumps({"device_id": "x", "operations": "nope"}).encode(), 422, None),
        (json.dumps({"device_id": "x", "operations": [], "extra": 1}).encode(), 422, None),
    ],
)
def test_bad_push_bodies_get_clear_4xx(devices, client, body, status, code):
    a = devices["a"]
    response = client.post(
        "/api/v1/sync/push",
        data=body,
        headers={**a.login.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.get_json()
    assert set(response.get_json()) == {"code", "message", "details"}
    if code:
        assert response.get_json()["code"] == code


def test_oversize_batch_and_gzip_bomb_are_413(devices, client, any_app):
    a = devices["a"]
    ops = [{"kind": "delete"}] * 501
    response = a.post("push", {"device_id": a.device_id, "operations": ops})
    assert response.status_code == 413 and response.get_json()["code"] == "batch_too_large"
    any_app.config["SYNC_MAX_BODY_BYTES"] = 1000
    bomb = gzip.compress(b'{"device_id": "' + b" " * 100_000 + b'"}')
    response = client.post(
        "/api/v1/sync/push",
        data=bomb,
        headers={**a.login.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413 and response.get_json()["code"] == "payload_too_large"


def test_device_clock_far_ahead_is_refused_without_a_receipt(devices):
    a = devices["a"]
    rid = a.create("visit", findings="from 2030")
    op = a.outbox[0]
    from dataclasses import replace

    a.outbox[0] = replace(op, hlc="1900000000000:00000:dev")
    result = a.push()[0]
    assert (result["status"], result["reason"]) == ("rejected", "clock_ahead")
    a.outbox.append(op)  # re-stamped with a sane clock, same key: accepted
    assert a.push()[0]["status"] == "applied"
    a.pull()
    assert rid in a.snapshots


def test_push_into_the_other_devices_body_is_refused(devices):
    a, b = devices["a"], devices["b"]
    response = a.post("push", {"device_id": b.device_id, "operations": []})
    assert response.status_code == 403 and response.get_json()["code"] == "device_mismatch"


def test_free_form_values_come_back_exactly_as_sent(devices):
    """Stored JSON is written fast (orjson) but must never change a value: an integer beyond
    64 bits, a float, escapes and non-BMP text survive the push, an update (the stored state is
    read back and merged) and the pull, on both databases."""
    a, b = devices["a"], devices["b"]
    parties = [
        {"name": "甲方", "n": 123456789012345678901234567890, "share": 0.1, "neg": -(2**70)},
        {"note": 'quote " backslash \\ tab \t newline \n nul \u0000 emoji 🏠 ls \u2028'},
        "乙方",
    ]
    rid = a.create("dispute", parties=parties)
    a.sync()
    a.update(rid, "dispute", title="邻里噪音（已更新）")
    a.sync()
    b.pull()
    for device in (a, b):
        fields = device.snapshots[rid]["fields"]
        assert fields["parties"] == parties
        assert (
            type(fields["parties"][0]["n"]) is int and type(fields["parties"][0]["share"]) is float
        )
        assert fields["title"] == "邻里噪音（已更新）"


@pytest.mark.parametrize("change", ["revoke", "disable", "regrid"])
def test_a_change_committed_while_a_push_is_parsed_wins_over_the_push(
    any_app, devices, monkeypatch, change
):
    """Authentication reads outside the write lock; what it read is checked again under the
    lock, so a revocation, a disabled account or a lost grid committed in between is obeyed."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    import server.push as pushing
    from server.extensions import db

    a = devices["a"]
    rid = a.create("visit", findings="写于撤销之前")
    real_prepare = pushing._prepare

    def prepare_while_an_admin_acts(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        with db.engine.connect() as other:  # another connection: commits while we parse
            if change == "revoke":
                other.execute(
                    text("UPDATE device SET revoked_at = :now WHERE id = :id"),
                    {"now": datetime.now(UTC).replace(tzinfo=None), "id": a.device_id},
                )
            elif change == "disable":
                other.execute(
                    text(
                        "UPDATE user_account SET active = false WHERE id = "
                        "(SELECT user_id FROM device WHERE id = :id)"
                    ),
                    {"id": a.device_id},
                )
            else:
                other.execute(
                    text(
                        "DELETE FROM user_grid WHERE user_id = "
                        "(SELECT user_id FROM device WHERE id = :id)"
                    ),
                    {"id": a.device_id},
                )
            other.commit()
        return prepared

    monkeypatch.setattr(pushing, "_prepare", prepare_while_an_admin_acts)
    response = a.post("push", {"device_id": a.device_id, "operations": [a.outbox[0].to_dict()]})
    if change == "regrid":
        assert response.status_code == 200
        assert response.get_json()["results"][0]["reason"] == "forbidden"
    else:
        code = "device_revoked" if change == "revoke" else "account_disabled"
        assert response.status_code == 401 and response.get_json()["code"] == code
    with any_app.app_context():
        count = db.session.execute(text("SELECT count(*) FROM record WHERE id = :id"), {"id": rid})
        assert count.scalar() == 0


def test_an_unpaired_surrogate_in_a_name_or_reason_rejects_only_its_operation(devices):
    """Names and reasons are checked like values: the bad operation is rejected on its own and
    the rest of the batch is applied (before, the whole batch was refused with a 400)."""
    a = devices["a"]
    first = a.create("visit", findings="好")
    a.create("visit", findings="名")
    a.resolve(first, findings="好")
    last = a.create("visit", findings="坏")
    ops = [op.to_dict() for op in a.outbox]
    ops[1]["fields"] = {"grid_code": GRID_1, "find\ud800ings": "x"}
    ops[2]["reason"] = "checked on site \udfff"
    response = a.post("push", {"device_id": a.device_id, "operations": ops})
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "applied"]
    assert {results[1]["reason"], results[2]["reason"]} == {"wrong_type"}
    assert "Unicode" in results[1]["message"] and "Unicode" in results[2]["message"]
    a.outbox = []
    a.pull()
    assert {first, last} <= set(a.snapshots)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 200, None),  # a client that says nothing is taken as before
        ({"Linli-Protocol": "1", "Linli-Schema": "1"}, 200, None),
        ({"Linli-Protocol": "1", "Linli-Schema": "0"}, 200, None),  # an older app
        ({"Linli-Protocol": "5"}, 426, "protocol_unsupported"),
        ({"Linli-Schema": "2"}, 426, "protocol_unsupported"),  # made for a newer schema
        ({"Linli-Protocol": "one"}, 400, "bad_header"),
        ({"Linli-Schema": "-1"}, 400, "bad_header"),
        ({"Linli-Schema": "9" * 40}, 400, "bad_header"),
    ],
)
def test_push_and_pull_carry_versions_and_a_refused_push_applies_nothing(
    devices, client, headers, status, code
):
    a, b = devices["a"], devices["b"]
    rid = a.create("visit", findings="版本")
    body = {"device_id": a.device_id, "operations": [o.to_dict() for o in a.outbox]}
    pushed = client.post("/api/v1/sync/push", json=body, headers={**a.login.headers, **headers})
    pulled = client.post(
        "/api/v1/sync/pull", json={"cursor": 0}, headers={**a.login.headers, **headers}
    )
    assert (pushed.status_code, pulled.status_code) == (status, status), pushed.get_json()
    if code:
        assert pushed.get_json()["code"] == pulled.get_json()["code"] == code
    b.pull()
    assert (rid in b.snapshots) is (status == 200)  # refused: nothing of it was applied


def test_a_push_may_ask_for_the_first_pull_page(devices, client):
    a, b = devices["a"], devices["b"]
    theirs = b.create("visit", findings="别人的")
    b.push()
    rid = a.create("visit", findings="同一请求")
    body = {
        "device_id": a.device_id,
        "operations": [o.to_dict() for o in a.outbox],
        "pull": {"cursor": 0, "limit": 1},
    }
    answer = client.post("/api/v1/sync/push", json=body, headers=a.login.headers).get_json()
    assert [r["status"] for r in answer["results"]] == ["applied"]
    page = answer["pull"]  # read after the push was committed: its record is in the pages
    assert [c["id"] for c in page["changes"]] == [theirs] and page["has_more"] is True
    alone = client.post(
        "/api/v1/sync/pull", json={"cursor": 0, "limit": 1}, headers=a.login.headers
    ).get_json()
    assert page == alone
    rest = client.post(
        "/api/v1/sync/pull", json={"cursor": page["cursor"]}, headers=a.login.headers
    ).get_json()
    assert [c["id"] for c in rest["changes"]] == [rid] and rest["checksum"]["count"] == 2


@pytest.mark.parametrize(
    "ask", [{"limit": 0}, {"cursor": -1}, {"cursor": "0"}, {"surprise": 1}, [], "all"]
)
def test_a_malformed_pull_in_a_push_is_422_and_applies_nothing(devices, client, ask):
    a, b = devices["a"], devices["b"]
    rid = a.create("visit", findings="不应写入")
    body = {"device_id": a.device_id, "operations": [o.to_dict() for o in a.outbox], "pull": ask}
    answer = client.post("/api/v1/sync/push", json=body, headers=a.login.headers)
    assert answer.status_code == 422 and set(answer.get_json()) == {"code", "message", "details"}
    b.pull()
    assert rid not in b.snapshots


@pytest.mark.parametrize("change", ["removed", "added"])
def test_a_page_answered_with_a_push_uses_the_scope_read_under_the_write_lock(
    any_app, client, make_user, login, monkeypatch, change
):
    """A grid removed (or added) after the request was authenticated and before the push took
    the write lock: the page sent with the push follows the jurisdiction the push was judged
    by, as a separate pull would, never the one read before."""
    import server.push as pushing
    from server.extensions import db
    from server.models import UserGrid

    start = [GRID_1, GRID_2] if change == "removed" else [GRID_1]
    worker = make_user("grid_worker", grids=start)
    other = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_2])))
    theirs = other.create("visit", grid_code=GRID_2, findings="二号网格")
    other.push()
    a = ApiDevice(client, login(worker))
    mine = a.create("visit", findings="一号网格")
    real = pushing._still_allowed

    def changed_meanwhile(user, device):  # an administrator's change, committed before the lock
        table = UserGrid.__table__
        conn = db.session.connection()
        if change == "removed":
            conn.execute(
                table.delete().where(table.c.user_id == user.id, table.c.grid_code == GRID_2)
            )
        else:
            conn.execute(table.insert().values(user_id=user.id, grid_code=GRID_2))
        return real(user, device)

    monkeypatch.setattr(pushing, "_still_allowed", changed_meanwhile)
    body = {
        "device_id": a.device_id,
        "operations": [o.to_dict() for o in a.outbox],
        "pull": {"cursor": 0},
    }
    answer = client.post("/api/v1/sync/push", json=body, headers=a.login.headers).get_json()
    monkeypatch.setattr(pushing, "_still_allowed", real)
    alone = client.post("/api/v1/sync/pull", json={"cursor": 0}, headers=a.login.headers)
    alone = alone.get_json()
    sent = [c["id"] for c in answer["pull"]["changes"]]
    assert sent == [c["id"] for c in alone["changes"]]
    assert answer["pull"]["scope"] == alone["scope"]
    assert (theirs in sent) is (change == "added") and mine in sent


def test_a_pull_may_leave_out_the_devices_own_unchanged_creates(devices, client):
    """Protocol 3, ``echo: false``: records that are still the asking device's own create are
    left out — not another device's, not one the same push changed again, not one changed
    since by anyone — passed over as if sent (the cursor moves past them, the checksum counts
    them), and a page that starts the scope over sends them all the same."""
    a, b, head = devices["a"], devices["b"], devices["head"]
    plain = a.create("visit", findings="一")
    noted = a.create("visit", findings="二")
    a.note(noted, "复访")
    case = a.create("dispute")  # the server opens its case: changed after the create
    a.push()
    theirs = b.create("visit", findings="三")
    b.push()

    def page(device: ApiDevice, **ask: object) -> dict:
        answer = device.post("pull", {"cursor": 0, "limit": 100, **ask})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def ids(answer: dict) -> set[str]:
        return {change["id"] for change in answer["changes"]}

    quiet, full = page(a, echo=False), page(a, echo=True)
    assert ids(quiet) == {noted, case, theirs}
    assert ids(full) == {plain, noted, case, theirs} and page(a) == full  # as before
    assert (quiet["cursor"], quiet["checksum"]) == (full["cursor"], full["checksum"])
    assert full["checksum"]["count"] == 4
    assert ids(page(b, echo=False)) == {plain, noted, case}  # its own is b's, not a's
    with_push = client.post(
        "/api/v1/sync/push",
        json={"device_id": a.device_id, "operations": [], "pull": {"cursor": 0, "echo": False}},
        headers=a.login.headers,
    ).get_json()["pull"]
    assert ids(with_push) == ids(quiet)

    head.pull()
    head.update(plain, findings="一（社区补充）")
    head.push()
    assert plain in ids(page(a, echo=False))  # changed by someone else: no longer a's echo

    fresh = a.create("visit", findings="四")
    a.push()
    assert fresh not in ids(page(a, echo=False))
    restart = page(a, echo=False, scope_token="a-scope-it-no-longer-has")
    assert restart["reset"] is True and fresh in ids(restart) and len(ids(restart)) == 5

    for wrong in ("false", 0, None, []):
        answer = a.post("pull", {"cursor": 0, "echo": wrong})
        assert answer.status_code == 422, wrong


def test_replays_are_found_by_key_whether_the_keys_are_a_run_or_scattered(devices):
    """A batch's receipts are read as one range of keys when they are nearly consecutive and
    by key lists when scattered; either way only the batch's own keys are answered as
    replays, and a new key among them is applied."""
    a = devices["a"]
    rids = [a.create("visit", findings=f"第{n}户") for n in range(6)]
    first = a.push()
    assert [r["status"] for r in first] == ["applied"] * 6
    sent = {op.seq: op for op in a.acked}
    run = [sent[2], sent[5]]  # 2..5 read as a range: 3 and 4 are in it but not asked for
    assert [r["status"] for r in a.push(run)] == ["duplicate", "duplicate"]
    late = a.op(OpKind.UPDATE, "visit", rids[0], base=1, fields={"findings": "复访"}, queue=False)
    far = replace(late, seq=10_000)
    answers = a.push([sent[1], far])  # 1 and 10,000: scattered, read by key lists
    assert [r["status"] for r in answers] == ["duplicate", "applied"]
    assert answers[0]["version"] == first[0]["version"] and answers[1]["version"] == 2
