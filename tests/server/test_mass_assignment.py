"""Mass assignment: a client can never set a field the server owns.

The server-owned fields are taken from sync.schema (``SERVER_OWNED_FIELDS`` and every field
declared ``server_only``), so a field added there is covered here. Each is injected into every
writable route: push create / update / resolve operations (rejected: ``invalid_fields``), push
append items and case-step params (ignored), the JSON bodies of the review / resolve / move /
case routes, the sync envelopes and the login body (422: request schemas raise on unknown keys).
Whatever the answer, the stored record never carries the injected value.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import Device, Record, SyncOp
from server.store import stored_state
from sync import Operation, OpKind
from sync.schema import RECORD_TYPES, SERVER_OWNED_FIELDS
from tests.conftest import GRID_1, GRID_2
from tests.server.conftest import assert_error
from tests.server.devices import ApiDevice, push_one

SERVER_ONLY: dict[str, str] = {
    name: rtype.name
    for rtype in RECORD_TYPES.values()
    for name, spec in rtype.fields.items()
    if spec.server_only
}

# A value to inject for every server-owned field: each differs from what the server would store.
_OWNED_VALUES: dict[str, Any] = {
    "id": "00000000-0000-4000-8000-000000000000",
    "version": 99,
    "author": "district_admin",
    "author_id": 1,
    "created_at": "2020-01-01T00:00:00+00:00",
    "updated_at": "2020-01-01T00:00:00+00:00",
    "review_status": "approved",
    "review": {"status": "approved", "by": "伪造的审核人"},
    "server_time": 0,
    "seq": 10**9,
    "deleted": True,
    "_deleted": True,
    "status": "closed",
    "mediation_outcome": "written_agreement",
    "supervision": "red",
}
_BY_KIND: dict[str, Any] = {
    "date": "2099-12-31",
    "text": "伪造的值",
    "bool": True,
    "int": 365,
    "code": "forged",
}


def _injected(name: str) -> Any:
    if name in _OWNED_VALUES:
        return _OWNED_VALUES[name]
    return _BY_KIND[RECORD_TYPES[SERVER_ONLY[name]].fields[name].kind]


INJECTED: dict[str, Any] = {
    name: _injected(name) for name in sorted(SERVER_OWNED_FIELDS | set(SERVER_ONLY))
}

# (record type, field): server-owned fields go on a visit, server-only ones on their own type.
TARGETS = [("visit", name) for name in sorted(SERVER_OWNED_FIELDS)] + [
    (rtype, name) for name, rtype in sorted(SERVER_ONLY.items())
]
TARGET_IDS = [f"{rtype}.{name}" for rtype, name in TARGETS]

ADDRESS = "1号楼1单元101"


def test_every_server_owned_field_has_an_injected_value():
    assert set(INJECTED) == SERVER_OWNED_FIELDS | set(SERVER_ONLY)


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def worker(make_user):
    return make_user("grid_worker", grids=[GRID_1, GRID_2])


@pytest.fixture
def device(client, worker, login):
    return ApiDevice(client, login(worker))


@pytest.fixture
def head(login, make_user):
    return login(make_user("community_head"))


def push_raw(dev: ApiDevice, op: dict[str, Any]) -> dict[str, Any]:
    response = dev.post("push", {"device_id": dev.device_id, "operations": [op]})
    assert response.status_code == 200, response.get_json()
    [result] = response.get_json()["results"]
    dev.next_seq += 1
    return result


def created(dev: ApiDevice, rtype: str = "visit", **fields: Any) -> str:
    rid = dev.create(rtype, **fields)
    [result] = dev.push()
    assert result["status"] == "applied", result
    return rid


def stored(app: Any, rid: str) -> dict[str, Any] | None:
    """Everything the server keeps about a record (None when there is no such record)."""
    with app.app_context():
        rec = db.session.get(Record, rid)
        if rec is None:
            return None
        return {
            "grid_code": rec.grid_code,
            "version": rec.version,
            "seq": rec.seq,
            "deleted": rec.deleted,
            "review_status": rec.review_status,
            "review": rec.review,
            "author_id": rec.author_id,
            "device_id": rec.device_id,
            "created_at": rec.created_at,
            "updated_at": rec.updated_at,
            "state": rec.state,
            "snapshot": json.loads(rec.snapshot),
        }


def test_record_api_answers_with_the_records_fields(client, device):
    rid = created(device, findings="漏水")
    body = client.get(f"/api/v1/records/{rid}", headers=device.login.headers).get_json()
    assert body["fields"]["findings"] == "漏水"


def assert_not_carried(app: Any, client: Any, login: Any, rid: str, name: str, value: Any) -> None:
    """Neither the stored row, nor the snapshot a pull sends, nor the API shows ``value``."""
    row = stored(app, rid)
    assert row is not None
    api = client.get(f"/api/v1/records/{rid}", headers=login.headers)
    assert api.status_code == 200, api.get_json()
    fresh = ApiDevice(client, login)
    fresh.pull()
    # The API's view is checked too.
    for view in (row["snapshot"], fresh.snapshots[rid], api.get_json()):
        assert view["id"] == rid and view["id"] != INJECTED["id"]
        assert view.get("fields", {}).get(name) != value, (name, view.get("fields"))
        assert name not in view or name in ("id", "version", "deleted", "review"), view
        assert view["version"] != INJECTED["version"]
        assert view["deleted"] is False
        assert (view["review"] or {}).get("status") != "approved"
        assert view["grid_code"] in (GRID_1, GRID_2)
    assert row["review_status"] == "pending" and row["deleted"] is False
    assert row["version"] < INJECTED["version"] and row["seq"] < INJECTED["seq"]
    assert row["created_at"].year != 2020 and row["updated_at"].year != 2020


# --- push create / update / resolve: the field is refused --------------------------------------


@pytest.mark.parametrize(("rtype", "name"), TARGETS, ids=TARGET_IDS)
def test_push_create_with_a_server_owned_field_is_rejected(app, device, rtype, name):
    rid = device.create(rtype, **{name: INJECTED[name]})
    [result] = device.push()
    assert result["status"] == "rejected" and result["reason"] == "invalid_fields", result
    assert name in result["message"]
    assert stored(app, rid) is None


def _edit_cases() -> list[Any]:
    cases = []
    for kind in (OpKind.UPDATE, OpKind.RESOLVE):
        for (rtype, name), target_id in zip(TARGETS, TARGET_IDS, strict=True):
            cases.append(pytest.param(kind, rtype, name, id=f"{kind}-{target_id}"))
    return cases


@pytest.mark.parametrize(("kind", "rtype", "name"), _edit_cases())
def test_push_edit_with_a_server_owned_field_is_rejected(app, client, device, kind, rtype, name):
    rid = created(device, rtype)
    before = stored(app, rid)
    extra = {"reason": "现场核实"} if kind is OpKind.RESOLVE else {}
    legit = {"visit": "findings", "dispute": "description"}[rtype]
    # the injected field alone, and hidden among legitimate edits
    for fields in ({name: INJECTED[name]}, {legit: "正常修改", name: INJECTED[name]}):
        result = push_one(device, kind, rtype, rid, before["version"], fields=fields, **extra)
        assert result["status"] == "rejected" and result["reason"] == "invalid_fields", result
        assert stored(app, rid) == before
    assert_not_carried(app, client, device.login, rid, name, INJECTED[name])


def test_push_resolve_cannot_toggle_deletion_without_a_conflict(app, device):
    rid = created(device)
    assert push_one(device, OpKind.DELETE, "visit", rid, 1)["status"] == "applied"
    before = stored(app, rid)
    assert before["deleted"] is True
    result = push_one(
        device,
        OpKind.RESOLVE,
        "visit",
        rid,
        before["version"],
        fields={"_deleted": False},
        reason="复活",
    )
    assert result["status"] == "rejected", result
    assert stored(app, rid) == before


def test_push_resolve_may_settle_a_real_deletion_conflict(app, client, worker, login):
    """The legitimate use of _deleted in a resolve: an edit raced a delete."""
    first = ApiDevice(client, login(worker))
    second = ApiDevice(client, login(worker))
    rid = created(first)
    assert push_one(first, OpKind.DELETE, "visit", rid, 1)["status"] == "applied"
    raced = push_one(second, OpKind.UPDATE, "visit", rid, 1, fields={"findings": "还在"})
    assert raced["status"] == "conflict" and "_deleted" in raced["conflicts"]
    result = push_one(
        first,
        OpKind.RESOLVE,
        "visit",
        rid,
        raced["version"],
        fields={"_deleted": False},
        reason="住户仍在",
    )
    assert result["status"] == "applied", result
    assert stored(app, rid)["deleted"] is False


def test_unknown_top_level_keys_of_an_operation_are_ignored(app, client, device, worker):
    """Only the operation's own keys are read; look-alikes of server fields change nothing."""
    rid = created(device)
    op = Operation(
        device_id=device.device_id,
        seq=device.next_seq,
        kind=OpKind.UPDATE,
        record_type="visit",
        record_id=rid,
        base_version=1,
        hlc=str(device.clock.now()),
        author="1",
        fields={"findings": "复查"},
    ).to_dict()
    op.update(
        {k: v for k, v in INJECTED.items() if k not in op},
        user_id=1,
        grid_code=GRID_2,
        role="district_admin",
    )
    result = push_raw(device, op)
    assert result["status"] == "applied", result
    assert_not_carried(app, client, device.login, rid, "findings", "never")
    row = stored(app, rid)
    assert row["version"] == 2 and row["grid_code"] == GRID_1 and row["author_id"] == worker.id


