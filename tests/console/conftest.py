"""Console test helpers: sign in through the login form, read CSRF tokens from pages, and a
small world of records synced from real (API) devices in two communities."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.server.devices import ApiDevice

OTHER_COMMUNITY = "990101001002"
OTHER_GRID = "990101001002001"
GRID_1 = "990101001001001"
GRID_2 = "990101001001002"
ID_NUMBER = "990101198001010014"  # region 99 exists nowhere; valid check digit
PHONE = "13812345678"
XSS = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SESSION_COOKIE_SECURE": False}


def csrf_of(response: TestResponse) -> str:
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


class Console:
    """A signed-in console user on a test client; ``post`` adds the session's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def sign_in(self, user: Any) -> TestResponse:
        page = self.client.get("/console/login")
        response = self.client.post(
            "/console/login",
            data={
                "username": user.username,
                "password": user.password,
                "csrf_token": csrf_of(page),
            },
        )
        if response.status_code == 303:
            self.token = csrf_of(self.client.get("/console/login"))
        return response

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> TestResponse:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)


@pytest.fixture
def console(app: Flask, make_user: Callable[..., Any]) -> Callable[..., Console]:
    def make(user: Any) -> Console:
        c = Console(app.test_client())
        assert c.sign_in(user).status_code == 303
        return c

    return make


@dataclass
class World:
    head: Any
    worker: Any
    worker2: Any
    other_head: Any
    other_worker: Any
    street: Any
    district: Any
    dev: ApiDevice
    dev2: ApiDevice
    other_dev: ApiDevice
    visit: str
    resident: str
    conflict: str
    dispute: str
    other: str


def _sync(device: ApiDevice) -> None:
    device.sync()
    assert all(r["status"] != "rejected" for r in device.last_results), device.last_results


@pytest.fixture
def world(app: Flask, make_user: Callable[..., Any], login: Callable[..., Any]) -> World:
    """Records made on tablets and pushed through the sync API, as in the field."""
    head = make_user("community_head")
    worker = make_user("grid_worker", grids=[GRID_1, GRID_2])
    worker2 = make_user("grid_worker", grids=[GRID_1])
    other_head = make_user("community_head", unit=OTHER_COMMUNITY)
    other_worker = make_user("grid_worker", unit=OTHER_COMMUNITY, grids=[OTHER_GRID])
    street = make_user("street_admin")
    district = make_user("district_admin")
    client = app.test_client()
    dev = ApiDevice(client, login(worker, device_name="平板一"))
    dev2 = ApiDevice(client, login(worker2, device_name="平板二"))
    other_dev = ApiDevice(client, login(other_worker, device_name="外社区平板"))

    visit = dev.create(
        "visit", findings="独居老人，需要送餐", resident_name="王秀英", resident_phone=PHONE
    )
    dev.note(visit, XSS)
    resident = dev.create(
        "resident",
        name="李建国",
        id_number=ID_NUMBER,
        phone=PHONE,
        tags=["elderly_alone", "low_income"],
    )
    conflict = dev.create("household", address="3号楼2单元502", head_name="赵大")
    dispute = dev.create("dispute", title="楼上漏水", category="0203", risk_grade="medium")
    _sync(dev)
    dev2.pull()
    dev.update(conflict, "household", head_name="赵大军")
    dev2.update(conflict, "household", head_name="赵达")
    _sync(dev)
    _sync(dev2)
    other = other_dev.create("dispute", grid_code=OTHER_GRID, title="外社区纠纷", category="0202")
    _sync(other_dev)
    return World(
        head,
        worker,
        worker2,
        other_head,
        other_worker,
        street,
        district,
        dev,
        dev2,
        other_dev,
        visit,
        resident,
        conflict,
        dispute,
        other,
    )
