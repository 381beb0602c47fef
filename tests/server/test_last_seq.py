"""``last_seq`` in the login and handshake answers (protocol §3): the highest operation number
the server holds for the device id, so that a store set up again under a used id numbers its
operations above it. Both are reads: on SQLite they never wait for the write lock."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from tests.conftest import GRID_1
from tests.server.devices import ApiDevice


def _handshake(device: ApiDevice) -> Any:
    return device.post(
        "handshake",
        {
            "device_id": device.device_id,
            "device_time_ms": int(time.time() * 1000),  # no skew to record: nothing written
            "protocol_versions": [1, 2, 3],
            "schema_version": 1,
        },
    )


def test_login_and_handshake_tell_the_highest_number_held(any_app, client, make_user, login):
    user = make_user("grid_worker", grids=[GRID_1])
    first = login(user)
    assert first.body["last_seq"] == 0
    device = ApiDevice(client, first)
    assert _handshake(device).get_json()["last_seq"] == 0
    for n in range(3):
        device.create("visit", findings=f"第{n}户")
    device.push()
    assert _handshake(device).get_json()["last_seq"] == 3
    assert login(user, device_id=device.device_id).body["last_seq"] == 3  # enrolled again
    other = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    assert _handshake(other).get_json()["last_seq"] == 0  # numbers are per device id


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SQLITE_BUSY_TIMEOUT_MS": 200}  # a request that waited for the lock would be 503


def test_the_handshake_does_not_wait_for_the_write_lock(app, client, make_user, login, tmp_path):
    device = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    device.create("visit", findings="已传")
    device.push()
    assert _handshake(device).status_code == 200  # its clock skew recorded
    holder = sqlite3.connect(tmp_path / "linli.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a push of another device holds the write lock
    try:
        shake = _handshake(device)
        assert shake.status_code == 200 and shake.get_json()["last_seq"] == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_handshake_that_records_the_skew_takes_the_write_lock_once(
    app, client, make_user, login, monkeypatch
):
    """Recording the clock skew is the handshake's only write: ``last_seq`` is read after it
    without taking the lock again (the device row, expired by that commit, is not reloaded)."""
    from server import db as server_db

    device = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    assert _handshake(device).status_code == 200  # its first skew and sighting recorded
    taken: list[int] = []
    real = server_db.begin_immediate
    monkeypatch.setattr(
        server_db, "begin_immediate", lambda *args: (taken.append(1), real(*args))[1]
    )
    answer = device.post(
        "handshake",
        {
            "device_id": device.device_id,
            "device_time_ms": int(time.time() * 1000) + 60_000,  # a minute ahead: recorded
            "protocol_versions": [1, 2, 3],
            "schema_version": 1,
        },
    )
    assert answer.status_code == 200 and answer.get_json()["clock_skew_ms"] > 50_000
    assert len(taken) == 1
