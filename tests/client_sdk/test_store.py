"""The local store on its own: durability settings, atomic writes, read-your-writes, errors."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import Client, ClientError, StorageError, ValidationError
from client_sdk.store import Store
from sync import HLC, Operation, OpKind

from .conftest import GRID_1, GRID_2


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


# --- the kept checksum totals -----------------------------------------------------------------

_IDS = [f"0b7b4d2e-0000-4000-8000-00000000000{n}" for n in range(6)]
_GRIDS = [GRID_1, GRID_2]


def _full_scan(store: Store) -> tuple[int, int]:
    row = store.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(version), 0) FROM records WHERE snapshot IS NOT NULL"
    ).fetchone()
    return row[0], row[1]


def _snap(rid: str, version: int, grid: str) -> dict:
    return {"id": rid, "type": "household", "version": version, "grid_code": grid,
            "deleted": False, "fields": {"grid_code": grid, "address": "a"}, "conflicts": {},
            "collections": {}, "review": None}  # fmt: skip


def _local_create(store: Store, rid: str, grid: str) -> None:
    def make(seq, base, last):
        return Operation("dev", seq, OpKind.CREATE, "household", rid, base,
                         f"{1_780_000_000_000 + seq:013d}:0000:dev", "w",
                         fields={"grid_code": grid, "address": "a"})  # fmt: skip

    store.add_op(rid, make, grid_code=grid)


_step = st.one_of(
    st.tuples(st.just("page"), st.lists(
        st.tuples(st.sampled_from(_IDS), st.integers(1, 9), st.sampled_from(_GRIDS)), max_size=5
    ), st.integers(0, 2)),
    st.tuples(st.just("remove"), st.lists(st.sampled_from(_IDS), max_size=3)),
    st.tuples(st.just("purge_outside"), st.sampled_from(_GRIDS)),
    st.tuples(st.just("purge_unseen"), st.integers(0, 3)),
    st.tuples(st.just("local"), st.sampled_from(_IDS), st.sampled_from(_GRIDS)),
    st.tuples(st.just("rollback"), st.sampled_from(_IDS), st.integers(1, 9)),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=25))
def test_kept_totals_equal_a_full_scan_after_any_operations(steps):
    store = Store(":memory:")
    try:
        for step in steps:
            kind = step[0]
            if kind == "local":
                _local_create(store, step[1], step[2])
                continue
            if kind == "rollback":  # a page that fails half way changes nothing
                with pytest.raises(RuntimeError), store.tx() as conn:
                    Store.save_snapshots(conn, [_snap(step[1], step[2], GRID_1)], 0)
                    raise RuntimeError("signal lost")
                continue
            with store.tx() as conn:
                if kind == "page":
                    Store.save_snapshots(conn, [_snap(*s) for s in step[1]], step[2])
                elif kind == "remove":
                    Store.remove(conn, step[1])
                elif kind == "purge_outside":
                    Store.purge_outside(conn, [step[1]])
                else:
                    Store.purge_unseen(conn, step[1])
            assert store.checksum() == _full_scan(store)
        assert store.recount() == store.checksum() == _full_scan(store)
    finally:
        store.close()


def test_totals_see_changes_made_by_hand_and_a_recount_repairs_them(tmp_path):
    store = Store(str(tmp_path / "s.sqlite3"))
    try:
        with store.tx() as conn:
            Store.save_snapshots(conn, [_snap(rid, 2, GRID_1) for rid in _IDS[:3]], 0)
        assert store.checksum() == (3, 6)
        store.db.execute("UPDATE records SET version = 5 WHERE id = ?", [_IDS[0]])
        store.db.execute("DELETE FROM records WHERE id = ?", [_IDS[1]])
        assert store.checksum() == _full_scan(store) == (2, 7)
        store.db.execute("UPDATE pulled_totals SET count = 40")  # the totals themselves damaged
        assert store.recount() == (2, 7)
        assert store.checksum() == (2, 7)
    finally:
        store.close()


def test_an_older_database_gets_its_totals_counted_once(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    store = Store(path)
    with store.tx() as conn:  # make it look like a database from before migration m002
        conn.execute("DROP TABLE pulled_totals")
        for name in ("pulled_insert", "pulled_delete", "pulled_update"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_pulled_totals'")
        conn.executemany(
            "INSERT INTO records (id, type, snapshot, version) VALUES (?, 'household', ?, ?)",
            [(_IDS[0], "{}", 3), (_IDS[1], "{}", 4), (_IDS[2], None, 0)],
        )
    store.close()
    again = Store(path)
    try:
        assert again.checksum() == (2, 7)
    finally:
        again.close()


# --- batches and cached meta values -----------------------------------------------------------


def _committed(path: str, sql: str) -> int:
    """What another connection sees (only committed rows)."""
    with closing(sqlite3.connect(path)) as other:
        return other.execute(sql).fetchone()[0]


def test_a_batch_is_one_transaction_committed_at_its_end(offline_device):
    device = offline_device()
    path = device.store.path
    with device.batch():
        homes = [device.create_household(grid_code=GRID_1, address=f"{n}") for n in range(5)]
        assert device.pending_count() == 5  # reads inside the batch see its saves
        assert device.get(homes[0]["id"])["fields"]["address"] == "0"
        assert _committed(path, "SELECT COUNT(*) FROM outbox") == 0
    assert _committed(path, "SELECT COUNT(*) FROM outbox") == 5
    assert [op.seq for op in device.store.pending()] == [1, 2, 3, 4, 5]


def test_a_batch_that_raises_keeps_none_of_its_saves(offline_device):
    device = offline_device()
    device.create_household(grid_code=GRID_1, address="before")
    with pytest.raises(RuntimeError), device.batch():
        device.create_household(grid_code=GRID_1, address="in the batch")
        raise RuntimeError("the app crashed")
    assert [h["fields"]["address"] for h in device.households()] == ["before"]
    assert device.store.get("next_seq") == 2
    device.create_household(grid_code=GRID_1, address="after")
    assert [op.seq for op in device.store.pending()] == [1, 2]


def test_a_refused_save_inside_a_batch_leaves_the_others(offline_device):
    device = offline_device()
    store = device.store

    def broken(seq, base, last):
        raise RuntimeError("crash while building the operation")

    with device.batch():
        device.create_household(grid_code=GRID_1, address="a")
        with pytest.raises(ValidationError):
            device.create_household(grid_code="123", address="b")
        with pytest.raises(RuntimeError):
            store.add_op("0b7b4d2e-0000-4000-8000-000000000009", broken, grid_code=GRID_1)
        device.create_household(grid_code=GRID_1, address="c")
    assert [h["fields"]["address"] for h in device.households()] == ["a", "c"]
    assert [op.seq for op in store.pending()] == [1, 2]


def test_no_sync_inside_a_batch(offline_device):
    device = offline_device()
    with device.batch(), pytest.raises(ClientError) as err:
        device.sync()
    assert err.value.code == "sync_in_batch"


def test_a_batch_survives_reopening(tmp_path, clock):
    path = tmp_path / "d.sqlite3"
    with Client(db_path=path, clock=clock) as device, device.batch():
        for n in range(3):
            device.create_household(grid_code=GRID_1, address=f"{n}")
    with Client(db_path=path, clock=clock) as again:
        assert again.pending_count() == 3


def test_edits_use_the_current_user_and_clock_offset(offline_device):
    device = offline_device(clock=lambda: 1_780_000_000_000)
    device.store.set(user={"username": "w1", "role": "grid_worker"})
    device.create_household(grid_code=GRID_1, address="a")
    device.store.set(user={"username": "w2", "role": "grid_worker"}, clock_offset_ms=60_000)
    device.create_household(grid_code=GRID_1, address="b")
    with closing(sqlite3.connect(device.store.path)) as other, other:  # another process
        other.execute("UPDATE meta SET value = ? WHERE key = 'user'", ['{"username": "w3"}'])
    device.create_household(grid_code=GRID_1, address="c")
    with pytest.raises(RuntimeError), device.store.tx() as conn:  # a change rolled back
        Store.put(conn, "user", {"username": "w4"})
        assert device.store.cached("user") == {"username": "w4"}
        raise RuntimeError
    device.create_household(grid_code=GRID_1, address="d")
    ops = device.store.pending()
    assert [op.author for op in ops] == ["w1", "w2", "w3", "w3"]
    assert HLC.parse(ops[1].hlc).wall >= 1_780_000_060_000
