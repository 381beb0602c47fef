"""Protocol 4: a push sent ahead of the batch before it (``after``) is applied only once every
operation of that batch is held; otherwise it is answered ``not_yet``, nothing judged and
nothing kept, on SQLite and PostgreSQL (docs/protocol.md §5.6)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import server.push
from server.extensions import db
from server.models import AuditEntry, Record, SyncOp
from sync import Operation, seq_runs
from tests.server.devices import GRID_1, ApiDevice


@pytest.fixture
def app_config():
    return {"SYNC_AFTER_WAIT_MS": 30}


@pytest.fixture
def devices(any_app, client, make_user, login):
    return {"a": ApiDevice(client, login(make_user("grid_worker", grids=[GRID_1])))}


def _send(device: ApiDevice, ops: list[Operation], after=None, **extra) -> dict:
    body = {"device_id": device.device_id, "operations": [o.to_dict() for o in ops], **extra}
    if after is not None:
        body["after"] = after
    response = device.post("push", body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _runs(ops: list[Operation]) -> list[list[int]]:
    return [list(run) for run in seq_runs(o.seq for o in ops)]


def _held(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(SyncOp)),
            db.session.scalar(select(func.count()).select_from(Record)),
        )


def _two_batches(device: ApiDevice) -> tuple[list[Operation], list[Operation]]:
    """Batch 1 creates three visits; batch 2 edits them (applied before batch 1, each edit
    would be refused for good as an edit of a record that does not exist)."""
    ids = [device.create(findings=f"第{i}户") for i in range(3)]
    first = list(device.outbox)
    second = [device.update(rid, findings="已复访") for rid in ids]
    return first, second


def test_a_batch_sent_ahead_is_applied_once_the_one_it_follows_is_held(any_app, devices):
    a = devices["a"]
    first, second = _two_batches(a)
    assert {r["status"] for r in _send(a, first)["results"]} == {"applied"}
    answer = _send(a, second, after=_runs(first))
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    assert [r["version"] for r in answer["results"]] == [2, 2, 2]


def test_a_batch_ahead_of_one_not_held_is_answered_not_yet_and_nothing_is_kept(any_app, devices):
    a = devices["a"]
    first, second = _two_batches(a)
    answer = _send(a, second, after=_runs(first), pull={"cursor": 0, "limit": 10})
    assert [(r["status"], r["reason"]) for r in answer["results"]] == [("rejected", "not_yet")] * 3
    assert [r["key"] for r in answer["results"]] == [o.key for o in second]
    assert "pull" not in answer  # not judged: no page either
    assert _held(any_app) == (0, 0)
    with any_app.app_context():
        assert "sync.push" not in db.session.scalars(select(AuditEntry.action)).all()
    # In order now: both applied, the edits on their records.
    _send(a, first)
    again = _send(a, second, after=_runs(first))
    assert [(r["status"], r["version"]) for r in again["results"]] == [("applied", 2)] * 3
    assert _held(any_app) == (6, 3)


def test_a_wait_for_a_batch_that_never_came_is_logged_for_operators(any_app, devices, caplog):
    """Nothing is written for a ``not_yet`` answer; a warning names the device and what it
    waited for, so that one naming numbers it never sends shows in the server's log."""
    a = devices["a"]
    first, second = _two_batches(a)
    with caplog.at_level("WARNING"):
        _send(a, second, after=[[first[0].seq, first[-1].seq], [900, 900]])
    [line] = [r.getMessage() for r in caplog.records if "never came" in r.getMessage()]
    assert a.device_id in line
    assert f"{first[0].seq}-{first[-1].seq}, 900" in line and "30 ms" in line
    # The batch before arriving in time is no event: nothing logged.
    caplog.clear()
    _send(a, first)
    with caplog.at_level("WARNING"):
        _send(a, second, after=_runs(first))
    assert not [r for r in caplog.records if "never came" in r.getMessage()]


