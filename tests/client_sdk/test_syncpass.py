"""The sync pass against the real app: clock correction, scope changes, checksum repair,
pagination and resume, the lock, protocol negotiation."""

from __future__ import annotations

import json

import pytest

from client_sdk import NetworkError, ProtocolError, Response, SyncInProgress
from client_sdk.syncpass import sync_lock
from sync import HLC

from .conftest import GRID_1, GRID_2, FakeClock

YEAR_MS = 365 * 24 * 3600 * 1000


def test_a_clock_far_ahead_is_corrected_and_ops_restamped(make_user, make_device):
    import time

    ahead = FakeClock(int(time.time() * 1000) + 4 * YEAR_MS)  # a tablet set to four years on
    device = make_device(make_user(grids=[GRID_1]), clock=ahead)
    visit = device.record_visit(grid_code=GRID_1, findings="a")
    stamped = HLC.parse(device.store.pending()[0].hlc).wall
    report = device.sync()
    assert report.restamped >= 1 and report.rejected == 0 and report.pushed == 1
    assert device.pending_count() == 0
    device.update(visit["id"], findings="b")
    [op] = device.store.pending()
    assert HLC.parse(op.hlc).wall < stamped - YEAR_MS  # new edits use server-corrected time
    assert device.sync().rejected == 0


def test_clock_ahead_result_is_resent_with_the_same_key(make_user, make_device, clock):
    import time

    device = make_device(make_user(grids=[GRID_1]))
    device.sync()
    # The clock was wrong when these were made, and fixed before the sync: the handshake sees
    # no skew, the server refuses the stamps as clock_ahead, the pass re-stamps and resends.
    device._now_ms = lambda: int(time.time() * 1000) + YEAR_MS
    device.record_visit(grid_code=GRID_1, findings="a")
    key = device.store.pending()[0].key
    device._now_ms = lambda: int(time.time() * 1000)
    report = device.sync()
    assert report.restamped == 1 and report.applied == 1 and report.rejected == 0
    assert device.store.count("acked") + device.pending_count() == 0
    assert key.endswith(":1")


def test_a_record_moved_out_of_scope_is_removed(app, login, make_user, make_device):
    from .test_journey import _console

    w1 = make_device(make_user(grids=[GRID_1]), "w1")
    w2 = make_device(make_user(grids=[GRID_2]), "w2")
    home = w1.create_household(grid_code=GRID_1, address="a")
    w1.sync()
    console = _console(app, login, make_user(role="community_head"))
    console(f"/records/{home['id']}/move", grid_code=GRID_2)
    report = w1.sync()
    assert report.removed == 1
    assert w1.households() == []
    w2.sync()
    assert [h["id"] for h in w2.households(GRID_2)] == [home["id"]]


def test_a_changed_scope_purges_and_repulls(app, login, make_user, make_device):
    worker = make_user(grids=[GRID_1, GRID_2])
    device = make_device(worker)
    device.create_household(grid_code=GRID_1, address="a")
    device.create_household(grid_code=GRID_2, address="b")
    device.sync()
    admin = app.test_client()
    headers = login(make_user(role="street_admin")).headers
    reply = admin.put(
        f"/api/v1/admin/users/{worker.id}/grids", json={"grids": [GRID_1]}, headers=headers
    )
    assert reply.status_code == 200, reply.get_json()
    report = device.sync()
    assert [h["fields"]["address"] for h in device.households()] == ["a"]
    assert report.checksum_ok is True
    assert device.store.get("scope")["prefixes"] == [GRID_1]


def test_a_checksum_mismatch_repairs_the_local_copy(make_user, make_device):
    w1 = make_device(make_user(grids=[GRID_1]), "w1")
    for n in range(5):
        w1.create_household(grid_code=GRID_1, address=f"{n}")
    w1.sync()
    w2 = make_device(make_user(grids=[GRID_1]), "w2")
    w2.sync()
    lost, stale, *_ = w2.households()
    with w2.store.tx() as conn:  # local damage: one record lost, one stale
        conn.execute("DELETE FROM records WHERE id = ?", [lost["id"]])
        conn.execute("UPDATE records SET version = 0 WHERE id = ?", [stale["id"]])
    report = w2.sync()
    assert report.resynced is True and report.checksum_ok is True
    assert {h["id"] for h in w2.households()} == {h["id"] for h in w1.households()}


