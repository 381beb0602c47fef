"""Authorization by jurisdiction, as one table: role × route × where the object lies.

Every row of ``MATRIX`` is one route for one role; its four columns are the expected answer for
an object (a record, or a user and their device) located in

- ``own``          990101001001001  the grid worker's grid (community 990101001001)
- ``sibling``      990101001001002  another grid of the same community
- ``parent``       990101001002001  a grid of another community of the same street
- ``other_street`` 990101002001001  a grid of the other street of district 990101

The actors are a grid worker of the own grid, the head of community 990101001001, the admin of
street 990101001 and the admin of district 990101. Records are made the way they are in the
field: the grid worker of the record's grid pushes a create from their device.

Expected answers: an HTTP status (outside the actor's scope → 404, existence not leaked; a role
that may never do this → 403), a push result (``applied`` or ``rejected:<reason>``), or whether a
pull / admin list shows the object (``delivered`` / ``withheld``). Every refusal also proves that
nothing was changed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.extensions import db
from server.models import Device, Record, User
from sync import OpKind
from tests.server.conftest import assert_error
from tests.server.devices import ApiDevice, push_one

DISTRICT = "990101"
STREET_1, STREET_2 = "990101001", "990101002"
COMMUNITY_11, COMMUNITY_12, COMMUNITY_21 = "990101001001", "990101001002", "990101002001"
GRID_OWN = "990101001001001"
GRID_SIBLING = "990101001001002"
GRID_PARENT = "990101001002001"
GRID_OTHER_STREET = "990101002001001"
GRIDS = (GRID_OWN, GRID_SIBLING, GRID_PARENT, GRID_OTHER_STREET)

LOCATIONS = ("own", "sibling", "parent", "other_street")
GRID_AT = dict(zip(LOCATIONS, GRIDS, strict=True))

ACTORS: dict[str, dict[str, Any]] = {
    "grid_worker": {"unit": COMMUNITY_11, "grids": [GRID_OWN]},
    "community_head": {"unit": COMMUNITY_11},
    "street_admin": {"unit": STREET_1},
    "district_admin": {"unit": DISTRICT},
}

A = "applied"
NF = "rejected:unknown_record"  # outside scope: answered exactly like a missing record
FB = "rejected:forbidden"
Y = "delivered"
N = "withheld"

# fmt: off
MATRIX: list[tuple[str, str, Any, Any, Any, Any]] = [
    # route                   role               own   sibling parent other_street
    ("get",                   "grid_worker",     200,  404,    404,   404),
    ("get",                   "community_head",  200,  200,    404,   404),
    ("get",                   "street_admin",    200,  200,    200,   404),
    ("get",                   "district_admin",  200,  200,    200,   200),
    ("review",                "grid_worker",     403,  403,    403,   403),
    ("review",                "community_head",  200,  200,    404,   404),
    ("review",                "street_admin",    200,  200,    200,   404),
    ("review",                "district_admin",  200,  200,    200,   200),
    ("resolve",               "grid_worker",     200,  404,    404,   404),
    ("resolve",               "community_head",  200,  200,    404,   404),
    ("resolve",               "street_admin",    200,  200,    200,   404),
    ("resolve",               "district_admin",  200,  200,    200,   200),
    ("move",                  "grid_worker",     403,  403,    403,   403),
    ("move",                  "community_head",  200,  200,    404,   404),
    ("move",                  "street_admin",    200,  200,    200,   404),
    ("move",                  "district_admin",  200,  200,    200,   200),
    ("case",                  "grid_worker",     200,  404,    404,   404),
    ("case",                  "community_head",  200,  200,    404,   404),
    ("case",                  "street_admin",    200,  200,    200,   404),
    ("case",                  "district_admin",  200,  200,    200,   200),
    ("push_create",           "grid_worker",     A,    FB,     FB,    FB),
    ("push_create",           "community_head",  A,    A,      FB,    FB),
    ("push_create",           "street_admin",    A,    A,      A,     FB),
    ("push_create",           "district_admin",  A,    A,      A,     A),
    ("push_update",           "grid_worker",     A,    NF,     NF,    NF),
    ("push_update",           "community_head",  A,    A,      NF,    NF),
    ("push_update",           "street_admin",    A,    A,      A,     NF),
    ("push_update",           "district_admin",  A,    A,      A,     A),
    ("push_update_grid_code", "grid_worker",     FB,   NF,     NF,    NF),
    ("push_update_grid_code", "community_head",  FB,   FB,     NF,    NF),
    ("push_update_grid_code", "street_admin",    FB,   FB,     FB,    NF),
    ("push_update_grid_code", "district_admin",  FB,   FB,     FB,    FB),
    ("push_append",           "grid_worker",     A,    NF,     NF,    NF),
    ("push_append",           "community_head",  A,    A,      NF,    NF),
    ("push_append",           "street_admin",    A,    A,      A,     NF),
    ("push_append",           "district_admin",  A,    A,      A,     A),
    ("push_delete",           "grid_worker",     A,    NF,     NF,    NF),
    ("push_delete",           "community_head",  A,    A,      NF,    NF),
    ("push_delete",           "street_admin",    A,    A,      A,     NF),
    ("push_delete",           "district_admin",  A,    A,      A,     A),
    ("pull",                  "grid_worker",     Y,    N,      N,     N),
    ("pull",                  "community_head",  Y,    Y,      N,     N),
    ("pull",                  "street_admin",    Y,    Y,      Y,     N),
    ("pull",                  "district_admin",  Y,    Y,      Y,     Y),
    ("admin_list_users",      "grid_worker",     403,  403,    403,   403),
    ("admin_list_users",      "community_head",  403,  403,    403,   403),
    ("admin_list_users",      "street_admin",    Y,    Y,      Y,     N),
    ("admin_list_users",      "district_admin",  Y,    Y,      Y,     Y),
    ("admin_reset_password",  "grid_worker",     403,  403,    403,   403),
    ("admin_reset_password",  "community_head",  403,  403,    403,   403),
    ("admin_reset_password",  "street_admin",    204,  204,    204,   404),
    ("admin_reset_password",  "district_admin",  204,  204,    204,   204),
    ("admin_set_grids",       "grid_worker",     403,  403,    403,   403),
    ("admin_set_grids",       "community_head",  403,  403,    403,   403),
    ("admin_set_grids",       "street_admin",    200,  200,    200,   404),
    ("admin_set_grids",       "district_admin",  200,  200,    200,   200),
    ("admin_list_devices",    "grid_worker",     403,  403,    403,   403),
    ("admin_list_devices",    "community_head",  403,  403,    403,   403),
    ("admin_list_devices",    "street_admin",    Y,    Y,      Y,     N),
    ("admin_list_devices",    "district_admin",  Y,    Y,      Y,     Y),
    ("admin_revoke_device",   "grid_worker",     403,  403,    403,   403),
    ("admin_revoke_device",   "community_head",  403,  403,    403,   403),
    ("admin_revoke_device",   "street_admin",    200,  200,    200,   404),
    ("admin_revoke_device",   "district_admin",  200,  200,    200,   200),
]
# fmt: on

# Cells where the server is known to be wrong: (route, role, location) → reason. Kept strict so
# that the fix shows up as an XPASS to remove from here.
KNOWN_DEFECTS: dict[tuple[str, str, str], str] = {}


def _cases() -> list[Any]:
    cases = []
    for route, role, *expected in MATRIX:
        for location, want in zip(LOCATIONS, expected, strict=True):
            marks = []
            if (route, role, location) in KNOWN_DEFECTS:
                marks.append(
                    pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[route, role, location])
                )
            cases.append(
                pytest.param(
                    route, role, location, want, marks=marks, id=f"{route}-{role}-{location}"
                )
            )
    return cases


def test_matrix_covers_every_route_role_and_location():
    routes = {row[0] for row in MATRIX}
    assert set(PROBES) == routes
    assert len(MATRIX) == len(routes) * len(ACTORS)
    assert {(row[0], row[1]) for row in MATRIX} == {(r, a) for r in routes for a in ACTORS}


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    app: Any
    client: Any
    make_user: Any
    login: Any
    role: str
    actor: Any = None
    actor_user: Any = None
    owners: dict[str, tuple[Any, ApiDevice]] = field(default_factory=dict)

    def setup(self) -> World:
        self.actor_user = self.make_user(self.role, **ACTORS[self.role])
        self.actor = self.login(self.actor_user)
        return self

    def device(self, session: Any) -> ApiDevice:
        return ApiDevice(self.client, session)

    def actor_device(self) -> ApiDevice:
        return self.device(self.actor)

    def owner(self, grid: str) -> tuple[Any, ApiDevice]:
        """The grid worker of ``grid`` (home unit: the grid itself) and their device."""
        if grid not in self.owners:
            user = self.make_user("grid_worker", unit=grid, grids=[grid])
            self.owners[grid] = (user, self.device(self.login(user)))
        return self.owners[grid]

    def record(self, grid: str, rtype: str = "visit", **fields: Any) -> str:
        """A record made in the field by the grid worker of ``grid``."""
        _, dev = self.owner(grid)
        rid = dev.create(rtype, grid_code=grid, **fields)
        [result] = dev.push()
        assert result["status"] == "applied", result
        return rid

    def row(self, rid: str) -> tuple[Any, ...]:
        with self.app.app_context():
            rec = db.session.get(Record, rid)
            return (rec.grid_code, rec.version, rec.review_status, rec.deleted, rec.snapshot)

    def version(self, rid: str) -> int:
        return self.row(rid)[1]

    def user_row(self, user_id: int) -> tuple[Any, ...]:
        with self.app.app_context():
            user = db.session.get(User, user_id)
            return (user.password_hash, tuple(user.grid_codes), user.active)

    def device_revoked(self, device_id: str) -> bool:
        with self.app.app_context():
            return db.session.get(Device, device_id).revoked_at is not None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self.actor.headers)


def outcome(result: dict[str, Any]) -> str:
    if result["status"] == "rejected":
        return f"rejected:{result.get('reason')}"
    return result["status"]


def other_grid_in_scope(location: str) -> str:
    """A grid in every actor's scope other than the record's: the own grid, or its sibling."""
    return GRID_SIBLING if location == "own" else GRID_OWN


# --- probes: one per route; each returns what the actor observed --------------------------------


def _record_route(world: World, rid: str, response: Any) -> int:
    """Status of a /records/<id> action; a refusal leaves the record exactly as it was."""
    if response.status_code in (403, 404):
        code = "not_found" if response.status_code == 404 else "forbidden"
        assert_error(response, response.status_code, code)
    else:
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["id"] == rid
    return response.status_code


def probe_get(world: World, location: str) -> Any:
    rid = world.record(GRID_AT[location])
    return _record_route(
        world, rid, world.client.get(f"/api/v1/records/{rid}", headers=world.actor.headers)
    )


def probe_review(world: World, location: str) -> Any:
    rid = world.record(GRID_AT[location])
    before = world.row(rid)
    status = _record_route(
        world, rid, world.post(f"/api/v1/records/{rid}/review", {"decision": "approved"})
    )
    after = world.row(rid)
    assert (after == before) if status != 200 else after[2] == "approved"
    return status


def probe_resolve(world: World, location: str) -> Any:
    grid = GRID_AT[location]
    rid = world.record(grid, findings="漏水")
    owner, first = world.owner(grid)
    second = world.device(world.login(owner))
    assert (
        outcome(push_one(first, OpKind.UPDATE, "visit", rid, 1, fields={"findings": "已修好"})) == A
    )
    assert (
        push_one(second, OpKind.UPDATE, "visit", rid, 1, fields={"findings": "仍在漏水"})["status"]
        == "conflict"
    )
    before = world.row(rid)
    status = _record_route(
        world,
        rid,
        world.post(
            f"/api/v1/records/{rid}/resolve",
            {"field": "findings", "value": "仍在漏水", "reason": "上门核实"},
        ),
    )
    after = world.row(rid)
    if status == 200:
        snap = json.loads(after[4])
        assert snap["fields"]["findings"] == "仍在漏水" and snap["conflicts"] == {}
    else:
        assert after == before
    return status


def probe_move(world: World, location: str) -> Any:
    rid = world.record(GRID_AT[location])
    before = world.row(rid)
    target = other_grid_in_scope(location)
    status = _record_route(
        world, rid, world.post(f"/api/v1/records/{rid}/move", {"grid_code": target})
    )
    after = world.row(rid)
    assert after[0] == target if status == 200 else after == before
    return status


def _assigned_case(world: World, grid: str) -> str:
    """A dispute reported in ``grid`` by its worker, accepted and assigned by the district."""
    rid = world.record(grid, "dispute")
    district = world.login(world.make_user("district_admin", unit=DISTRICT))
    for action, params in (
        ("accept", {}),
        ("assign", {"responsible_unit": "司法所", "responsible_person": "李调解"}),
    ):
        response = world.client.post(
            f"/api/v1/records/{rid}/case",
            headers=district.headers,
            json={"action": action, "params": params},
        )
        assert response.status_code == 200, response.get_json()
    return rid


def probe_case(world: World, location: str) -> Any:
    rid = _assigned_case(world, GRID_AT[location])
    if world.role == "grid_worker":
        body: dict[str, Any] = {"action": "start"}
        to = "in_progress"
    else:
        body = {"action": "return", "params": {"target_status": "accepted", "reason": "重新交办"}}
        to = "accepted"
    before = world.row(rid)
    status = _record_route(world, rid, world.post(f"/api/v1/records/{rid}/case", body))
    after = world.row(rid)
    if status == 200:
        assert json.loads(after[4])["fields"]["status"] == to
    else:
        assert after == before
    return status


def probe_push_create(world: World, location: str) -> Any:
    dev = world.actor_device()
    rid = dev.create("visit", grid_code=GRID_AT[location])
    [result] = dev.push()
    with world.app.app_context():
        stored = db.session.get(Record, rid)
        assert (stored is not None) == (result["status"] == "applied")
    return outcome(result)


def _push_to_record(world: World, location: str, kind: OpKind, **kw: Any) -> Any:
    rid = world.record(GRID_AT[location])
    before = world.row(rid)
    result = push_one(world.actor_device(), kind, "visit", rid, world.version(rid), **kw)
    if result["status"] == "rejected":
        assert world.row(rid) == before
    else:
        assert world.version(rid) == before[1] + 1
    return outcome(result)


def probe_push_update(world: World, location: str) -> Any:
    return _push_to_record(world, location, OpKind.UPDATE, fields={"findings": "复查"})


def probe_push_update_grid_code(world: World, location: str) -> Any:
    return _push_to_record(
        world, location, OpKind.UPDATE, fields={"grid_code": other_grid_in_scope(location)}
    )


def probe_push_append(world: World, location: str) -> Any:
    return _push_to_record(
        world,
        location,
        OpKind.APPEND,
        collection="notes",
        item={"id": str(uuid.uuid4()), "text": "再次走访"},
    )


def probe_push_delete(world: World, location: str) -> Any:
    return _push_to_record(world, location, OpKind.DELETE)


def probe_pull(world: World, location: str) -> Any:
    rid = world.record(GRID_AT[location])
    dev = world.actor_device()
    dev.pull()
    return Y if rid in dev.snapshots else N


def _admin_list(world: World, path: str, key: str, wanted: Any) -> Any:
    response = world.client.get(path, headers=world.actor.headers)
    if response.status_code == 403:
        assert_error(response, 403, "forbidden")
        return 403
    assert response.status_code == 200, response.get_json()
    return Y if wanted in {item[key] for item in response.get_json()} else N


def probe_admin_list_users(world: World, location: str) -> Any:
    owner, _ = world.owner(GRID_AT[location])
    return _admin_list(world, "/api/v1/admin/users", "id", owner.id)


def probe_admin_list_devices(world: World, location: str) -> Any:
    _, dev = world.owner(GRID_AT[location])
    return _admin_list(world, "/api/v1/admin/devices", "id", dev.device_id)


def _admin_action(world: World, response: Any, before: Any, after: Any, ok: int) -> int:
    if response.status_code in (403, 404):
        code = "forbidden" if response.status_code == 403 else None
        assert_error(response, response.status_code, code)
        assert after() == before
    else:
        assert response.status_code == ok, response.get_json()
        assert after() != before
    return response.status_code


def probe_admin_reset_password(world: World, location: str) -> Any:
    owner, _ = world.owner(GRID_AT[location])
    before = world.user_row(owner.id)
    response = world.post(
        f"/api/v1/admin/users/{owner.id}/password", {"password": "a brand new password"}
    )
    return _admin_action(world, response, before, lambda: world.user_row(owner.id), 204)


def probe_admin_set_grids(world: World, location: str) -> Any:
    grid = GRID_AT[location]
    owner, _ = world.owner(grid)
    before = world.user_row(owner.id)
    response = world.client.put(
        f"/api/v1/admin/users/{owner.id}/grids", json={"grids": []}, headers=world.actor.headers
    )
    return _admin_action(world, response, before, lambda: world.user_row(owner.id), 200)


def probe_admin_revoke_device(world: World, location: str) -> Any:
    _, dev = world.owner(GRID_AT[location])
    response = world.post(f"/api/v1/admin/devices/{dev.device_id}/revoke", {})
    status = _admin_action(world, response, False, lambda: world.device_revoked(dev.device_id), 200)
    me = world.client.get("/api/v1/me", headers=dev.login.headers)
    assert me.status_code == (401 if status == 200 else 200)
    return status


PROBES = {
    "get": probe_get,
    "review": probe_review,
    "resolve": probe_resolve,
    "move": probe_move,
    "case": probe_case,
    "push_create": probe_push_create,
    "push_update": probe_push_update,
    "push_update_grid_code": probe_push_update_grid_code,
    "push_append": probe_push_append,
    "push_delete": probe_push_delete,
    "pull": probe_pull,
    "admin_list_users": probe_admin_list_users,
    "admin_reset_password": probe_admin_reset_password,
    "admin_set_grids": probe_admin_set_grids,
    "admin_list_devices": probe_admin_list_devices,
    "admin_revoke_device": probe_admin_revoke_device,
}


@pytest.fixture
def territory(make_unit):
    for grid in GRIDS:
        make_unit(grid)


@pytest.mark.parametrize(("route", "role", "location", "expected"), _cases())
def test_authorization_matrix(
    app, client, make_user, login, territory, route, role, location, expected
):
    world = World(app, client, make_user, login, role).setup()
    assert PROBES[route](world, location) == expected


SQL_SCOPED_ROUTES = ("pull", "admin_list_users", "admin_list_devices")


@pytest.mark.parametrize("any_app", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    ("route", "role", "location", "expected"),
    [c for c in _cases() if c.values[0] in SQL_SCOPED_ROUTES],
)
def test_sql_scoped_rows_on_postgres(
    any_app, client, make_user, login, territory, route, role, location, expected
):
    """The rows answered by a SQL scope filter (not Python), again on PostgreSQL."""
    world = World(any_app, client, make_user, login, role).setup()
    assert PROBES[route](world, location) == expected


# --- named cases -------------------------------------------------------------------------------


@pytest.fixture
def worker_world(app, client, make_user, login, territory):
    return World(app, client, make_user, login, "grid_worker").setup()


def test_create_into_another_grid_is_refused_and_the_rest_of_the_batch_applies(worker_world):
    dev = worker_world.actor_device()
    elsewhere = dev.create("household", grid_code=GRID_SIBLING)
    mine = dev.create("household", grid_code=GRID_OWN)
    results = dev.push()
    assert [outcome(r) for r in results] == [FB, A]
    _, sibling_worker = worker_world.owner(GRID_SIBLING)
    sibling_worker.pull()
    assert elsewhere not in sibling_worker.snapshots
    with worker_world.app.app_context():
        assert db.session.get(Record, elsewhere) is None
        assert db.session.get(Record, mine).grid_code == GRID_OWN


def test_update_that_changes_grid_code_is_refused(worker_world):
    """Even into a grid the worker also holds: moving is a head's act, not an edit."""
    rid = worker_world.record(GRID_OWN)
    before = worker_world.row(rid)
    dev = worker_world.device(worker_world.actor)
    result = push_one(
        dev,
        OpKind.UPDATE,
        "visit",
        rid,
        before[1],
        fields={"grid_code": GRID_SIBLING, "findings": "搬家了"},
    )
    assert outcome(result) == FB
    resolve = push_one(
        dev,
        OpKind.RESOLVE,
        "visit",
        rid,
        before[1],
        fields={"grid_code": GRID_SIBLING},
        reason="搬家",
    )
    assert outcome(resolve) == FB
    assert worker_world.row(rid) == before


