"""Faults: lost requests and answers, duplicates, timeouts, 5xx mid-sync — nothing lost or
duplicated; and no lower-level exception (httpx, sqlite3, json, KeyError...) ever escapes."""

from __future__ import annotations

import contextlib
import gzip
import json
import random

import httpx
import pytest

from client_sdk import Client, ClientError, HTTPTransport, NetworkError, Response, SyncTimeout

from .conftest import GRID_1


class FaultyNetwork:
    """Wraps a transport; on sync requests, injects a fault chosen by a seeded RNG."""

    FAULTS = ("lose_request", "lose_response", "duplicate", "timeout", "500_before", "500_after")

    def __init__(self, inner, rng: random.Random, rate: float) -> None:
        self.inner, self.rng, self.rate = inner, rng, rate
        self.injected: dict[str, int] = dict.fromkeys(self.FAULTS, 0)
        self.on = True

    def handle(self, request):
        if not self.on or "/sync/" not in request.path or self.rng.random() > self.rate:
            return self.inner.handle(request)
        fault = self.rng.choice(self.FAULTS)
        self.injected[fault] += 1
        if fault == "lose_request":
            raise NetworkError("connection reset before the server saw it")
        if fault == "500_before":
            return Response(502, b"<html>bad gateway</html>")
        self.inner.handle(request)  # the server commits; the answer is lost or replaced
        if fault == "lose_response":
            raise NetworkError("connection reset after the server committed")
        if fault == "timeout":
            raise SyncTimeout("read timeout after the server committed")
        if fault == "500_after":
            return Response(500, b'{"code":"internal","message":"proxy died","details":{}}')
        return self.inner.handle(request)  # duplicate: the second answer wins

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faults_lose_nothing_and_duplicate_nothing(make_user, make_device, seed):
    rng = random.Random(seed)
    networks = []

    def faulty(inner):
        networks.append(FaultyNetwork(inner, rng, rate=0.4))
        return networks[-1]

    devices = [
        make_device(
            make_user(grids=[GRID_1]), f"w{n}", transport=faulty, max_attempts=2, page_size=7
        )
        for n in range(3)
    ]
    expected_notes: dict[str, int] = {}
    for round_ in range(5):
        for device in devices:
            for n in range(6):
                visit = device.record_visit(grid_code=GRID_1, findings=f"{round_}-{n}")
                device.add_note(visit["id"], "first")
                expected_notes[visit["id"]] = 1
            for view in rng.sample(device.visits(), min(3, len(device.visits()))):
                device.add_note(view["id"], f"more {round_}")
                expected_notes[view["id"]] += 1
            with contextlib.suppress(ClientError):  # failed after retries: the next resumes
                device.sync()
    for network in networks:
        network.on = False
    for _ in range(2):
        for device in devices:
            device.sync()
    assert sum(sum(n.injected.values()) for n in networks) > 20
    for device in devices:
        assert device.pending_count() == 0 and device.rejected() == []
        assert device.store.count("acked") == 0
        views = {v["id"]: v for v in device.visits()}
        notes = {rid: len(v["collections"]["notes"]) for rid, v in views.items()}
        assert notes == expected_notes
    first = sorted((v["id"], v["version"], v["fields"]["findings"]) for v in devices[0].visits())
    assert len(first) == len(expected_notes)
    for device in devices[1:]:
        assert (
            sorted((v["id"], v["version"], v["fields"]["findings"]) for v in device.visits())
            == first
        )


# --- no leak ----------------------------------------------------------------------------------

GOOD_HANDSHAKE = {
    "protocol_version": 1,
    "schema_version": 1,
    "server_time_ms": 1_780_000_000_000,
    "clock_skew_ms": 0,
    "max_clock_drift_ms": 300_000,
    "max_batch": 500,
    "max_page": 2000,
    "scope": {"prefixes": [GRID_1], "token": "t"},
}


def _json(data, status=200, **headers):
    return httpx.Response(status, content=json.dumps(data).encode(), headers=headers)


def _raise(exc):
    def handler(request):
        raise exc

    return handler


BROKEN = {
    "connect_error": _raise(httpx.ConnectError("refused")),
    "read_timeout": _raise(httpx.ReadTimeout("slow")),
    "remote_protocol": _raise(httpx.RemoteProtocolError("garbage")),
    "os_error": _raise(OSError("network unreachable")),
    "not_json": lambda r: httpx.Response(200, content=b"<html>captive portal</html>"),
    "bad_utf8": lambda r: httpx.Response(200, content=b"\xff\xfe\x00"),
    "bad_gzip": lambda r: httpx.Response(
        200, content=b"not gzip", headers={"Content-Encoding": "gzip"}
    ),
    "json_list": lambda r: _json([1, 2, 3]),
    "json_null": lambda r: _json(None),
    "wrong_shape": lambda r: _json({"protocol_version": "one"}),
    "html_500": lambda r: httpx.Response(500, content=b"<h1>oops</h1>"),
    "html_401": lambda r: httpx.Response(401, content=b"<h1>who?</h1>"),
    "error_not_object": lambda r: _json(["code"], status=400),
    "error_details_list": lambda r: _json({"code": 1, "message": None, "details": []}, 422),
    "push_wrong_count": lambda r: (
        _json(GOOD_HANDSHAKE)
        if r.url.path.endswith("handshake")
        else _json({"results": [], "server_time_ms": 1})
    ),
    "push_bad_result": lambda r: (
        _json(GOOD_HANDSHAKE)
        if r.url.path.endswith("handshake")
        else _json({"results": [{"status": "exploded"}], "server_time_ms": 1})
    ),
    "pull_bad_change": lambda r: (
        _json(GOOD_HANDSHAKE)
        if r.url.path.endswith("handshake")
        else _json(
            {
                "changes": [{"id": "x"}],
                "cursor": 1,
                "has_more": False,
                "scope": GOOD_HANDSHAKE["scope"],
            }
        )
    ),
    "pull_gzip_truncated": lambda r: (
        _json(GOOD_HANDSHAKE)
        if r.url.path.endswith("handshake")
        else httpx.Response(
            200, content=gzip.compress(b'{"changes": []')[:-5], headers={"Content-Encoding": "gzip"}
        )
    ),
}


@pytest.mark.parametrize("mode", sorted(BROKEN))
def test_no_lower_level_exception_leaks(tmp_path, mode):
    transport = HTTPTransport(
        "http://linli.test", timeout=1.0, http_transport=httpx.MockTransport(BROKEN[mode])
    )
    with Client(
        db_path=tmp_path / "d.sqlite3", transport=transport, sleep=lambda s: None, max_attempts=2
    ) as device:
        with pytest.raises(ClientError):
            device.login("worker", "password")
        device.store.set(
            tokens={"access": "a", "refresh": "r"},
            user={"username": "worker", "role": "grid_worker"},
        )
        device.create_household(grid_code=GRID_1, address="a")
        if mode == "pull_bad_change":
            device.store.db.execute("DELETE FROM outbox")  # reach the pull phase
        with pytest.raises(ClientError):
            device.sync()
        with pytest.raises(ClientError):
            device.api.refresh()
