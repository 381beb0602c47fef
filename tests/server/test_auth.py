"""Login, refresh, logout, /me, device binding and rate limits."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import jwt
import pytest

import server.tokens
from server.extensions import db
from server.models import Device, RefreshToken
from tests.conftest import COMMUNITY, GRID_1, GRID_2
from tests.server.conftest import assert_error

LOGIN = "/api/v1/auth/login"


def _login_body(user, device_id=None, password=None, **extra):
    return {
        "username": user.username,
        "password": password if password is not None else user.password,
        "device_id": device_id or str(uuid.uuid4()),
        "device_name": "tablet",
        **extra,
    }


def test_login_returns_tokens_user_and_scope(client, make_user):
    user = make_user("grid_worker", grids=[GRID_1, GRID_2])
    response = client.post(LOGIN, json=_login_body(user))
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    assert body["user"] == {
        "id": user.id,
        "username": user.username,
        "display_name": user.username.title(),
        "role": "grid_worker",
        "unit_code": COMMUNITY,
    }
    assert body["scope"]["prefixes"] == [GRID_1, GRID_2]
    assert len(body["scope"]["token"]) == 16


def test_login_registers_the_device_once(app, client, make_user):
    user = make_user()
    device_id = str(uuid.uuid4())
    for _ in range(2):
        assert client.post(LOGIN, json=_login_body(user, device_id)).status_code == 200
    with app.app_context():
        device = db.session.get(Device, device_id)
        assert device.user_id == user.id and device.name == "tablet"
        assert db.session.query(Device).count() == 1


def test_a_device_of_another_user_is_refused(client, make_user, login):
    first = login(make_user())
    other = make_user()
    response = client.post(LOGIN, json=_login_body(other, first.device_id))
    assert_error(response, 403, "device_taken")


def test_wrong_password_and_unknown_user_answer_the_same(client, make_user):
    user = make_user()
    wrong = client.post(LOGIN, json=_login_body(user, password="nope"))
    unknown = client.post(LOGIN, json={**_login_body(user), "username": "ghost"})
    assert assert_error(wrong, 401, "invalid_credentials") == assert_error(
        unknown, 401, "invalid_credentials"
    )


def test_inactive_user_cannot_log_in(client, make_user):
    user = make_user(active=False)
    assert_error(client.post(LOGIN, json=_login_body(user)), 401, "invalid_credentials")


def test_me_needs_a_bearer_token_not_a_cookie(client, make_user, login):
    session = login(make_user())
    assert_error(client.get("/api/v1/me"), 401, "missing_token")
    client.set_cookie("session", session.access_token)
    client.set_cookie("access_token", session.access_token)
    assert_error(client.get("/api/v1/me"), 401, "missing_token")
    response = client.get("/api/v1/me", headers=session.headers)
    assert response.status_code == 200
    assert response.get_json()["device_id"] == session.device_id


def test_refresh_rotates_and_keeps_the_family(app, client, make_user, login):
    session = login(make_user())
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert response.status_code == 200
    new = response.get_json()
    assert new["refresh_token"] != session.refresh_token
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    with app.app_context():
        rows = db.session.query(RefreshToken).order_by(RefreshToken.issued_at).all()
        assert len(rows) == 2 and rows[0].family_id == rows[1].family_id
        assert rows[0].rotated_at is not None and rows[1].rotated_at is None


def test_logout_revokes_the_devices_refresh_tokens(client, make_user, login):
    session = login(make_user())
    assert client.post("/api/v1/auth/logout", headers=session.headers).status_code == 204
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert_error(response, 401, "token_revoked")


@pytest.fixture
def app_config():
    return {"RATELIMIT_ACCOUNT_FAILURES": 3, "RATELIMIT_ADDRESS_FAILURES": 5}


def test_account_is_rate_limited_after_failures(client, make_user):
    user = make_user()
    for _ in range(3):
        assert_error(client.post(LOGIN, json=_login_body(user, password="bad")), 401)
    response = client.post(LOGIN, json=_login_body(user))  # even the right password
    body = assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    assert body["details"]["retry_after"] == retry_after


def test_success_clears_the_account_count(client, make_user):
    user = make_user()
    for _ in range(2):
        client.post(LOGIN, json=_login_body(user, password="bad"))
    assert client.post(LOGIN, json=_login_body(user)).status_code == 200
    for _ in range(2):
        client.post(LOGIN, json=_login_body(user, password="bad"))
    assert client.post(LOGIN, json=_login_body(user)).status_code == 200


def test_address_is_rate_limited_across_accounts(client, make_user):
    users = [make_user() for _ in range(3)]
    for user in users:
        for _ in range(2):
            client.post(LOGIN, json=_login_body(user, password="bad"))
    fresh = make_user()
    assert_error(client.post(LOGIN, json=_login_body(fresh)), 429, "rate_limited")
    other_address = client.post(
        LOGIN, json=_login_body(fresh), environ_overrides={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other_address.status_code == 200


def test_an_authentication_is_never_reused_by_a_later_request(app, client, make_user, login):
    """Requests made inside one outer app context share ``g``; the answer of one request's
    authentication must not carry over to the next (a revocation in between must count)."""
    from server import accounts

    session = login(make_user())
    with app.app_context():
        assert client.get("/api/v1/me", headers=session.headers).status_code == 200
        accounts.revoke_device("test", session.device_id)
        db.session.commit()
        response = client.get("/api/v1/me", headers=session.headers)
        assert_error(response, 401, "device_revoked")


def test_a_token_lives_at_least_the_seconds_the_client_is_told(app, client, make_user, monkeypatch):
    """``exp`` is whole seconds, rounded up: a token issued late in a second still lives its
    whole ``expires_in`` (rounded down, one issued at .999 with a TTL of 1 s is dead on
    arrival, and a refreshed request fails again)."""
    issued = datetime(2026, 11, 28, 12, 0, 0, 999_000, tzinfo=UTC)
    monkeypatch.setattr(server.tokens, "utcnow", lambda: issued)
    body = client.post(LOGIN, json=_login_body(make_user())).get_json()
    lives = {
        body["access_token"]: body["expires_in"],
        body["refresh_token"]: app.config["REFRESH_TOKEN_TTL_S"],
    }
    for token, seconds in lives.items():
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] == math.ceil(issued.timestamp() + seconds)
        assert claims["exp"] >= issued.timestamp() + seconds