def test_small_pages_and_an_interrupted_pull_resume(make_user, make_device):
    w1 = make_device(make_user(grids=[GRID_1]), "w1")
    for n in range(25):
        w1.create_household(grid_code=GRID_1, address=f"{n}")
    w1.sync()
    cursors: list[int] = []
    signal = {"lost": True}

    class SignalLostAfterTwoPages:
        def __init__(self, inner):
            self.inner = inner

        def handle(self, request):
            if request.path.endswith("/pull") and signal["lost"] and len(cursors) >= 2:
                raise NetworkError("signal lost")
            response = self.inner.handle(request)
            if request.path.endswith("/pull"):
                cursors.append(json.loads(response.content)["cursor"])
            return response

        def close(self):
            self.inner.close()

    w2 = make_device(
        make_user(grids=[GRID_1]),
        "w2",
        transport=SignalLostAfterTwoPages,
        page_size=10,
        max_attempts=1,
    )
    with pytest.raises(NetworkError):
        w2.sync()
    assert len(w2.households()) == 20 and w2.store.get("cursor") == cursors[-1]
    signal["lost"] = False
    report = w2.sync()
    assert report.pulled == 5 and len(w2.households()) == 25 and report.checksum_ok


def test_one_sync_at_a_time(make_user, make_device):
    device = make_device(make_user(grids=[GRID_1]))
    with sync_lock(device.store.path), pytest.raises(SyncInProgress):
        device.sync()
    device.sync()  # released


def test_an_incompatible_server_is_a_protocol_error(make_user, make_device):
    class Old:
        def __init__(self, inner):
            self.inner = inner

        def handle(self, request):
            if request.path.endswith("/handshake"):
                body = {
                    "code": "protocol_unsupported",
                    "message": "update the app",
                    "details": {"server": [2]},
                }
                return Response(426, json.dumps(body).encode())
            return self.inner.handle(request)

        def close(self):
            self.inner.close()

    device = make_device(make_user(grids=[GRID_1]), transport=Old)
    device.create_household(grid_code=GRID_1, address="a")
    with pytest.raises(ProtocolError) as err:
        device.sync()
    assert err.value.code == "protocol_unsupported"
    assert device.pending_count() == 1


def test_the_lock_holds_across_processes(make_user, make_device):
    import subprocess
    import sys
    from pathlib import Path

    device = make_device(make_user(grids=[GRID_1]))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom client_sdk.syncpass import sync_lock\n"
            "with sync_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(30)\n",
            device.store.path,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SyncInProgress):
            device.sync()
    finally:
        holder.kill()
        holder.communicate()
    device.sync()  # the dead process's lock is gone with it


def test_pages_are_as_large_as_the_server_allows_and_an_idle_sync_writes_nothing(
    make_user, make_device
):
    limits: list[int] = []

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def handle(self, request):
            if request.path.endswith("/pull"):
                limits.append(json.loads(request.content)["limit"])
            return self.inner.handle(request)

        def close(self):
            self.inner.close()

    writer = make_device(make_user(grids=[GRID_1]), "writer")
    with writer.batch():
        for n in range(3):
            writer.create_household(grid_code=GRID_1, address=f"{n}")
    writer.sync()
    device = make_device(make_user(grids=[GRID_1]), "reader", transport=Recording)
    assert device.sync().pulled == 3
    assert limits == [2000]  # the handshake's max_page (SYNC_MAX_PAGE), not 1000
    writes = device.store.db.conn.total_changes
    idle = device.sync()
    assert idle.pulled == 0 and idle.checksum_ok is True
    assert device.store.db.conn.total_changes == writes  # no cursor rewrite, no disk flush


def test_acks_in_one_batch_keep_what_a_pull_has_not_brought_back(make_user, make_device):
    device = make_device(make_user(grids=[GRID_1]))
    homes = [device.create_household(grid_code=GRID_1, address=f"{n}") for n in range(3)]
    device.sync()
    for home in homes:
        device.update(home["id"], address="new")
    device.add_note(homes[0]["id"], "复访")
    report = device.sync()
    assert report.pushed == 4 and device.pending_count() == 0
    assert device.store.count("acked") == 0  # the pull brought every one back
    assert [h["fields"]["address"] for h in device.households()] == ["new"] * 3
    assert [n["text"] for n in device.get(homes[0]["id"])["collections"]["notes"]] == ["复访"]


class _Paths:
    """A transport that remembers the last part of every request's path (and its headers)."""

    def __init__(self, inner):
        self.inner, self.paths, self.headers = inner, [], []

    def handle(self, request):
        self.paths.append(request.path.rsplit("/", 1)[-1])
        self.headers.append(dict(request.headers))
        return self.inner.handle(request)

    def close(self):
        self.inner.close()


