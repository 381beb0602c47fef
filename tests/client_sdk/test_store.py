"""The local store on its own: durability settings, atomic writes, read-your-writes, errors."""

from __future__ import annotations

import sqlite3

import pytest

from client_sdk import Client, ClientError, StorageError
from client_sdk.store import Store
from sync import HLC

from .conftest import GRID_1


def test_store_uses_wal_and_full_sync(tmp_path):
    store = Store(str(tmp_path / "s.sqlite3"))
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert {"records", "outbox", "acked", "meta"} <= set(store.db.table_names())
    finally:
        store.close()


def test_reopening_keeps_schema_device_and_data(tmp_path, clock):
    path = tmp_path / "d.sqlite3"
    with Client(db_path=path, clock=clock) as first:
        device_id = first.device_id
        home = first.create_household(grid_code=GRID_1, address="1-1-101")
    with Client(db_path=path, clock=clock) as again:
        assert again.device_id == device_id
        assert again.get(home["id"])["fields"]["address"] == "1-1-101"
        assert again.pending_count() == 1


def test_a_database_belongs_to_one_device(tmp_path):
    path = tmp_path / "d.sqlite3"
    Client(db_path=path, device_id="11111111-1111-4111-8111-111111111111").close()
    with pytest.raises(ClientError) as err:
        Client(db_path=path, device_id="22222222-2222-4222-8222-222222222222")
    assert err.value.code == "device_mismatch"


def test_an_edit_and_its_outbox_entry_commit_together(offline_device):
    device = offline_device()
    store = device.store

    def broken(seq, base, last):
        raise RuntimeError("crash while building the operation")

    with pytest.raises(RuntimeError):
        store.add_op("0b7b4d2e-0000-4000-8000-000000000001", broken, grid_code=GRID_1)
    assert store.count("records") == 0
    assert store.count("outbox") == 0
    assert store.get("next_seq") is None


def test_sequence_numbers_and_base_versions(offline_device):
    device = offline_device()
    home = device.create_household(grid_code=GRID_1, address="a")
    device.update(home["id"], address="b")
    device.add_note(home["id"], "门口有台阶")
    ops = device.store.pending()
    assert [op.seq for op in ops] == [1, 2, 3]
    assert {op.base_version for op in ops} == {0}  # never pulled
    assert len({op.key for op in ops}) == 3
    hlcs = [HLC.parse(op.hlc) for op in ops]
    assert hlcs == sorted(hlcs)


def test_clock_never_goes_backwards_across_restarts(tmp_path):
    path = tmp_path / "d.sqlite3"
    with Client(db_path=path, clock=lambda: 2_000_000_000_000) as device:
        device.create_household(grid_code=GRID_1, address="a")
    with Client(db_path=path, clock=lambda: 1_000_000_000_000) as device:  # clock set back
        device.create_household(grid_code=GRID_1, address="b")
        first, second = (HLC.parse(op.hlc) for op in device.store.pending())
    assert second > first


def test_read_your_writes(offline_device):
    device = offline_device()
    home = device.create_household(grid_code=GRID_1, address="a", head_name="张三")
    device.update(home["id"], head_name="李四")
    device.add_note(home["id"], "第一次走访")
    view = device.get(home["id"])
    assert view["fields"] == {"grid_code": GRID_1, "address": "a", "head_name": "李四"}
    assert [n["text"] for n in view["collections"]["notes"]] == ["第一次走访"]
    device.delete(home["id"])
    assert device.get(home["id"])["deleted"] is True
    assert device.households() == []
    assert device.pending_count() == 4


def test_lists_filter_by_type_and_grid(offline_device):
    device = offline_device()
    device.create_household(grid_code=GRID_1, address="a")
    device.create_household(grid_code="990101001001002", address="b")
    device.create_resident(grid_code=GRID_1, name="王五")
    assert [h["fields"]["address"] for h in device.households(GRID_1)] == ["a"]
    assert len(device.households()) == 2
    assert [r["fields"]["name"] for r in device.residents()] == ["王五"]


def test_a_damaged_database_raises_storage_error(tmp_path):
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        Client(db_path=path)


def test_sqlite_errors_become_storage_errors(offline_device):
    device = offline_device()
    device.store.db.execute("DROP TABLE outbox")
    with pytest.raises(StorageError):
        device.create_household(grid_code=GRID_1, address="a")
    with pytest.raises(StorageError):
        device.pending_count()
    assert not isinstance(StorageError("x"), sqlite3.Error)
