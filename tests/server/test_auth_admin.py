"""Admin API: roles, scope (outside answers 404), users, grids, passwords, devices."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import COMMUNITY, GRID_1, GRID_2, STREET
from tests.server.conftest import assert_error

USERS = "/api/v1/admin/users"
OTHER_STREET = "990101002"
OTHER_COMMUNITY = "990101002001"
OTHER_GRID = "990101002001001"


@pytest.fixture
def street_admin(make_user, login, make_unit):
    for code in (GRID_1, GRID_2, OTHER_GRID):
        make_unit(code)
    return login(make_user("street_admin", unit=STREET))


def _new_user(**overrides):
    return {
        "username": f"w{uuid.uuid4().hex[:8]}",
        "display_name": "王网格",
        "role": "grid_worker",
        "unit_code": COMMUNITY,
        "password": "long enough password",
        "grids": [GRID_1],
        **overrides,
    }


@pytest.mark.parametrize("role", ["grid_worker", "community_head"])
def test_non_admins_are_forbidden(client, make_user, login, role):
    session = login(make_user(role))
    assert_error(client.get(USERS, headers=session.headers), 403, "forbidden")


def test_admin_lists_only_users_in_scope(client, make_user, street_admin):
    inside = make_user("grid_worker")
    outside = make_user("grid_worker", unit=OTHER_COMMUNITY, grids=[OTHER_GRID])
    ids = {user["id"] for user in client.get(USERS, headers=street_admin.headers).get_json()}
    assert inside.id in ids and outside.id not in ids


def test_admin_creates_a_user_who_can_log_in(client, street_admin, login):
    payload = _new_user(grids=[GRID_1, GRID_2])
    response = client.post(USERS, json=payload, headers=street_admin.headers)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["grids"] == [GRID_1, GRID_2] and created["active"] is True
    body = client.post(
        "/api/v1/auth/login",
        json={
            "username": payload["username"],
            "password": payload["password"],
            "device_id": str(uuid.uuid4()),
        },
    ).get_json()
    assert body["scope"]["prefixes"] == [GRID_1, GRID_2]


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"unit_code": OTHER_COMMUNITY, "grids": [OTHER_GRID]}, 404, "not_found"),
        ({"grids": [OTHER_GRID]}, 404, "not_found"),
        ({"role": "district_admin", "unit_code": "990101", "grids": []}, 403, "forbidden"),
        ({"role": "community_head", "grids": [GRID_1]}, 422, "grids_not_allowed"),
        ({"role": "street_admin", "unit_code": COMMUNITY, "grids": []}, 422, None),
        ({"grids": [COMMUNITY + "999"]}, 404, "not_found"),
        ({"password": "short"}, 422, "validation_failed"),
        ({"role": "king"}, 422, "validation_failed"),
    ],
    ids=[
        "unit-out-of-scope",
        "grid-out-of-scope",
        "higher-role",
        "grids-for-head",
        "level-mismatch",
        "unknown-grid",
        "short-password",
        "bad-role",
    ],
)
def test_create_user_is_checked(client, street_admin, overrides, status, code):
    response = client.post(USERS, json=_new_user(**overrides), headers=street_admin.headers)
    assert_error(response, status, code)


def test_duplicate_username_is_409(client, street_admin):
    payload = _new_user()
    assert client.post(USERS, json=payload, headers=street_admin.headers).status_code == 201
    response = client.post(USERS, json=payload, headers=street_admin.headers)
    assert_error(response, 409, "username_taken")


def test_password_reset(client, make_user, street_admin):
    user = make_user()
    url = f"{USERS}/{user.id}/password"
    new = "a brand new password"
    assert client.post(url, json={"password": new}, headers=street_admin.headers).status_code == 204
    login = {"username": user.username, "device_id": str(uuid.uuid4())}
    assert_error(client.post("/api/v1/auth/login", json={**login, "password": user.password}), 401)
    ok = client.post("/api/v1/auth/login", json={**login, "password": new})
    assert ok.status_code == 200


def test_set_grids_changes_the_scope(client, make_user, login, street_admin):
    worker = make_user()
    before = login(worker)
    response = client.put(
        f"{USERS}/{worker.id}/grids", json={"grids": [GRID_2]}, headers=street_admin.headers
    )
    assert response.status_code == 200 and response.get_json()["grids"] == [GRID_2]
    me = client.get("/api/v1/me", headers=before.headers).get_json()
    assert me["scope"]["prefixes"] == [GRID_2]
    assert me["scope"]["token"] != before.body["scope"]["token"]


def test_objects_outside_scope_are_404(client, make_user, login, street_admin):
    outsider = make_user("grid_worker", unit=OTHER_COMMUNITY, grids=[OTHER_GRID])
    device = login(outsider).device_id
    headers = street_admin.headers
    assert_error(
        client.post(
            f"{USERS}/{outsider.id}/password", json={"password": "x" * 10}, headers=headers
        ),
        404,
    )
    assert_error(
        client.put(f"{USERS}/{outsider.id}/grids", json={"grids": []}, headers=headers), 404
    )
    assert_error(client.post(f"/api/v1/admin/devices/{device}/revoke", headers=headers), 404)
    assert_error(
        client.post(f"{USERS}/999999/password", json={"password": "x" * 10}, headers=headers), 404
    )
    listed = client.get("/api/v1/admin/devices", headers=headers).get_json()
    assert device not in {d["id"] for d in listed}


def test_device_revoke_is_listed_and_effective(client, make_user, login, street_admin):
    worker = login(make_user())
    headers = street_admin.headers
    listed = {d["id"]: d for d in client.get("/api/v1/admin/devices", headers=headers).get_json()}
    assert listed[worker.device_id]["revoked_at"] is None
    response = client.post(f"/api/v1/admin/devices/{worker.device_id}/revoke", headers=headers)
    assert response.status_code == 200 and response.get_json()["revoked_at"]
    assert_error(client.get("/api/v1/me", headers=worker.headers), 401, "device_revoked")
    # Its refresh tokens died with it, but the refresh names the cause, so that a client whose
    # access token had expired learns the device was revoked (and keeps its outbox).
    refresh = {"refresh_token": worker.refresh_token}
    assert_error(client.post("/api/v1/auth/refresh", json=refresh), 401, "device_revoked")