@pytest.mark.parametrize(
    "target",
    [GRID_PARENT, GRID_OTHER_STREET, "990101001001999"],
    ids=["other-community", "other-street", "no-such-grid"],
)
def test_head_cannot_move_a_record_outside_their_community(
    app, client, make_user, login, territory, target
):
    world = World(app, client, make_user, login, "community_head").setup()
    rid = world.record(GRID_OWN)
    before = world.row(rid)
    response = world.post(f"/api/v1/records/{rid}/move", {"grid_code": target})
    assert_error(response, 404, "not_found")
    assert world.row(rid) == before


def test_grid_worker_cannot_review_even_their_own_grid(worker_world):
    rid = worker_world.record(GRID_OWN)
    for decision in ("approved", "returned"):
        response = worker_world.post(
            f"/api/v1/records/{rid}/review", {"decision": decision, "comment": "自己审自己"}
        )
        assert_error(response, 403, "forbidden")
    assert worker_world.row(rid)[2] == "pending"


def test_grid_worker_cannot_do_a_heads_case_action_in_their_own_grid(worker_world):
    """The workflow's role rule holds on the API too: refused with a reason, not applied."""
    rid = worker_world.record(GRID_OWN, "dispute")
    before = worker_world.row(rid)
    response = worker_world.post(f"/api/v1/records/{rid}/case", {"action": "accept"})
    assert_error(response, 422, "workflow.role_not_allowed")
    assert worker_world.row(rid) == before