def _watched(make_device, user, **options):
    made: list[_Paths] = []

    def wrap(inner):
        made.append(_Paths(inner))
        return made[0]

    device = make_device(user, transport=wrap, **options)
    made[0].paths.clear()  # the sign-in
    return device, made[0]


def test_a_recent_handshake_is_reused_and_renewed(make_user, make_device, monkeypatch):
    import time

    device, wire = _watched(make_device, make_user(grids=[GRID_1]))
    device.sync()
    assert wire.paths == ["handshake", "pull"]
    assert wire.headers[-1]["Linli-Protocol"] == "4" and wire.headers[-1]["Linli-Schema"] == "1"
    wire.paths.clear()
    report = device.sync()  # nothing to do: one request
    assert wire.paths == ["pull"] and report.requests == 1
    device.record_visit(grid_code=GRID_1, findings="a")
    wire.paths.clear()
    assert device.sync().applied == 1 and wire.paths == ["push"]  # the pull came with it
    # Five minutes later the answer is stale: the next pass shakes hands again.
    later = time.monotonic() + 301
    monkeypatch.setattr(time, "monotonic", lambda: later)
    wire.paths.clear()
    device.sync()
    assert wire.paths == ["handshake", "pull"]


def test_every_pass_shakes_hands_when_asked_and_after_a_sign_in_or_a_failure(
    make_user, make_device
):
    worker = make_user(grids=[GRID_1])
    device, wire = _watched(make_device, worker, handshake_interval_s=0)
    device.sync()
    wire.paths.clear()
    device.sync()
    assert wire.paths == ["handshake", "pull"]

    other = make_user(grids=[GRID_1])
    device, wire = _watched(make_device, other)
    device.sync()
    device.login(other.username, other.password)  # signed in again (e.g. the next morning)
    wire.paths.clear()
    device.sync()
    assert wire.paths == ["handshake", "pull"]
    network, wire.inner = wire.inner, _Unreachable()
    with pytest.raises(NetworkError):
        device.sync()
    wire.inner = network
    wire.paths.clear()
    device.sync()
    assert wire.paths == ["handshake", "pull"]


class _Unreachable:
    def handle(self, request):
        raise NetworkError("no signal")

    def close(self):
        pass


def test_a_clock_jump_after_a_reused_handshake_is_corrected_by_a_new_one(make_user, make_device):
    import time

    device, wire = _watched(make_device, make_user(grids=[GRID_1]))
    device.sync()
    # Between two syncs the tablet's clock jumps a year ahead; the last handshake is recent,
    # so the pass reuses it, the server refuses the stamps, and the pass asks again.
    device._now_ms = lambda: int(time.time() * 1000) + YEAR_MS
    device.record_visit(grid_code=GRID_1, findings="a")
    key = device.store.pending()[0].key
    wire.paths.clear()
    report = device.sync()
    assert wire.paths == ["push", "handshake", "push"]
    assert report.applied == 1 and report.rejected == 0 and report.restamped == 1
    assert device.pending_count() == 0 and key.endswith(":1")
    device.record_visit(grid_code=GRID_1, findings="b")  # stamped with the corrected clock
    assert HLC.parse(device.store.pending()[0].hlc).wall < int(time.time() * 1000) + 60_000


def test_a_server_rolled_back_refuses_a_reused_handshake_and_nothing_is_lost(
    make_user, make_device, monkeypatch
):
    """Between two syncs the server is replaced by one with an older record schema: the push
    made under the reused answer is refused whole (426), the pass shakes hands, is refused
    again, and every operation stays in the outbox, none rejected."""
    import server.api.sync as sync_api

    device, wire = _watched(make_device, make_user(grids=[GRID_1]))
    device.sync()
    device.record_visit(grid_code=GRID_1, findings="a")
    device.record_visit(grid_code=GRID_1, findings="b")
    monkeypatch.setattr(sync_api, "SCHEMA_VERSION", 0)
    wire.paths.clear()
    with pytest.raises(ProtocolError) as err:
        device.sync()
    assert err.value.code == "protocol_unsupported"
    assert wire.paths == ["push", "handshake"]
    assert device.pending_count() == 2 and device.rejected() == []
    monkeypatch.setattr(sync_api, "SCHEMA_VERSION", 1)  # the server is brought up to date
    wire.paths.clear()
    report = device.sync()
    assert wire.paths == ["handshake", "push"] and report.applied == 2