# --- push append: extra keys in the item are data, never server fields --------------------------


def test_note_item_extra_keys_do_not_change_server_fields(any_app, client, device):
    rid = created(device)
    before = stored(any_app, rid)
    item = {
        "id": str(uuid.uuid4()),
        "text": "再次走访",
        **INJECTED,
        "grid_code": GRID_2,
        "fields": {"findings": "伪造"},
    }
    result = push_one(
        device, OpKind.APPEND, "visit", rid, before["version"], collection="notes", item=item
    )
    after = stored(any_app, rid)
    if result["status"] == "applied":
        assert after["version"] == before["version"] + 1
    else:
        assert after == before
    for key in ("grid_code", "review_status", "review", "deleted", "author_id", "created_at"):
        assert after[key] == before[key], key
    assert after["snapshot"]["fields"] == before["snapshot"]["fields"]
    assert after["snapshot"]["conflicts"] == {}


def _assigned_dispute(client: Any, device: ApiDevice, head: Any) -> str:
    rid = created(device, "dispute")
    assign = {"responsible_unit": "司法所", "responsible_person": "李调解"}
    for action, params in (("accept", {}), ("assign", assign)):
        response = client.post(
            f"/api/v1/records/{rid}/case",
            headers=head.headers,
            json={"action": action, "params": params},
        )
        assert response.status_code == 200, response.get_json()
    return rid


