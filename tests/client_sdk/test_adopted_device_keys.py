"""A store set up again under a device id that already pushed (a tablet wiped and enrolled
again with the same id), or restored from a copy, must not lose its work to reused keys.

A store numbers its operations from 1, so its keys ``device_id:seq`` could name operations the
server already holds from the other store, and the server keeps a key's first receipt: each
such operation would be refused as ``key_reused`` for good. The login and handshake answers
carry the highest number the server holds for the device id (``last_seq``), and the store
numbers its new operations above it. Operations already numbered keep their keys: one that may
have reached the server is sent again as a replay, never applied twice.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from client_sdk import Client, NetworkError, ProtocolError, Request, Response, Transport
from sync.clock import wall_clock_ms

from .conftest import GRID_1


def _server_visits(make_device: Any, make_user: Any) -> dict[str, dict[str, Any]]:
    reader = make_device(make_user(grids=[GRID_1]), "reader")
    assert reader.sync().checksum_ok is True
    return {r["id"]: r for r in reader.visits()}


def _outbox_seqs(device: Client) -> list[int]:
    return [r[0] for r in device.store.db.execute("SELECT seq FROM outbox ORDER BY seq")]


def test_a_store_set_up_again_under_its_device_id_loses_no_record(make_user, make_device):
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    kept = [old.record_visit(grid_code=GRID_1, findings=f"旧{n}")["id"] for n in range(3)]
    assert old.sync().applied == 3

    again = make_device(user, "again", device_id=old.device_id)  # signs in: last_seq 3
    assert again.store.get("next_seq") == 4
    # Offline: five new visits and an edit of the first one.
    made = [again.record_visit(grid_code=GRID_1, findings=f"新{n}")["id"] for n in range(5)]
    again.update(made[0], findings="新0：已复访")
    assert _outbox_seqs(again) == [4, 5, 6, 7, 8, 9]

    report = again.sync()
    assert (report.applied, report.rejected, report.duplicates) == (6, 0, 0)
    assert again.rejected() == [] and again.pending_count() == 0
    assert report.checksum_ok is True
    on_server = _server_visits(make_device, make_user)
    assert set(on_server) == set(kept) | set(made)
    assert on_server[made[0]]["fields"]["findings"] == "新0：已复访"
    assert on_server[made[0]]["version"] == 2
    assert on_server[kept[0]]["fields"]["findings"] == "旧0"  # the old store's work stands


def test_an_operation_that_may_have_reached_the_server_keeps_its_key(make_user, make_device):
    """The server holds the store's own pushed numbers, the answer lost: the next handshake's
    last_seq covers them, and they are sent again under their keys, as replays."""
    device, lossy = _lossy_device(make_device, make_user(grids=[GRID_1]))
    made = [device.record_visit(grid_code=GRID_1, findings=f"访{n}")["id"] for n in range(3)]
    with pytest.raises(NetworkError):
        device.sync()
    assert device.pending_count() == 3  # applied on the server, not known to be here
    lossy.down = False
    report = device.sync()
    assert (report.duplicates, report.applied, report.rejected) == (3, 0, 0)
    assert _outbox_seqs(device) == [] and device.store.get("next_seq") == 4
    assert set(_server_visits(make_device, make_user)) == set(made)


class _AnswersLost:
    """Pushes reach the server, their answers never come back, while ``down``."""

    concurrent = False

    def __init__(self, inner: Transport) -> None:
        self.inner, self.down = inner, True

    def handle(self, request: Request) -> Response:
        answer = self.inner.handle(request)
        if self.down and request.path.endswith("/push"):
            raise NetworkError("connection reset after the server (test)")
        return answer

    def close(self) -> None:
        self.inner.close()


def _lossy_device(make_device: Any, user: Any) -> tuple[Client, _AnswersLost]:
    """A signed-in device whose push answers are lost while its transport is ``down``."""
    made: list[_AnswersLost] = []

    def wrap(inner: Transport) -> Transport:
        made.append(_AnswersLost(inner))
        return made[0]

    device = make_device(user, "lossy", transport=wrap, max_attempts=1)
    return device, made[0]


def test_a_restored_copy_of_a_store_sends_its_operations_again_as_replays(
    make_user, make_device, tmp_path
):
    """A copy of the store taken while operations were pending (a backup restored), which the
    original has sent since: the copy sends them again under the same keys, as replays, and
    numbers its new work after the server's."""
    user = make_user(grids=[GRID_1])
    original = make_device(user, "original")
    first = original.record_visit(grid_code=GRID_1, findings="初访")
    original.sync()
    original.update(first["id"], findings="复访")
    made = original.record_visit(grid_code=GRID_1, findings="新访")
    original.store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(tmp_path / "original.sqlite3", tmp_path / "restored.sqlite3")
    assert original.sync().applied == 2
    original.record_visit(grid_code=GRID_1, findings="原机又访")  # number 4
    assert original.sync().applied == 1
    device_id = original.device_id
    original.close()

    restored = make_device(None, "restored", device_id=device_id)
    report = restored.sync()
    assert (report.duplicates, report.applied, report.rejected) == (2, 0, 0)
    assert restored.rejected() == [] and restored.pending_count() == 0
    assert restored.store.get("next_seq") == 5  # above the original's number 4
    later = restored.record_visit(grid_code=GRID_1, findings="恢复后新访")
    assert restored.sync().applied == 1
    on_server = _server_visits(make_device, make_user)
    assert on_server[first["id"]]["version"] == 2  # the edit applied once
    assert on_server[first["id"]]["fields"]["findings"] == "复访"
    assert {made["id"], later["id"]} <= set(on_server) and len(on_server) == 4


