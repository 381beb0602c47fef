"""Scope: which territory codes a user may see, in Python and as a SQL filter."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AdminUnit
from server.scope import Scope, _successor

CODES = [
    "990101",
    "990101001",
    "990101001001",
    "990101001001001",
    "990101001001002",
    "990101001009",
    "990101001009999",
    "990101001010",
    "990101001010001",
    "990101002",
    "990101002001",
    "990101002001001",
    "990109",
    "990109999",
    "990109999999",
    "990109999999999",
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("990101001", "990101002"), ("990101009", "990101010"), ("199999", "200000"), ("999", None)],
)
def test_successor(prefix, expected):
    assert _successor(prefix) == expected


@pytest.mark.parametrize(
    "prefixes",
    [
        ("990101001",),
        ("990101001009",),
        ("990101001001001", "990101001010001"),
        ("990101001001001",),
        ("990101001001001", "990101002"),
        ("990109999",),
        ("990101",),
        (),
    ],
)
def test_filter_matches_contains_on_every_database(any_app, make_unit, prefixes):
    for code in CODES:
        make_unit(code)
    scope = Scope(prefixes)
    with any_app.app_context():
        query = select(AdminUnit.code).where(scope.filter(AdminUnit.code))
        found = set(db.session.execute(query).scalars())
    assert found == {code for code in CODES if scope.contains(code)}
    assert found == {code for code in CODES if any(code.startswith(p) for p in prefixes)}


def test_filter_is_a_range_not_like():
    sql = str(Scope(("990101001",)).filter(AdminUnit.code).compile())
    assert "LIKE" not in sql.upper() and ">=" in sql and "<" in sql


def test_whole_grid_codes_are_matched_by_equality():
    """Planned well by PostgreSQL even before it has statistics (see Scope.filter)."""
    one = str(Scope(("990101001001001",)).filter(AdminUnit.code).compile())
    assert "=" in one and ">=" not in one and "<" not in one
    two = str(Scope(("990101001001001", "990101001001002")).filter(AdminUnit.code).compile())
    assert " IN " in two.upper() and ">=" not in two
    mixed = str(Scope(("990101001001001", "990102")).filter(AdminUnit.code).compile())
    assert " OR " in mixed.upper() and ">=" in mixed


def test_token_is_stable_and_order_free():
    assert Scope(("b", "a")).token == Scope(("a", "b")).token
    assert Scope(("a",)).token != Scope(("a", "b")).token


def test_scope_by_role(make_user, login):
    worker = login(make_user("grid_worker", grids=["990101001001002", "990101001001001"]))
    head = login(make_user("community_head"))
    street = login(make_user("street_admin"))
    district = login(make_user("district_admin"))
    assert worker.body["scope"]["prefixes"] == ["990101001001001", "990101001001002"]
    assert head.body["scope"]["prefixes"] == ["990101001001"]
    assert street.body["scope"]["prefixes"] == ["990101001"]
    assert district.body["scope"]["prefixes"] == ["990101"]


def test_grid_worker_without_grids_sees_nothing(make_user, login):
    session = login(make_user("grid_worker", grids=[]))
    assert session.body["scope"]["prefixes"] == []
    assert not Scope(()).contains("990101001001001")


def test_revoked_device_cannot_log_in_again(client, make_user, login, runner):
    user = make_user()
    session = login(user)
    assert runner.invoke(args=["devices", "revoke", session.device_id]).exit_code == 0
    response = client.post(
        "/api/v1/auth/login",
        json={"username": user.username, "password": user.password, "device_id": session.device_id},
    )
    assert response.status_code == 401
    assert response.get_json()["code"] == "device_revoked"