def test_case_step_item_cannot_forge_its_outcome_or_the_case_fields(
    app, client, device, head, worker
):
    """A worker's 'start' step carrying forged keys: the server decides what the step did."""
    rid = _assigned_dispute(client, device, head)
    before = stored(app, rid)["snapshot"]["fields"]
    forged = {
        "by": "张主任",
        "at": "2020-01-01T00:00:00",
        "from": "followed_up",
        "to": "closed",
        "actor_role": "district_admin",
        "on": "2020-01-01",
    }
    item = {
        "id": str(uuid.uuid4()),
        "action": "start",
        **forged,
        **INJECTED,
        "params": dict(INJECTED),
    }
    result = push_one(
        device,
        OpKind.APPEND,
        "dispute",
        rid,
        stored(app, rid)["version"],
        collection="steps",
        item=item,
    )
    assert result["status"] == "applied", result
    snap = stored(app, rid)["snapshot"]
    step = snap["collections"]["steps"][-1]
    assert step["action"] == "start" and step["from"] == "assigned" and step["to"] == "in_progress"
    assert step["actor_role"] == "grid_worker" and step["by"] == worker.username.title()
    assert step["at"] != forged["at"] and step["on"] != forged["on"]
    fields = snap["fields"]
    assert fields["status"] == "in_progress"
    for name in ("responsible_unit", "responsible_person", "due_date"):
        assert fields[name] == before[name]
    assert fields.get("supervision") is None and fields.get("mediation_outcome") is None
    row = stored(app, rid)
    assert row["review_status"] == "pending" and row["version"] < INJECTED["version"]


