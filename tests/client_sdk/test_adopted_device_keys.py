"""A store set up again under a device id that already pushed (a tablet wiped and enrolled
again with the same id) must not lose its work to reused keys.

Its sequence numbers start over at 1, so its keys ``device_id:seq`` would name operations the
server already holds from the old store, and the server keeps a key's first receipt: each such
operation would be refused as ``key_reused`` for good. The handshake tells the device the highest
number the server holds for its id (``last_seq``); numbers above what the store may itself have
sent were another store's, so its never-sent operations are numbered again above it. An
operation that may have reached the server keeps its key: sending it again stays a replay.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from client_sdk import Client, NetworkError, Request, Response, Transport
from client_sdk.syncpass import SyncPass

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

    again = make_device(user, "again", device_id=old.device_id)
    # Offline: five new visits (numbers 1-5: 1-3 are the old store's keys) and an edit of the
    # first one (number 6), which only applies after its create.
    made = [again.record_visit(grid_code=GRID_1, findings=f"新{n}")["id"] for n in range(5)]
    again.update(made[0], findings="新0：已复访")
    assert _outbox_seqs(again) == [1, 2, 3, 4, 5, 6]

    report = again.sync()
    assert (report.renumbered, report.applied, report.rejected) == (6, 6, 0)
    assert again.rejected() == [] and again.pending_count() == 0
    assert report.checksum_ok is True
    on_server = _server_visits(make_device, make_user)
    assert set(on_server) == set(kept) | set(made)
    assert on_server[made[0]]["fields"]["findings"] == "新0：已复访"
    assert on_server[made[0]]["version"] == 2
    assert on_server[kept[0]]["fields"]["findings"] == "旧0"  # the old store's work stands

    # Its next edits follow the server's numbers, with nothing more to renumber.
    again.update(made[1], findings="新1：已复访")
    report = again.sync()
    assert (report.renumbered, report.applied, report.rejected) == (0, 1, 0)


def test_new_work_of_a_store_set_up_again_after_it_first_synced_follows_the_servers_numbers(
    make_user, make_device
):
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    for n in range(4):
        old.record_visit(grid_code=GRID_1, findings=f"旧{n}")
    old.sync()
    again = make_device(user, "again", device_id=old.device_id)
    assert again.sync().renumbered == 0  # nothing of its own yet
    assert again.store.get("next_seq") == 5
    visit = again.record_visit(grid_code=GRID_1, findings="新")
    report = again.sync()
    assert (report.applied, report.rejected) == (1, 0)
    assert visit["id"] in _server_visits(make_device, make_user)


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


def test_an_operation_that_may_have_reached_the_server_keeps_its_key(make_user, make_device):
    """The server holds the store's own pushed numbers, the answer lost: a replay, not a new key
    (a new key would apply the operations twice)."""
    lossy: list[_AnswersLost] = []

    def wrap(inner: Transport) -> Transport:
        lossy.append(_AnswersLost(inner))
        return lossy[0]

    device = make_device(make_user(grids=[GRID_1]), "lossy", transport=wrap, max_attempts=1)
    made = [device.record_visit(grid_code=GRID_1, findings=f"访{n}")["id"] for n in range(3)]
    with pytest.raises(NetworkError):
        device.sync()
    assert device.pending_count() == 3  # applied on the server, not known to be here
    lossy[0].down = False
    report = device.sync()
    assert (report.renumbered, report.duplicates, report.applied, report.rejected) == (0, 3, 0, 0)
    assert _outbox_seqs(device) == []
    assert set(_server_visits(make_device, make_user)) == set(made)


def test_a_restored_copy_of_a_store_sends_its_operations_again_as_replays(
    make_user, make_device, tmp_path
):
    """A copy of the store taken while operations were pending (a backup restored), which the
    original has sent since: the server holds those very operations under their keys, so the
    copy sends them again under the same keys, and they are replays, not applied twice."""
    user = make_user(grids=[GRID_1])
    original = make_device(user, "original")
    first = original.record_visit(grid_code=GRID_1, findings="初访")
    original.sync()
    original.update(first["id"], findings="复访")
    made = original.record_visit(grid_code=GRID_1, findings="新访")
    original.store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(tmp_path / "original.sqlite3", tmp_path / "restored.sqlite3")
    assert original.sync().applied == 2
    device_id = original.device_id
    original.close()

    restored = make_device(None, "restored", device_id=device_id)
    report = restored.sync()
    assert (report.renumbered, report.duplicates, report.applied, report.rejected) == (0, 2, 0, 0)
    assert restored.rejected() == [] and restored.pending_count() == 0
    on_server = _server_visits(make_device, make_user)
    assert on_server[first["id"]]["version"] == 2  # the edit applied once
    assert on_server[first["id"]]["fields"]["findings"] == "复访"
    assert made["id"] in on_server


def test_a_restored_copy_with_new_work_keeps_the_keys_the_server_holds(
    make_user, make_device, tmp_path
):
    """The restored copy also made new operations, under numbers the original used since:
    those are numbered again; the ones the server holds as they are keep their keys."""
    user = make_user(grids=[GRID_1])
    original = make_device(user, "original")
    original.record_visit(grid_code=GRID_1, findings="初访")
    original.sync()
    pending = original.record_visit(grid_code=GRID_1, findings="待传")  # number 2
    original.store.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    shutil.copy(tmp_path / "original.sqlite3", tmp_path / "restored.sqlite3")
    original.sync()  # number 2 on the server
    original.record_visit(grid_code=GRID_1, findings="原机新访")  # number 3
    original.sync()
    device_id = original.device_id
    original.close()

    restored = make_device(None, "restored", device_id=device_id)
    mine = restored.record_visit(grid_code=GRID_1, findings="恢复后新访")  # number 3 again
    report = restored.sync()
    assert (report.renumbered, report.duplicates, report.applied, report.rejected) == (1, 1, 1, 0)
    on_server = _server_visits(make_device, make_user)
    assert {pending["id"], mine["id"]} <= set(on_server) and len(on_server) == 4


def test_handshakes_number_nothing_twice(make_user, make_device):
    """A pass that dies after its handshake (the app killed) leaves the new numbers; the next
    handshakes find nothing more to move, and an idle sync moves no number."""
    user = make_user(grids=[GRID_1])
    old = make_device(user, "old")
    for n in range(4):
        old.record_visit(grid_code=GRID_1, findings=f"旧{n}")
    old.sync()
    again = make_device(user, "again", device_id=old.device_id, handshake_interval_s=0)
    again.record_visit(grid_code=GRID_1, findings="新")
    moved = []
    for _ in range(3):
        sync_pass = SyncPass(
            again.api, again.store, device_id=again.device_id, now_ms=again._now_ms
        )
        sync_pass.handshake()
        moved.append(sync_pass.report.renumbered)
        assert _outbox_seqs(again) == [5] and again.store.get("next_seq") == 6
    assert moved == [1, 0, 0]
    assert again.sync().applied == 1
    for _ in range(2):
        assert again.sync().renumbered == 0 and again.store.get("next_seq") == 6


def test_an_operation_stamped_again_is_not_taken_for_another(make_user, make_device):
    """The server holds an operation under its first stamp (its answer lost) while the device
    holds it re-stamped: the same operation, told apart by its clock alone, keeps its key and is
    not applied a second time under a new one."""
    lossy: list[_AnswersLost] = []

    def wrap(inner: Transport) -> Transport:
        lossy.append(_AnswersLost(inner))
        return lossy[0]

    device = make_device(make_user(grids=[GRID_1]), "restamped", transport=wrap, max_attempts=1)
    made = device.record_visit(grid_code=GRID_1, findings="初访")
    with pytest.raises(NetworkError):
        device.sync()
    sync_pass = SyncPass(
        device.api, device.store, device_id=device.device_id, now_ms=device._now_ms
    )
    sync_pass.restamp(device.store.pending())
    assert sync_pass.report.restamped == 1
    lossy[0].down = False
    report = device.sync()
    assert report.renumbered == 0 and _outbox_seqs(device) in ([], [1])
    on_server = _server_visits(make_device, make_user)
    assert list(on_server) == [made["id"]] and on_server[made["id"]]["version"] == 1
