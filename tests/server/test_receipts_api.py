"""The handshake's ``last_seq`` and ``POST /sync/receipts`` (protocol §3): what a device learns
about the operations the server holds under its device id, so that a store set up again
under a used id can tell a replay of its own operation from another store's under the same
key. Both are reads: on SQLite they never wait for the write lock."""

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


@pytest.fixture
def worker(any_app, client, make_user, login) -> ApiDevice:
    return ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))


def test_the_server_tells_the_numbers_and_digests_it_holds(worker):
    assert _handshake(worker).get_json()["last_seq"] == 0
    ops = [worker.create("visit", findings=f"第{n}户") for n in range(3)]
    worker.push()
    sent = {o.seq: o for o in worker.acked}
    assert sorted(sent) == [1, 2, 3] and len(ops) == 3
    assert _handshake(worker).get_json()["last_seq"] == 3

    answer = worker.post("receipts", {"device_id": worker.device_id, "seqs": [3, 1, 99, 2, 1]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "receipts": [
            {"seq": seq, "digest": sent[seq].digest(), "hlc": sent[seq].hlc} for seq in (1, 2, 3)
        ]
    }


def test_a_device_asks_only_about_its_own_numbers(any_app, client, make_user, login, worker):
    other = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    worker.create("visit", findings="本机")
    worker.push()
    asked = other.post("receipts", {"device_id": worker.device_id, "seqs": [1]})
    assert asked.status_code == 403 and asked.get_json()["code"] == "device_mismatch"
    mine = other.post("receipts", {"device_id": other.device_id, "seqs": [1]})
    assert mine.get_json() == {"receipts": []}


@pytest.mark.parametrize(
    "body",
    [
        {"seqs": [1]},
        {"seqs": "1"},
        {"seqs": [0]},
        {"seqs": [-3]},
        {"seqs": ["1"]},
        {"seqs": [1.5]},
        {"seqs": [2**63]},
        {"seqs": list(range(1, 502))},
        {"seqs": [1], "digest": "x"},
    ],
)
def test_bad_receipt_questions_get_a_clear_422(worker, body):
    if "seqs" in body and body != {"seqs": [1]}:
        body = {"device_id": worker.device_id, **body}
    answer = worker.post("receipts", body)
    assert answer.status_code == 422, answer.get_json()
    assert set(answer.get_json()) == {"code", "message", "details"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SQLITE_BUSY_TIMEOUT_MS": 200}  # a request that waited for the lock would be 503


def test_the_handshake_and_receipts_do_not_wait_for_the_write_lock(
    app, client, make_user, login, tmp_path
):
    device = ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))
    device.create("visit", findings="已传")
    device.push()
    assert _handshake(device).status_code == 200  # its clock skew recorded
    holder = sqlite3.connect(tmp_path / "linli.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a push of another device holds the write lock
    try:
        shake = _handshake(device)
        assert shake.status_code == 200 and shake.get_json()["last_seq"] == 1
        asked = device.post("receipts", {"device_id": device.device_id, "seqs": [1]})
        assert asked.status_code == 200 and len(asked.get_json()["receipts"]) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