# --- no existence leak: outside the scope answers exactly like "no such record" -------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "/review", {"decision": "approved"}),
        ("post", "/resolve", {"field": "findings", "value": "x", "reason": "r"}),
        ("post", "/move", {"grid_code": GRID_OWN}),
        ("post", "/case", {"action": "accept"}),
    ],
    ids=["get", "review", "resolve", "move", "case"],
)
def test_record_routes_answer_outside_scope_like_a_missing_record(
    app, client, make_user, login, territory, method, suffix, body
):
    world = World(app, client, make_user, login, "community_head").setup()
    outside = world.record(GRID_PARENT)
    missing = str(uuid.uuid4())

    def ask(rid: str) -> Any:
        kwargs = {"headers": world.actor.headers}
        if body is not None:
            kwargs["json"] = body
        return getattr(client, method)(f"/api/v1/records/{rid}{suffix}", **kwargs)

    there, nowhere = ask(outside), ask(missing)
    assert there.status_code == nowhere.status_code == 404
    assert there.get_json() == nowhere.get_json()


@pytest.mark.parametrize("kind", [OpKind.UPDATE, OpKind.APPEND, OpKind.DELETE, OpKind.RESOLVE])
def test_push_to_a_record_outside_scope_answers_like_a_missing_record(worker_world, kind):
    """A device guessing ids learns nothing: same status, reason and message either way."""
    outside = worker_world.record(GRID_SIBLING)
    missing = str(uuid.uuid4())
    dev = worker_world.actor_device()
    kw: dict[str, Any] = {}
    if kind in (OpKind.UPDATE, OpKind.RESOLVE):
        kw["fields"] = {"findings": "猜一猜"}
    if kind is OpKind.RESOLVE:
        kw["reason"] = "猜"
    if kind is OpKind.APPEND:
        kw.update(collection="notes", item={"id": str(uuid.uuid4()), "text": "猜一猜"})
    there = push_one(dev, kind, "visit", outside, 1, **kw)
    if kind is OpKind.APPEND:
        kw["item"] = {"id": str(uuid.uuid4()), "text": "猜一猜"}
    nowhere = push_one(dev, kind, "visit", missing, 1, **kw)
    assert there["status"] == nowhere["status"] == "rejected"
    strip = ("key", "record_id")
    assert {k: v for k, v in there.items() if k not in strip} == {
        k: v for k, v in nowhere.items() if k not in strip
    }