def _copy_before_first_sign_in(make_device: Any, tmp_path: Any, device_id: str | None = None):
    """A store that records a visit and an edit before it ever signs in, and a copy of it."""
    first = make_device(None, "first", device_id=device_id)
    visit = first.record_visit(grid_code=GRID_1, findings="先录")
    first.update(visit["id"], findings="先录后改")
    first.add_note(visit["id"], "先录备注")
    device_id = first.device_id
    first.close()
    shutil.copy(tmp_path / "first.sqlite3", tmp_path / "copy.sqlite3")
    return visit, device_id


@pytest.mark.parametrize("used_before", [False, True], ids=["new id", "id used before"])
def test_a_copy_taken_before_the_first_sign_in_applies_nothing_twice(
    make_user, make_device, tmp_path, used_before
):
    """Both stores number the same work above the server's at their first sign-in, each
    differently (with a used id, the original's own work moved the server's number): each
    operation says the number it was made with, and the copy's are answered as replays of
    the original's."""
    user = make_user(grids=[GRID_1])
    device_id = None
    if used_before:
        old = make_device(user, "old")
        old.record_visit(grid_code=GRID_1, findings="旧")
        assert old.sync().applied == 1
        device_id = old.device_id
        old.close()
    visit, device_id = _copy_before_first_sign_in(make_device, tmp_path, device_id)
    original = make_device(None, "first", device_id=device_id)
    original.login(user.username, user.password)
    assert original.sync().applied == 3
    original.close()
    reader = make_device(make_user(grids=[GRID_1]), "reader")
    reader.sync()
    before = reader.get(visit["id"])
    assert before["version"] == 3 and before["fields"]["findings"] == "先录后改"

    copy = make_device(None, "copy", device_id=device_id)
    copy.login(user.username, user.password)
    report = copy.sync()
    assert (report.duplicates, report.applied, report.rejected) == (3, 0, 0)
    assert copy.rejected() == [] and copy.pending_count() == 0
    assert reader.sync().checksum_ok is True
    on_server = reader.get(visit["id"])
    assert on_server == before  # nothing applied again: same version, one note
    assert len(on_server["collections"]["notes"]) == 1
    assert copy.get(visit["id"]) == on_server


def _used_id(make_user: Any, make_device: Any) -> tuple[Any, str]:
    """A worker and a device id the server already holds two operations of."""
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    old.record_visit(grid_code=GRID_1, findings="旧1")
    old.record_visit(grid_code=GRID_1, findings="旧2")
    assert old.sync().applied == 2  # last_seq 2
    device_id = old.device_id
    old.close()
    return user, device_id