def test_case_step_for_a_heads_action_is_refused_whatever_the_item_claims(
    app, client, device, head
):
    rid = _assigned_dispute(client, device, head)
    before = stored(app, rid)
    item = {
        "id": str(uuid.uuid4()),
        "action": "close",
        "actor_role": "community_head",
        "role": "community_head",
        "params": {"role": "district_admin"},
    }
    result = push_one(
        device, OpKind.APPEND, "dispute", rid, before["version"], collection="steps", item=item
    )
    assert result["status"] == "rejected" and result["reason"] == "illegal_transition", result
    assert stored(app, rid) == before


# --- the records API: unknown keys are refused, params are not a back door ---------------------


def _record_bodies(rid_grid: str) -> dict[str, dict[str, Any]]:
    return {
        "review": {"decision": "approved", "comment": "好"},
        "resolve": {"field": "findings", "value": "仍在漏水", "reason": "上门核实"},
        "move": {"grid_code": GRID_2 if rid_grid == GRID_1 else GRID_1},
        "case": {"action": "accept", "params": {}},
    }


@pytest.mark.parametrize("route", ["review", "resolve", "move", "case"])
def test_record_action_bodies_refuse_server_owned_keys(app, client, device, head, route):
    rid = created(device, "dispute" if route == "case" else "visit")
    before = stored(app, rid)
    body = _record_bodies(GRID_1)[route]
    extras = {
        **INJECTED,
        "grid_code": GRID_2,
        "user_id": 1,
        "role": "district_admin",
        "actor": "张主任",
        "scope": ["990101"],
    }
    for name, value in extras.items():
        if name in body:
            continue
        response = client.post(
            f"/api/v1/records/{rid}/{route}", headers=head.headers, json={**body, name: value}
        )
        error = assert_error(response, 422)
        assert name in json.dumps(error["details"]), (name, error)
        assert stored(app, rid) == before, name


@pytest.mark.parametrize("name", sorted(INJECTED))
def test_case_params_cannot_set_server_owned_fields(app, client, device, head, name):
    """params is a free mapping: the workflow reads what it needs and ignores the rest."""
    rid = created(device, "dispute")
    response = client.post(
        f"/api/v1/records/{rid}/case",
        headers=head.headers,
        json={"action": "accept", "params": {name: INJECTED[name]}},
    )
    assert response.status_code == 200, response.get_json()
    row = stored(app, rid)
    fields = row["snapshot"]["fields"]
    assert fields["status"] == "accepted"
    if name != "status":
        assert fields.get(name) != INJECTED[name]
    assert row["review_status"] == "pending" and row["version"] < INJECTED["version"]
    assert row["deleted"] is False and row["grid_code"] == GRID_1
    assert row["created_at"].year != 2020
    assert row["snapshot"]["collections"]["steps"][-1]["params"] == {}


@pytest.mark.parametrize("name", sorted(SERVER_OWNED_FIELDS | set(SERVER_ONLY) | {"grid_code"}))
def test_resolve_route_cannot_target_a_server_owned_field(app, client, device, head, name):
    rid = created(device, "dispute")
    before = stored(app, rid)
    response = client.post(
        f"/api/v1/records/{rid}/resolve",
        headers=head.headers,
        json={"field": name, "value": INJECTED.get(name, GRID_2), "reason": "强行覆盖"},
    )
    assert_error(response, 422)
    assert stored(app, rid) == before


# --- sync envelopes and login: unknown keys are refused ----------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("handshake", {"device_time_ms": 0, "protocol_versions": [1], "schema_version": 1}),
        ("push", {"operations": []}),
        ("pull", {"cursor": 0, "limit": 10, "scope_token": None}),
    ],
)
@pytest.mark.parametrize(
    "extra",
    [
        {"scope": {"prefixes": ["990101"], "token": "x"}},
        {"prefixes": ["990101"]},
        {"user_id": 1},
        {"role": "district_admin"},
        {"server_time": 0},
        {"seq": 10**9},
    ],
    ids=["scope", "prefixes", "user_id", "role", "server_time", "seq"],
)
def test_sync_envelopes_refuse_unknown_keys(client, device, path, body, extra):
    if path != "pull":
        body = {**body, "device_id": device.device_id}
    response = device.post(path, {**body, **extra})
    assert_error(response, 422)