def test_a_moved_record_leaves_the_old_grid_and_its_worker_loses_access(
    app, client, make_user, login, territory
):
    world = World(app, client, make_user, login, "community_head").setup()
    rid = world.record(GRID_OWN)
    _, old_dev = world.owner(GRID_OWN)
    _, new_dev = world.owner(GRID_SIBLING)
    old_dev.pull()
    new_dev.pull()
    assert rid in old_dev.snapshots and rid not in new_dev.snapshots
    response = world.post(f"/api/v1/records/{rid}/move", {"grid_code": GRID_SIBLING})
    assert response.status_code == 200, response.get_json()
    old_dev.pull()
    new_dev.pull()
    assert rid not in old_dev.snapshots and rid in new_dev.snapshots
    assert {"record_id": rid, "reason": "scope"} in old_dev.last_pull["removals"]
    assert (
        old_dev.client.get(f"/api/v1/records/{rid}", headers=old_dev.login.headers).status_code
        == 404
    )
    stale = push_one(
        old_dev,
        OpKind.UPDATE,
        "visit",
        rid,
        world.version(rid),
        fields={"findings": "旧网格的修改"},
    )
    assert outcome(stale) == NF


def test_reassigned_worker_loses_the_old_grid_on_next_pull(
    app, client, make_user, login, territory
):
    world = World(app, client, make_user, login, "street_admin").setup()
    rid = world.record(GRID_OWN)
    owner, dev = world.owner(GRID_OWN)
    dev.pull()
    assert rid in dev.snapshots
    with app.app_context():
        # The admin API only assigns grids under the user's home unit; put them in the community.
        db.session.get(User, owner.id).unit_code = COMMUNITY_11
        db.session.commit()
    response = client.put(
        f"/api/v1/admin/users/{owner.id}/grids",
        json={"grids": [GRID_SIBLING]},
        headers=world.actor.headers,
    )
    assert response.status_code == 200, response.get_json()
    dev.pull()
    assert dev.last_pull["reset"] is True and rid not in dev.snapshots
    assert client.get(f"/api/v1/records/{rid}", headers=dev.login.headers).status_code == 404