@pytest.mark.parametrize("app_config", [{"SYNC_MAX_BATCH": 2}])
def test_setting_a_field_back_before_the_first_sign_in_is_not_taken_for_the_earlier_edit(
    make_user, make_device, app_config
):
    """Numbered again from 1..4 to 3..6 and sent two at a time: the last edit (made 4, sent
    as 6) has the content of the earlier one made as 2 and now held as 4, but it is another
    operation, and it is applied."""
    user, device_id = _used_id(make_user, make_device)
    new = make_device(None, "new", device_id=device_id)
    visit = new.record_visit(grid_code=GRID_1, findings="甲")
    for value in ("乙", "丙", "乙"):
        new.update(visit["id"], findings=value)
    new.login(user.username, user.password)
    report = new.sync()
    assert (report.applied, report.duplicates, report.rejected) == (4, 0, 0)
    on_server = _server_visits(make_device, make_user)[visit["id"]]
    assert (on_server["fields"]["findings"], on_server["version"]) == ("乙", 4)


def test_a_copys_own_edit_with_the_content_of_an_earlier_one_is_applied(
    make_user, make_device, tmp_path
):
    user, device_id = _used_id(make_user, make_device)
    first = make_device(None, "first", device_id=device_id)
    visit = first.record_visit(grid_code=GRID_1, findings="甲")
    first.update(visit["id"], findings="乙")
    first.update(visit["id"], findings="丙")
    first.close()
    shutil.copy(tmp_path / "first.sqlite3", tmp_path / "copy.sqlite3")
    original = make_device(None, "first", device_id=device_id)
    original.login(user.username, user.password)
    assert original.sync().applied == 3
    original.close()

    copy = make_device(None, "copy", device_id=device_id)
    copy.update(visit["id"], findings="乙")  # the worker's last word, made on the copy
    copy.login(user.username, user.password)
    report = copy.sync()
    assert (report.duplicates, report.applied, report.rejected) == (3, 1, 0)
    assert _server_visits(make_device, make_user)[visit["id"]]["fields"]["findings"] == "乙"


def _two_minutes_fast() -> int:  # within the drift limit: no clock_ahead, only an offset
    return wall_clock_ms() + 120_000


def test_a_restored_copys_edit_made_at_the_originals_stamp_is_still_another_operation(
    make_user, make_device, tmp_path
):
    """The store's last stamp is ahead of the corrected clock, so a copy of it stamps its next
    edit exactly as the original stamped its own: same number, same stamp, same change. They
    are two edits (each has its nonce): the copy's is refused ``key_reused``, not answered as
    the original's replay."""
    user = make_user(grids=[GRID_1])
    original = make_device(user, "original", clock=_two_minutes_fast)
    visit = original.record_visit(grid_code=GRID_1, findings="初访")
    assert original.sync().applied == 1
    original.store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(tmp_path / "original.sqlite3", tmp_path / "restored.sqlite3")
    original.update(visit["id"], findings="复访")
    [made] = original.store.pending()
    assert original.sync().applied == 1
    device_id = original.device_id
    original.close()

    restored = make_device(None, "restored", device_id=device_id, clock=_two_minutes_fast)
    restored.update(visit["id"], findings="复访")  # the worker redoes it, offline
    [again] = restored.store.pending()
    assert (again.seq, again.hlc) == (made.seq, made.hlc) and again.nonce != made.nonce
    report = restored.sync()
    assert (report.rejected, report.duplicates) == (1, 0)
    assert [r["reason"] for r in restored.rejected()] == ["key_reused"]


