"""Over HTTP a device keeps two push batches on their way: the second says which one it
follows (protocol 4), and the server applies it only once that one is held.

The server is told to take batches of 5, so 23 operations are five batches. Whatever happens to
a batch on the way — lost before the server, answered but the answer lost, a 5xx, an expired
token, a clock refused, overtaken by the batch behind it — every operation ends on the server
exactly once, after every operation sent before it, and acknowledged on the device, as when
batches go one after the other.
"""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from sqlalchemy import func, select

from client_sdk import Client, HTTPTransport, ProtocolError, Response
from server.extensions import db
from server.models import Record

from .conftest import GRID_1
from .flaky import Flaky


@pytest.fixture
def app_config():
    # A batch ahead of one the server never receives waits 0.1 s before it is answered not_yet.
    return {"SYNC_MAX_BATCH": 5, "SYNC_AFTER_WAIT_MS": 100}


@pytest.mark.parametrize(
    "fail",
    [{}, {2: "lost"}, {3: "answer_lost"}, {2: "5xx"}, {4: "expired"}, {5: "lost"}, {1: "5xx"}],
)
def test_batches_travel_ahead_and_every_operation_lands_once(
    app, live_server, make_user, tmp_path, fail
):
    worker = make_user(grids=[GRID_1])
    flaky = Flaky(live_server, "/push", dict(fail))
    with Client(db_path=tmp_path / "d.sqlite3", transport=flaky) as device:
        device.login(worker.username, worker.password)
        for i in range(23):
            device.record_visit(grid_code=GRID_1, findings=f"第{i}户 走访")
        report = device.sync()
        assert report.pushed == 23 and report.rejected == 0
        assert report.applied + report.duplicates == 23
        assert report.duplicates == (5 if "answer_lost" in fail.values() else 0)
        assert device.store.count("outbox", "state = 'pending'") == 0
        assert flaky.fail == {} and flaky.count == 5 + len(fail)
        assert "linli-request" in flaky.threads  # batches 2-5 were sent ahead
        # Its own creates are held as the server made them, none sent back (protocol 3), an
        # answer lost and replayed included.
        assert report.pulled == 0 and report.checksum_ok
        assert device.store.checksum() == (23, 23)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 23


def test_operations_refused_for_the_clock_are_sent_again_before_the_look_ahead_resumes(
    app, live_server, make_user, tmp_path
):
    """Batch 2 creates five visits on a clock a year ahead and batch 3 edits them after the
    clock was set right (their stamps still follow the hybrid clock, a year ahead): both are
    refused as clock_ahead, re-stamped and sent again, and no batch goes ahead of such an
    answer. Every operation lands, the edits on their records."""
    worker = make_user(grids=[GRID_1])
    transport = HTTPTransport(live_server, timeout=10)
    year = 365 * 24 * 3600 * 1000
    with Client(db_path=tmp_path / "d.sqlite3", transport=transport) as device:
        device.login(worker.username, worker.password)
        real = device._now_ms
        for i in range(5):
            device.record_visit(grid_code=GRID_1, findings=f"第{i}户")
        device._now_ms = lambda: real() + year
        late = [device.record_visit(grid_code=GRID_1, findings=f"第{i}户") for i in range(5)]
        device._now_ms = real
        for visit in late:
            device.update(visit["id"], findings="已复访")
        report = device.sync()
        assert report.restamped == 10 and report.rejected == 0
        assert report.pushed == 15 and report.applied == 15
        assert device.store.count("outbox", "state = 'pending'") == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Record)) == 10
        texts = db.session.execute(select(Record.data)).scalars().all()
        assert sum(t["findings"] == "已复访" for t in texts) == 5


