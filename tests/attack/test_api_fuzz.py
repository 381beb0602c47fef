"""Schemathesis against the OpenAPI document, in process, as every role and as nobody.

One seeded app per database serves the module: users of the four roles, a worker device that
pushed records of every type (one of them in conflict), a spare device an admin may revoke. Each
documented operation gets generated requests — valid ones and ones that break the document
(schemathesis' positive and negative modes) — each sent with a credential drawn from: a bearer
token of each role, no token, a forged token.

Every answer must be a non-5xx that matches the document (status, content type, body schema);
every 4xx is the one error shape {code, message, details}; a protected operation called without a
valid token answers 401 (a request with an invalid body may be refused with 4xx first: the body is
checked before the token, see docs/security.md). Record, user and device ids in paths, and the
device id in sync bodies, point at seeded objects half the time, so requests reach real rows.

schemathesis' pytest loader (``from_fixture``) does not run on pytest 9, so the operations are
driven here with ``operation.as_strategy`` under plain hypothesis.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from server.extensions import db
from server.models import AdminUnit, User, UserGrid, level_of, parent_code_of
from server.passwords import hash_password
from tests.conftest import COMMUNITY, DEFAULT_PASSWORD, GRID_1, GRID_2, _pg_database, build_app
from tests.server.conftest import assert_error
from tests.server.devices import ApiDevice
from tests.server.test_jwt_attacks import _claims_of, _forge

ROLES = ("grid_worker", "community_head", "street_admin", "district_admin")
HOMES = {
    "grid_worker": COMMUNITY,
    "community_head": COMMUNITY,
    "street_admin": COMMUNITY[:9],
    "district_admin": COMMUNITY[:6],
}
BAD_CREDENTIALS = ("no_token", "alg_none", "wrong_key", "refresh_as_access", "garbage")
EXAMPLES = {"sqlite": 40, "postgres": 15}  # per operation
PUBLIC = {"/api/v1/auth/login", "/api/v1/auth/refresh"}
OPERATIONS = (
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users/{user_id}/password"),
    ("PUT", "/api/v1/admin/users/{user_id}/grids"),
    ("GET", "/api/v1/admin/devices"),
    ("POST", "/api/v1/admin/devices/{device_id}/revoke"),
    ("POST", "/api/v1/sync/handshake"),
    ("POST", "/api/v1/sync/push"),
    ("POST", "/api/v1/sync/pull"),
    ("GET", "/api/v1/records/{record_id}"),
    ("POST", "/api/v1/records/{record_id}/review"),
    ("POST", "/api/v1/records/{record_id}/resolve"),
    ("POST", "/api/v1/records/{record_id}/move"),
    ("POST", "/api/v1/records/{record_id}/case"),
)
IDS = [f"{method} {path}" for method, path in OPERATIONS]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# --- the seeded world -------------------------------------------------------------------------


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    """None (SQLite in the app's folder) or a fresh PostgreSQL database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    with _pg_database("linli_fuzz") as url:
        yield url


def _add_unit(code: str) -> None:
    chain = [code]
    while (parent := parent_code_of(chain[-1])) is not None:
        chain.append(parent)
    for unit_code in reversed(chain):
        if db.session.get(AdminUnit, unit_code) is None:
            db.session.add(
                AdminUnit(
                    code=unit_code,
                    name=f"Unit {unit_code}",
                    level=level_of(unit_code).value,
                    parent_code=parent_code_of(unit_code),
                )
            )
            db.session.flush()


class _Login:
    def __init__(self, body: dict[str, Any], device_id: str) -> None:
        self.access_token, self.refresh_token = body["access_token"], body["refresh_token"]
        self.device_id = device_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def _login(app: Flask, username: str) -> _Login:
    device_id = str(uuid.uuid4())
    response = app.test_client().post(
        "/api/v1/auth/login",
        json={"username": username, "password": DEFAULT_PASSWORD, "device_id": device_id},
    )
    assert response.status_code == 200, response.get_json()
    return _Login(response.get_json(), device_id)


def _bad_headers(session: _Login) -> dict[str, dict[str, str]]:
    claims = _claims_of(session.access_token)
    tokens = {
        "alg_none": _forge({"alg": "none", "typ": "JWT"}, claims, None),
        "wrong_key": _forge({"alg": "HS256", "typ": "JWT"}, claims, b"not-the-server-secret"),
        "refresh_as_access": session.refresh_token,
        "garbage": "a.b.c",
    }
    return {"no_token": {}, **{k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}}


@pytest.fixture(scope="module", params=list(EXAMPLES))
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with _database(request.param) as url:
        app = build_app(tmp_path_factory.mktemp("api_fuzz"), url)
        with app.app_context():
            for code in (GRID_1, GRID_2):
                _add_unit(code)
            user_ids = []
            for role in ROLES:
                user = User(
                    username=f"fuzz_{role}",
                    display_name=role.title(),
                    role=role,
                    unit_code=HOMES[role],
                    password_hash=hash_password(DEFAULT_PASSWORD),
                    grids=[UserGrid(grid_code=GRID_1)] if role == "grid_worker" else [],
                )
                db.session.add(user)
                db.session.flush()
                user_ids.append(user.id)
            db.session.commit()
        sessions = {role: _login(app, f"fuzz_{role}") for role in ROLES}
        worker = ApiDevice(app.test_client(), sessions["grid_worker"])
        records = [
            worker.create("visit", findings="<script>alert(1)</script>"),
            worker.create("household", phone="13800138000"),
            worker.create("resident", id_number="990101199001011237", phone="13912345678"),
            worker.create("dispute"),
        ]
        worker.push()
        worker.pull()
        twin = ApiDevice(app.test_client(), _login(app, "fuzz_grid_worker"))
        twin.pull()
        worker.update(records[0], findings="seen by the worker")
        twin.update(records[0], findings="seen by the twin")  # a conflict to resolve
        worker.push()
        twin.push()
        spare = _login(app, "fuzz_grid_worker")  # a device the fuzzer may revoke
        yield {
            "examples": EXAMPLES[request.param],
            "schema": schemathesis.openapi.from_wsgi("/api/openapi.json", app),
            "sessions": sessions,
            "bad_headers": _bad_headers(sessions["grid_worker"]),
            "path_values": {
                "record_id": records,
                "user_id": user_ids,
                "device_id": [spare.device_id, str(uuid.uuid4())],
            },
        }
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


# --- checks -----------------------------------------------------------------------------------


def _error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is the one error shape."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["details"], dict), body
    return True


def _send(case: Any, world: Any, credential: str) -> tuple[Any, dict[str, str]]:
    """Call the app as ``credential``; the response is checked against the document."""
    headers = _headers(world, credential)
    if credential == "no_token" and case.headers:
        case.headers.pop("Authorization", None)  # schemathesis fills one in from the scheme
    response = case.call(headers=headers)
    case.validate_response(
        response, checks=CHECKS, additional_checks=[_error_shape], headers=headers
    )
    return response, headers


def _headers(world: Any, credential: str) -> dict[str, str]:
    session = world["sessions"].get(credential)
    base = session.headers if session else world["bad_headers"][credential]
    # The sync routes gzip their answer when asked; the WSGI transport would not inflate it.
    return {**base, "Accept-Encoding": "identity"}


def _aim(case: Any, data: st.DataObject, world: Any, credential: str) -> None:
    """Point path ids and the body's device id at seeded objects, half the time."""
    for name, values in world["path_values"].items():
        if name in (case.path_parameters or {}) and data.draw(st.booleans()):
            case.path_parameters[name] = data.draw(st.sampled_from(values))
    session = world["sessions"].get(credential)
    has_device = session and isinstance(case.body, dict) and "device_id" in case.body
    if has_device and data.draw(st.booleans()):
        case.body["device_id"] = session.device_id


# --- tests ------------------------------------------------------------------------------------


def test_every_documented_operation_is_fuzzed(world):
    documented = {
        (method.upper(), path)
        for path, item in world["schema"].raw_schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_operation_conforms_for_every_role(world, method, path):
    operation = world["schema"][path][method]
    strategies = {mode: operation.as_strategy(generation_mode=mode) for mode in GenerationMode}
    credentials = st.sampled_from([*ROLES, *BAD_CREDENTIALS])

    @_fuzz(world["examples"])
    @given(data=st.data(), mode=st.sampled_from(list(GenerationMode)), credential=credentials)
    def run(data: st.DataObject, mode: GenerationMode, credential: str) -> None:
        case = data.draw(strategies[mode])
        if mode is GenerationMode.POSITIVE:  # a negative case keeps the part it broke
            _aim(case, data, world, credential)
        response, _ = _send(case, world, credential)
        if credential in BAD_CREDENTIALS and path not in PUBLIC:
            if mode is GenerationMode.POSITIVE:
                assert response.status_code == 401, (credential, response.status_code)
            else:
                assert 400 <= response.status_code < 500, (credential, response.status_code)

    run()


@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_protected_operations_refuse_bad_credentials(world, credential):
    """Valid requests to every protected operation, with a missing or forged token: 401."""
    for method, path in OPERATIONS:
        if path in PUBLIC:
            continue
        operation = world["schema"][path][method]

        @_fuzz(3)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response, _ = _send(case, world, credential)
            body = response.json()
            assert response.status_code == 401, (case.method, case.path, body)
            assert body["code"] in {"missing_token", "invalid_token"}, body

        run()


# --- what the fuzzing found (fixed; kept as plain regression tests) ----------------------------


def test_handshake_from_a_clock_years_off_is_answered_on_both_databases(any_app, make_user, login):
    """The skew column is 32-bit: PostgreSQL answered 500 to a tablet set 4 years ahead."""
    session = login(make_user())
    client = any_app.test_client()
    for years in (4, -40):
        device_ms = 1_795_000_000_000 + years * 365 * 86_400_000
        body = {
            "device_id": session.device_id,
            "device_time_ms": device_ms,
            "protocol_versions": [1],
            "schema_version": 1,
        }
        response = client.post("/api/v1/sync/handshake", json=body, headers=session.headers)
        assert response.status_code == 200, response.get_json()
        assert abs(response.get_json()["clock_skew_ms"]) > 2**31
    body["device_time_ms"] = 10**30
    response = client.post("/api/v1/sync/handshake", json=body, headers=session.headers)
    assert_error(response, 422, "validation_failed")


def test_user_id_beyond_the_integer_column_is_404(client, make_user, login):
    session = login(make_user(role="street_admin"))
    for path in ("/password", "/grids"):
        method = client.post if path == "/password" else client.put
        body = {"password": "long enough pw"} if path == "/password" else {"grids": []}
        response = method(f"/api/v1/admin/users/{10**21}{path}", json=body, headers=session.headers)
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/sync/push"])
def test_json_nested_beyond_the_parser_is_400(client, make_user, login, path):
    headers = login(make_user()).headers
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(path, data=body, content_type="application/json", headers=headers)
    assert_error(response, 400, "malformed_json")


def test_lone_surrogates_are_refused_not_500(client, make_user, login):
    """JSON may spell "\\ud800"; no UTF-8 encoder or text column takes it (both were 500s).
    At login it is a 400; in a pushed field it is that one operation's rejection."""
    session = login(make_user())
    login_body = {"username": "a<S>", "password": "x", "device_id": session.device_id}
    op = {
        "device_id": session.device_id,
        "seq": 1,
        "kind": "create",
        "record_type": "household",
        "record_id": str(uuid.uuid4()),
        "base_version": 0,
        "hlc": "1700000000000:00000:d",
        "fields": {"grid_code": GRID_1, "address": "<S>"},
    }
    good = {
        **op,
        "seq": 2,
        "record_id": str(uuid.uuid4()),
        "fields": {"grid_code": GRID_1, "address": "1号楼"},
    }
    push_body = {"device_id": session.device_id, "operations": [op, good]}

    def send(path: str, body: Any) -> Any:
        text = json.dumps(body).replace("<S>", "\\udfff")  # JSON's spelling of a surrogate
        return client.post(
            path, data=text, content_type="application/json", headers=session.headers
        )

    assert_error(send("/api/v1/auth/login", login_body), 400, "invalid_text")
    response = send("/api/v1/sync/push", push_body)
    assert response.status_code == 200, response.get_json()
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses == ["rejected", "applied"]


def test_a_null_operation_is_rejected_in_place(client, make_user, login):
    session = login(make_user())
    body = {"device_id": session.device_id, "operations": [None]}
    response = client.post("/api/v1/sync/push", json=body, headers=session.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["results"][0]["status"] == "rejected"


def test_gzip_body_is_not_inflated_for_an_anonymous_caller(client):
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    response = client.post(
        "/api/v1/sync/push",
        data=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert_error(response, 401, "missing_token")


def test_nul_characters_are_not_a_500_on_either_database(any_app):
    """PostgreSQL text refuses NUL (was a 500 at login, found by the fuzzer); SQLite keeps it."""
    body = {"username": "a\u0000b", "password": "x", "device_id": str(uuid.uuid4())}
    response = any_app.test_client().post("/api/v1/auth/login", json=body)
    if any_app.config["DATABASE_URL"].startswith("postgresql"):
        assert_error(response, 400, "invalid_text")
    else:
        assert_error(response, 401, "invalid_credentials")