def test_edits_made_by_the_original_and_a_copy_after_it_was_taken_are_two_operations(
    make_user, make_device, tmp_path
):
    user, ahead = make_user(grids=[GRID_1]), [120_000]

    def clock() -> int:
        return wall_clock_ms() + ahead[0]

    first = make_device(None, "first", clock=clock)
    visit = first.record_visit(grid_code=GRID_1, findings="甲")
    device_id = first.device_id
    first.close()
    shutil.copy(tmp_path / "first.sqlite3", tmp_path / "copy.sqlite3")
    ahead[0] = 0  # network time set the tablet's clock right: the stored stamp is ahead
    original = make_device(None, "first", device_id=device_id, clock=clock)
    original.update(visit["id"], findings="乙")
    original.login(user.username, user.password)
    assert original.sync().applied == 2
    original.close()
    copy = make_device(None, "copy", device_id=device_id, clock=clock)
    copy.update(visit["id"], findings="乙")  # its own edit, at the same stamp
    copy.login(user.username, user.password)
    report = copy.sync()
    assert (report.duplicates, report.applied, report.rejected) == (1, 1, 0)


def test_idle_syncs_move_no_number(make_user, make_device):
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    for n in range(4):
        old.record_visit(grid_code=GRID_1, findings=f"旧{n}")
    old.sync()
    again = make_device(user, "again", device_id=old.device_id, handshake_interval_s=0)
    for _ in range(3):
        again.sync()
        assert again.store.get("next_seq") == 5


class _LoginAnswer:
    """Changes the login answer's ``last_seq``."""

    concurrent = False

    def __init__(self, inner: Transport, last_seq: Any) -> None:
        self.inner, self.last_seq = inner, last_seq

    def handle(self, request: Request) -> Response:
        answer = self.inner.handle(request)
        if request.path.endswith("/auth/login"):
            body = json.loads(answer.content)
            if self.last_seq is None:
                del body["last_seq"]
            else:
                body["last_seq"] = self.last_seq
            return Response(answer.status, json.dumps(body).encode(), answer.headers)
        return answer

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("last_seq", ["7", -1, 2**63, True, 1.5])
def test_a_broken_last_seq_in_the_login_answer_is_a_protocol_error(
    make_user, make_device, last_seq
):
    device = make_device(None, "broken", transport=lambda inner: _LoginAnswer(inner, last_seq))
    user = make_user(grids=[GRID_1])
    with pytest.raises(ProtocolError):
        device.login(user.username, user.password)


def test_a_login_answer_without_last_seq_numbers_as_before(make_user, make_device):
    device = make_device(None, "older", transport=lambda inner: _LoginAnswer(inner, None))
    user = make_user(grids=[GRID_1])
    device.login(user.username, user.password)
    assert device.store.get("next_seq") is None
    device.record_visit(grid_code=GRID_1, findings="访")
    assert _outbox_seqs(device) == [1]


def test_work_recorded_before_the_first_sign_in_is_numbered_above_the_server(
    make_user, make_device
):
    """A store set up again records before it signs in (it cannot have sent anything yet):
    its first sign-in numbers that work above the old store's, in its order."""
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    for n in range(3):
        old.record_visit(grid_code=GRID_1, findings=f"旧{n}")
    old.sync()
    again = make_device(None, "again", device_id=old.device_id)
    visit = again.record_visit(grid_code=GRID_1, findings="先录")
    again.update(visit["id"], findings="先录后改")
    assert _outbox_seqs(again) == [1, 2]
    again.login(user.username, user.password)
    assert _outbox_seqs(again) == [4, 5] and again.store.get("next_seq") == 6
    assert [op.seq for op in again.store.pending()] == [4, 5]  # the texts say so too
    report = again.sync()
    assert (report.applied, report.rejected) == (2, 0)
    on_server = _server_visits(make_device, make_user)
    assert on_server[visit["id"]]["fields"]["findings"] == "先录后改"


def test_signing_in_again_keeps_every_key(make_user, make_device):
    """A store that signed in before may have sent what it holds: signing in again (after a
    refused refresh, say) numbers nothing again, and its lost answers stay replays."""
    user = make_user(grids=[GRID_1])
    device, lossy = _lossy_device(make_device, user)
    device.record_visit(grid_code=GRID_1, findings="访")
    with pytest.raises(NetworkError):
        device.sync()
    lossy.down = False
    device.login(user.username, user.password)  # last_seq 1, the pending operation's own
    assert _outbox_seqs(device) == [1]
    assert device.sync().duplicates == 1
