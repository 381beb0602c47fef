"""Every failure answers in one JSON shape: {"code", "message", "details"}."""

from __future__ import annotations

import logging
import uuid

import pytest

from server.errors import Conflict
from tests.conftest import build_app
from tests.server.conftest import assert_error

LOGIN = "/api/v1/auth/login"


def test_malformed_json_is_400(client):
    response = client.post(LOGIN, data="{not json", content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize(
    "body",
    [
        {"username": 42, "password": "x", "device_id": str(uuid.uuid4())},
        {"username": "a", "password": "x", "device_id": "not-a-uuid"},
        {"username": "a", "password": ["x"], "device_id": str(uuid.uuid4())},
        {"username": "a"},
        [],
        "a string",
    ],
    ids=["int-username", "bad-uuid", "list-password", "missing-fields", "array", "string"],
)
def test_wrong_types_are_422(client, body):
    body = assert_error(client.post(LOGIN, json=body), 422, "validation_failed")
    assert body["details"]["errors"]


def test_unknown_fields_are_422(client):
    payload = {"username": "a", "password": "x", "device_id": str(uuid.uuid4()), "admin": True}
    body = assert_error(client.post(LOGIN, json=payload), 422, "validation_failed")
    assert body["details"]["errors"]["json"]["admin"] == ["Unknown field."]


def test_oversize_body_is_413(tmp_path):
    app = build_app(tmp_path, MAX_CONTENT_LENGTH=1024)
    response = app.test_client().post(
        LOGIN, data='{"username": "' + "a" * 4096 + '"}', content_type="application/json"
    )
    assert_error(response, 413, "payload_too_large")


def test_default_body_limit_is_16_mib(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024


def test_unknown_url_is_404(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    response = client.delete(LOGIN)
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_bad_token_is_401(client):
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "invalid_token")


def test_api_errors_keep_their_code_and_details(tmp_path):
    app = build_app(tmp_path)

    @app.get("/boom/conflict")
    def conflict():
        raise Conflict("Already there.", code="already_there", details={"id": 7})

    body = assert_error(app.test_client().get("/boom/conflict"), 409, "already_there")
    assert body == {"code": "already_there", "message": "Already there.", "details": {"id": 7}}


def test_unexpected_exception_is_500_and_logged(tmp_path, caplog):
    app = build_app(tmp_path)
    caplog.set_level(logging.ERROR, logger=app.logger.name)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    body = assert_error(app.test_client().get("/boom"), 500, "internal")
    assert "secret internals" not in body["message"]
    assert any("secret internals" in str(record.exc_info[1]) for record in caplog.records)