def test_a_reused_answer_refused_once_is_renewed_and_the_pass_goes_on(make_user, make_device):
    class UpgradedOnce:
        """Refuses the first push as a server that has just changed its protocol would."""

        def __init__(self, inner):
            self.inner, self.refused, self.paths = inner, False, []

        def handle(self, request):
            self.paths.append(request.path.rsplit("/", 1)[-1])
            if request.path.endswith("/push") and not self.refused:
                self.refused = True
                body = {"code": "protocol_unsupported", "message": "shake hands", "details": {}}
                return Response(426, json.dumps(body).encode())
            return self.inner.handle(request)

        def close(self):
            self.inner.close()

    made = []
    device = make_device(
        make_user(grids=[GRID_1]),
        transport=lambda inner: made.append(UpgradedOnce(inner)) or made[0],
    )
    device.sync()
    device.record_visit(grid_code=GRID_1, findings="a")
    made[0].paths.clear()
    report = device.sync()
    assert made[0].paths == ["push", "handshake", "push"]
    assert report.applied == 1 and device.pending_count() == 0


class _Protocol1:
    """The app as a server of protocol 1 while ``old``: its handshake answers protocol 1, and
    a push that asks for a pull is refused as its schema would (422, the key unknown)."""

    def __init__(self, inner, *, old=True):
        self.inner, self.old, self.paths, self.bodies = inner, old, [], []

    def handle(self, request):
        self.paths.append(request.path.rsplit("/", 1)[-1])
        self.bodies.append(request.content)
        if self.old and request.path.endswith("/push") and b'"pull"' in request.content:
            body = {
                "code": "validation_failed",
                "message": "The request is not valid.",
                "details": {"errors": {"pull": ["Unknown field."]}},
            }
            return Response(422, json.dumps(body).encode())
        response = self.inner.handle(request)
        if self.old and request.path.endswith("/handshake"):
            answer = {**json.loads(response.content), "protocol_version": 1}
            return Response(200, json.dumps(answer).encode(), response.headers)
        return response

    def close(self):
        self.inner.close()


def _protocol_1_device(make_device, user, *, old):
    made = []
    device = make_device(
        user, transport=lambda inner: made.append(_Protocol1(inner, old=old)) or made[0]
    )
    return device, made[0]


def test_a_server_of_protocol_1_gets_a_separate_pull(make_user, make_device):
    device, server = _protocol_1_device(make_device, make_user(grids=[GRID_1]), old=True)
    device.record_visit(grid_code=GRID_1, findings="a")
    server.paths.clear()
    server.bodies.clear()
    report = device.sync()
    assert server.paths == ["handshake", "push", "pull"] and report.applied == 1
    assert b'"pull"' not in server.bodies[1]
    assert device.pending_count() == 0 and device.store.count("acked") == 0


def test_a_page_that_came_with_the_push_is_followed_by_the_rest(make_user, make_device):
    """The push asks for the first page; the pages after it are pulled as usual, and the
    device ends with everything, its own edits acknowledged and cleared (its own create held
    as the server made it, not sent back)."""
    worker = make_user(grids=[GRID_1])
    other = make_device(make_user(grids=[GRID_1]))
    made_by_other = [other.record_visit(grid_code=GRID_1, findings=f"o{n}")["id"] for n in range(5)]
    other.sync()
    device, wire = _watched(make_device, worker, page_size=2)
    mine = device.record_visit(grid_code=GRID_1, findings="mine")["id"]
    report = device.sync()
    assert wire.paths == ["handshake", "push", "pull", "pull"]
    assert report.applied == 1 and report.pulled == 5 and report.checksum_ok
    assert {v["id"] for v in device.visits()} == {*made_by_other, mine}
    assert device.pending_count() == 0 and device.store.count("acked") == 0


def test_a_server_rolled_back_to_protocol_1_is_met_within_the_pass(make_user, make_device):
    """The reused answer says protocol 2; the server was since rolled back to one that knows
    no "pull" in a push (422 with field errors). The pass shakes hands, gets protocol 1, and
    pushes and pulls separately: nothing fails, nothing is lost."""
    device, server = _protocol_1_device(make_device, make_user(grids=[GRID_1]), old=False)
    device.sync()  # protocol 2 negotiated, the answer kept
    device.record_visit(grid_code=GRID_1, findings="a")
    server.old = True
    server.paths.clear()
    report = device.sync()
    assert server.paths == ["push", "handshake", "push", "pull"]
    assert report.applied == 1 and device.pending_count() == 0 and device.rejected() == []