def test_pull_scope_cannot_be_widened_by_the_device(client, device, make_user, login):
    other = ApiDevice(
        client, login(make_user("grid_worker", unit="990101002001", grids=["990101002001001"]))
    )
    elsewhere = created(other, grid_code="990101002001001")
    response = device.post("pull", {"cursor": 0, "limit": 100, "scope_token": "0" * 16})
    assert response.status_code == 200
    body = response.get_json()
    assert body["scope"]["prefixes"] == [GRID_1, GRID_2]
    assert elsewhere not in {c["id"] for c in body["changes"]}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *sorted(INJECTED.items()),
        ("role", "district_admin"),
        ("unit_code", "990101"),
        ("grids", ["990101002001001"]),
        ("user_id", 1),
        ("active", True),
        ("scope", {"prefixes": ["990101"]}),
    ],
)
def test_login_body_refuses_unknown_keys(app, client, worker, name, value):
    device_id = str(uuid.uuid4())
    response = client.post(
        "/api/v1/auth/login",
        json={
            "username": worker.username,
            "password": worker.password,
            "device_id": device_id,
            "device_name": "tablet",
            name: value,
        },
    )
    error = assert_error(response, 422)
    assert name in json.dumps(error["details"])
    with app.app_context():
        assert db.session.get(Device, device_id) is None


def test_admin_user_body_refuses_unknown_keys(client, login, make_user):
    admin = login(make_user("street_admin"))
    for name, value in (
        ("active", False),
        ("id", 1),
        ("password_hash", "x"),
        ("created_at", "2020-01-01T00:00:00"),
        ("scope", ["990101"]),
    ):
        response = client.post(
            "/api/v1/admin/users",
            headers=admin.headers,
            json={
                "username": f"u{uuid.uuid4().hex[:6]}",
                "role": "grid_worker",
                "unit_code": "990101001001",
                "password": "long enough password",
                name: value,
            },
        )
        assert_error(response, 422)


# --- the author of a write is the authenticated user, whatever the device claims ---------------


def test_author_is_the_authenticated_user_not_the_devices_claim(
    any_app, client, worker, login, make_user
):
    first = ApiDevice(client, login(worker))
    colleague = make_user("grid_worker", grids=[GRID_1])
    second = ApiDevice(client, login(colleague))
    rid = str(uuid.uuid4())
    ops = [
        Operation(
            device_id=first.device_id,
            seq=1,
            kind=OpKind.CREATE,
            record_type="visit",
            record_id=rid,
            base_version=0,
            hlc=str(first.clock.now()),
            author=str(colleague.id),
            fields={"grid_code": GRID_1, "visited_at": "2026-11-27T09:00:00+08:00"},
        ),
        Operation(
            device_id=first.device_id,
            seq=2,
            kind=OpKind.UPDATE,
            record_type="visit",
            record_id=rid,
            base_version=1,
            hlc=str(first.clock.now()),
            author="admin",
            fields={"findings": "漏水"},
        ),
    ]
    first.next_seq = 3
    assert [r["status"] for r in first.push(ops)] == ["applied", "applied"]
    raced = push_one(second, OpKind.UPDATE, "visit", rid, 1, fields={"findings": "没漏"})
    assert raced["status"] == "conflict"
    with any_app.app_context():
        rec = db.session.get(Record, rid)
        assert rec.author_id == worker.id
        state = stored_state(rec.state, rec.data)
        authors = {w.author for ws in state.fields.values() for w in ws}
        assert authors == {str(worker.id), str(colleague.id)}
        by_device = {w.device_id: w.author for ws in state.fields.values() for w in ws}
        assert by_device == {first.device_id: str(worker.id), second.device_id: str(colleague.id)}
        payloads = db.session.execute(
            select(SyncOp.device_id, SyncOp.user_id, SyncOp.payload).where(SyncOp.record_id == rid)
        ).all()
        for device_id, user_id, payload in payloads:
            owner = worker if device_id == first.device_id else colleague
            # the history keeps the authenticated user; the device's claimed author is not kept
            assert user_id == owner.id and "author" not in json.loads(payload)
    snap = client.get(f"/api/v1/records/{rid}", headers=first.login.headers).get_json()
    assert {w["author"] for w in snap["conflicts"]["findings"]} == {
        str(worker.id),
        str(colleague.id),
    }
