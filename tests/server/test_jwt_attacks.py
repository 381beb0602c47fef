"""Tokens that must be refused (RFC 8725): each case answers 401 in the error shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.server.conftest import assert_error

ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, claims: dict, key: bytes | None, digest=hashlib.sha256) -> str:
    """A JWT built by hand, so any header (alg none, RS256 ...) can be tried."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _me(client, token: str):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def session(make_user, login):
    return login(make_user())


def test_genuine_token_is_accepted(client, session):
    assert _me(client, session.access_token).status_code == 200


def test_alg_none_is_refused(client, session):
    token = _forge({"alg": "none", "typ": "JWT"}, _claims_of(session.access_token), None)
    assert_error(_me(client, token), 401, "invalid_token")


@pytest.mark.parametrize("alg", ["RS256", "HS512", "ES256"])
def test_other_algorithms_are_refused(client, session, alg):
    """HS/RS confusion: an RS256 header with an HMAC made with a key the attacker knows (or
    even with our secret) is refused because the algorithm is pinned to HS256."""
    claims = _claims_of(session.access_token)
    for key in (TEST_SECRET.encode(), b"-----BEGIN PUBLIC KEY-----\nMIIB..."):
        token = _forge({"alg": alg, "typ": "JWT"}, claims, key)
        assert_error(_me(client, token), 401, "invalid_token")


def test_hs512_signed_with_the_real_secret_is_refused(client, session):
    token = _forge(
        {"alg": "HS512", "typ": "JWT"},
        _claims_of(session.access_token),
        TEST_SECRET.encode(),
        hashlib.sha512,
    )
    assert_error(_me(client, token), 401, "invalid_token")


def _resign(token: str, **changes) -> str:
    claims = {**_claims_of(token), **changes}
    claims = {key: value for key, value in claims.items() if value is not None}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def test_expired_token_is_refused(client, session):
    past = int(time.time()) - 3600
    token = _resign(session.access_token, iat=past - 900, exp=past)
    assert_error(_me(client, token), 401, "token_expired")


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"exp": None},
        {"iat": None},
        {"did": None},
        {"jti": None},
        {"sub": "999999"},
        {"did": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=["aud", "iss", "no-exp", "no-iat", "no-did", "no-jti", "other-sub", "other-device"],
)
def test_wrong_or_missing_claims_are_refused(client, session, changes):
    assert_error(_me(client, _resign(session.access_token, **changes)), 401, "invalid_token")


def test_tampered_payload_is_refused(client, session, make_user):
    header, _, signature = session.access_token.split(".")
    claims = {**_claims_of(session.access_token), "sub": str(make_user().id)}
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert_error(_me(client, tampered), 401, "invalid_token")


def test_token_signed_with_another_secret_is_refused(client, session):
    token = jwt.encode(_claims_of(session.access_token), "x" * 48, algorithm="HS256")
    assert_error(_me(client, token), 401, "invalid_token")


def test_refresh_token_is_not_an_access_token(client, session):
    assert_error(_me(client, session.refresh_token), 401, "invalid_token")


def test_access_token_is_not_a_refresh_token(client, session):
    response = client.post(REFRESH, json={"refresh_token": session.access_token})
    assert_error(response, 401, "invalid_token")


def test_garbage_and_malformed_headers_are_refused(client):
    for header in ["Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c"]:
        response = client.get(ME, headers={"Authorization": header})
        assert_error(response, 401)


def test_revoked_device_is_refused_on_its_next_request(client, make_user, login, session):
    admin = login(make_user("street_admin"))
    revoke = client.post(f"/api/v1/admin/devices/{session.device_id}/revoke", headers=admin.headers)
    assert revoke.status_code == 200
    assert_error(_me(client, session.access_token), 401, "device_revoked")
    response = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert_error(response, 401)


def test_reused_refresh_token_revokes_the_family(client, session):
    first = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert first.status_code == 200
    newer = first.get_json()["refresh_token"]
    second = client.post(REFRESH, json={"refresh_token": newer})  # the new pair is in use
    assert second.status_code == 200
    newest = second.get_json()["refresh_token"]
    reuse = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert_error(reuse, 401, "token_reused")
    assert_error(client.post(REFRESH, json={"refresh_token": newest}), 401, "token_revoked")


def test_reuse_after_the_grace_window_revokes_the_family(app, client, session):
    app.config["REFRESH_REUSE_GRACE_S"] = 0
    first = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    newer = first.get_json()["refresh_token"]
    reuse = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert_error(reuse, 401, "token_reused")
    assert_error(client.post(REFRESH, json={"refresh_token": newer}), 401, "token_revoked")


def test_a_refresh_whose_response_was_lost_can_be_retried(client, session):
    lost = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert lost.status_code == 200  # ... but the device never received this pair
    retry = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert retry.status_code == 200, retry.get_json()
    fresh = retry.get_json()["refresh_token"]
    assert client.post(REFRESH, json={"refresh_token": fresh}).status_code == 200


def test_a_duplicated_refresh_leaves_either_answer_usable(client, session):
    first = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    second = client.post(REFRESH, json={"refresh_token": session.refresh_token})
    assert first.status_code == second.status_code == 200
    # the device may have received either answer: both name the same refresh token (jti)
    jtis = {
        jwt.decode(r.get_json()["refresh_token"], options={"verify_signature": False})["jti"]
        for r in (first, second)
    }
    assert len(jtis) == 1
    kept = second.get_json()["refresh_token"]
    assert client.post(REFRESH, json={"refresh_token": kept}).status_code == 200


def test_unknown_refresh_jti_is_refused(client, session):
    token = _resign(session.refresh_token, jti="00000000-0000-0000-0000-000000000000")
    assert_error(client.post(REFRESH, json={"refresh_token": token}), 401, "invalid_token")