@pytest.mark.parametrize("late", [1, 3, 4])
def test_a_batch_overtaken_by_the_one_behind_it_still_lands_first(
    app, live_server, make_user, tmp_path, late
):
    """Batch ``late`` reaches the server only after the batch behind it was answered: that one
    (and any sent behind it) is answered not_yet, not judged, and sent again after it,
    unchanged.
    Every batch edits the records the batch before it created: applied first, an edit would
    be refused for good (its record unknown) — none is."""
    worker = make_user(grids=[GRID_1])
    flaky = Flaky(live_server, "/push", {late: "late"})
    with Client(db_path=tmp_path / "d.sqlite3", transport=flaky) as device:
        device.login(worker.username, worker.password)
        made: list[str] = []
        for i in range(25):  # five batches: creates, then edits of the batch before's creates
            if i % 10 < 5:
                made.append(device.record_visit(grid_code=GRID_1, findings=f"第{i}户")["id"])
            else:
                device.update(made[i % 5 - 5], findings="已复访")
        report = device.sync()
        # The overtaking batch was refused, with the one sent behind it before that answer
        # came; then one batch at a time for the rest of the pass.
        assert (flaky.ahead, flaky.not_yet) == {1: (2, 10), 3: (4, 10), 4: (4, 5)}[late]
        assert flaky.unmatched == 0  # the late batch really reached the server after the next
        assert report.rejected == 0 and report.restamped == 0
        assert report.pushed == 25 and report.applied + report.duplicates == 25
        assert device.store.count("outbox", "state = 'pending'") == 0
    with app.app_context():
        texts = db.session.execute(select(Record.data)).scalars().all()
        assert len(texts) == 15 and sum(t["findings"] == "已复访" for t in texts) == 10


def test_no_batch_goes_ahead_of_operations_numbered_again(app, live_server, make_user, tmp_path):
    """A copy of a store taken before its first sign-in numbers its work again above the
    original's (``made_seq``), and the server answers each as its twin's replay, with no
    receipt under the new number: a batch sent ahead of such a batch would wait for it in
    vain. None is; the copy's work is answered as replays, one batch at a time."""
    worker = make_user(grids=[GRID_1])
    first = tmp_path / "first.sqlite3"
    with Client(db_path=first, transport=HTTPTransport(live_server, timeout=10)) as device:
        for i in range(12):
            device.record_visit(grid_code=GRID_1, findings=f"第{i}户")
        device_id = device.device_id
    shutil.copy(first, tmp_path / "copy.sqlite3")
    with Client(db_path=first, transport=Flaky(live_server, "/push", {})) as original:
        original.login(worker.username, worker.password)
        assert original.sync().applied == 12
        assert original.transport.ahead == 2  # batches of 5: the 2nd and 3rd went ahead
    flaky = Flaky(live_server, "/push", {})
    with Client(db_path=tmp_path / "copy.sqlite3", transport=flaky) as copy:
        assert copy.device_id == device_id
        copy.login(worker.username, worker.password)
        report = copy.sync()
        assert (report.duplicates, report.applied, report.rejected) == (12, 0, 0)
        assert copy.pending_count() == 0
    assert flaky.ahead == 0 and flaky.not_yet == 0 and flaky.count == 3


class _AlwaysNotYet(Flaky):
    """A server that answers every push not_yet, whether or not it follows another."""

    def handle(self, request):
        if not request.path.endswith("/push"):
            return self.inner.handle(request)
        body = gzip.decompress(request.content) if "Content-Encoding" in request.headers else None
        ops = json.loads(body or request.content)["operations"]
        results = [
            {"key": f"{o['device_id']}:{o['seq']}", "status": "rejected", "reason": "not_yet"}
            for o in ops
        ]
        content = json.dumps({"results": results, "server_time_ms": 1}).encode()
        return Response(200, content, {"content-type": "application/json"})


def test_not_yet_for_a_batch_that_follows_none_is_a_protocol_error(
    live_server, make_user, tmp_path
):
    """Only a batch sent ahead may be answered not_yet: the first batch of a round follows
    none, and such an answer to it would have the device send it again for ever."""
    worker = make_user(grids=[GRID_1])
    with Client(db_path=tmp_path / "d.sqlite3", transport=_AlwaysNotYet(live_server, "", {})) as d:
        d.login(worker.username, worker.password)
        d.record_visit(grid_code=GRID_1, findings="一户")
        with pytest.raises(ProtocolError, match="not_yet"):
            d.sync()
        assert d.pending_count() == 1