def test_the_batch_it_follows_arriving_meanwhile_is_waited_for(any_app, devices, monkeypatch):
    """The batch ahead takes the lock first and lets it go; the one it follows is applied by
    another request while it waits (here: from inside its wait); it is then applied."""
    a = devices["a"]
    first, second = _two_batches(a)
    waits = []
    real_sleep = server.push.time.sleep

    def meanwhile(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            assert _held(any_app) == (0, 0)
            assert {r["status"] for r in _send(a, first)["results"]} == {"applied"}
        real_sleep(seconds)

    monkeypatch.setattr(server.push.time, "sleep", meanwhile)
    answer = _send(a, second, after=_runs(first))
    assert [(r["status"], r["version"]) for r in answer["results"]] == [("applied", 2)] * 3
    assert len(waits) == 1


def test_a_predecessor_answered_in_part_is_not_waited_for(any_app, devices, monkeypatch):
    """Some of the batch it follows held, not all (one was refused for its clock, no receipt):
    that batch was answered; the rest will be sent again. Answered at once, no waiting."""
    a = devices["a"]
    first, second = _two_batches(a)
    _send(a, first[:2])  # the third create never held
    sleeps = []
    monkeypatch.setattr(server.push.time, "sleep", sleeps.append)
    answer = _send(a, second, after=_runs(first))
    assert {r["reason"] for r in answer["results"]} == {"not_yet"}
    assert sleeps == []
    assert _held(any_app) == (2, 2)


def test_an_operation_that_cannot_be_decoded_is_answered_as_always(any_app, devices):
    a = devices["a"]
    first, second = _two_batches(a)
    body = {
        "device_id": a.device_id,
        "operations": [second[0].to_dict(), {"kind": "create"}],
        "after": _runs(first),
    }
    results = a.post("push", body).get_json()["results"]
    assert results[0]["reason"] == "not_yet"
    assert results[1]["status"] == "rejected" and results[1]["reason"] == "missing_field"


@pytest.mark.parametrize(
    "after",
    [
        "1-3",
        [],
        [[1]],
        [[1, 2, 3]],
        [[0, 2]],
        [[3, 1]],
        [[1, 2], [3, 4]],  # one run, split
        [[5, 6], [1, 2]],  # not ascending
        [[1, True]],
        [[1, "2"]],
        [[1, 501]],  # more than a batch
        [[i, i] for i in range(1, 1002, 2)],  # more runs than a batch holds
    ],
)
def test_a_malformed_after_is_refused_whole_and_nothing_applied(any_app, devices, after):
    a = devices["a"]
    first, _ = _two_batches(a)
    body = {"device_id": a.device_id, "operations": [o.to_dict() for o in first], "after": after}
    response = a.post("push", body)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert set(error) == {"code", "message", "details"}
    assert "after" in error["message"] + str(error["details"])  # says where
    assert _held(any_app) == (0, 0)


def test_a_predecessor_of_many_runs_is_counted_exactly(any_app, devices):
    """Numbers far apart (a batch after re-sends): every one of ten runs must be held; the
    device's other receipts between them do not count."""
    a = devices["a"]
    ids = [a.create(findings=f"第{i}户") for i in range(24)]
    held = list(a.outbox)
    _send(a, held[:20])
    odd = [o for o in held[:20] if o.seq % 2]  # ten runs of one, with held numbers between
    edit = [a.update(ids[0], findings="已复访")]
    assert _send(a, edit, after=_runs(odd))["results"][0]["status"] == "applied"
    # One number more, never held (the 21st create): not all held, though as many receipts lie
    # between the first and the last number as the runs name.
    late = [o for o in held if o.seq % 2 and o.seq <= 21]
    assert len(_runs(late)) == 11
    again = [a.update(ids[1], findings="已复访")]
    assert _send(a, again, after=_runs(late))["results"][0]["reason"] == "not_yet"
