"""The merge rule as a table of cases: each names the situation and the expected outcome."""

from __future__ import annotations

import pytest

from sync import DELETED, Operation, OpKind, Outcome, Reason, apply_operation, merge

RID = "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6e"
GRID = "990101001001001"


def op(device, seq, kind, base, fields=None, hlc_ms=0, **kw):
    return Operation(
        device_id=device,
        seq=seq,
        kind=kind,
        record_type="visit",
        record_id=RID,
        base_version=base,
        hlc=f"{1_700_000_000_000 + hlc_ms:013d}:00000:{device}",
        author=f"u-{device}",
        fields=fields or {},
        **kw,
    )


def created():
    return merge(
        None, op("a", 1, OpKind.CREATE, 0, {"grid_code": GRID, "findings": "x", "address": "1号楼"})
    ).state


def test_create_then_state():
    state = created()
    assert state.version == 1 and state.values()["findings"] == "x" and not state.deleted


@pytest.mark.parametrize(
    ("name", "first", "second", "outcome", "findings", "address", "conflicts"),
    [
        (
            "different fields both apply",
            op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5),
            op("b", 1, OpKind.UPDATE, 1, {"address": "2号楼"}, 3),
            Outcome.APPLIED,
            "y",
            "2号楼",
            {},
        ),
        (
            "same field, different values: conflict, later HLC shown",
            op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5),
            op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3),
            Outcome.CONFLICT,
            "y",
            "1号楼",
            {"findings": {"y", "z"}},
        ),
        (
            "same field, same value: no conflict",
            op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5),
            op("b", 1, OpKind.UPDATE, 1, {"findings": "y"}, 3),
            Outcome.APPLIED,
            "y",
            "1号楼",
            {},
        ),
        (
            "sequential edit that saw the first: no conflict",
            op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5),
            op("b", 1, OpKind.UPDATE, 2, {"findings": "z"}, 3),
            Outcome.APPLIED,
            "z",
            "1号楼",
            {},
        ),
        (
            "same device's later edit supersedes its earlier one",
            op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5),
            op("a", 3, OpKind.UPDATE, 1, {"findings": "z"}, 6),
            Outcome.APPLIED,
            "z",
            "1号楼",
            {},
        ),
        (
            "HLC tie broken by device id, not by arrival",
            op("b", 1, OpKind.UPDATE, 1, {"findings": "from-b"}, 5),
            op("a", 2, OpKind.UPDATE, 1, {"findings": "from-a"}, 5),
            Outcome.CONFLICT,
            "from-b",
            "1号楼",
            {"findings": {"from-a", "from-b"}},
        ),
    ],
)
def test_concurrent_updates(name, first, second, outcome, findings, address, conflicts):
    state = merge(created(), first).state
    result = merge(state, second)
    assert result.outcome is outcome, name
    values = result.state.values()
    assert (values["findings"], values["address"]) == (findings, address), name
    got = {f: {w.value for w in ws} for f, ws in result.state.conflicts().items()}
    assert got == conflicts, name


def test_arrival_order_does_not_change_the_shown_value():
    a = op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5)
    b = op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 9)
    one = merge(merge(created(), a).state, b).state
    two = merge(merge(created(), b).state, a).state
    assert one.values() == two.values() and one.values()["findings"] == "z"


def test_resolution_clears_conflict_and_is_versioned():
    state = merge(created(), op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5)).state
    state = merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3)).state
    assert state.conflicts()
    result = merge(
        state,
        op(
            "h", 1, OpKind.RESOLVE, state.version, {"findings": "z"}, 9, reason="confirmed by phone"
        ),
    )
    assert result.outcome is Outcome.APPLIED and not result.state.conflicts()
    assert result.state.version == state.version + 1
    assert result.state.values()["findings"] == "z"


def test_resolution_that_missed_a_newer_value_stays_in_conflict():
    state = merge(created(), op("a", 2, OpKind.UPDATE, 1, {"findings": "y"}, 5)).state
    state = merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3)).state
    seen = state.version
    state = merge(state, op("c", 1, OpKind.UPDATE, 1, {"findings": "w"}, 4)).state
    result = merge(state, op("h", 1, OpKind.RESOLVE, seen, {"findings": "z"}, 9))
    assert result.outcome is Outcome.CONFLICT
    assert {w.value for w in result.state.conflicts()["findings"]} == {"z", "w"}


def test_delete_is_a_tombstone_and_keeps_values():
    result = merge(created(), op("a", 2, OpKind.DELETE, 1))
    assert result.outcome is Outcome.APPLIED and result.state.deleted
    assert result.state.values()["findings"] == "x"


def test_update_after_seeing_delete_is_rejected():
    state = merge(created(), op("a", 2, OpKind.DELETE, 1)).state
    result = merge(state, op("b", 1, OpKind.UPDATE, 2, {"findings": "back"}))
    assert (result.outcome, result.reason) == (Outcome.REJECTED, Reason.RECORD_DELETED)


@pytest.mark.parametrize("delete_first", [True, False])
def test_update_concurrent_with_delete_is_a_conflict_not_a_resurrection(delete_first):
    delete = op("a", 2, OpKind.DELETE, 1, hlc_ms=5)
    update = op("b", 1, OpKind.UPDATE, 1, {"findings": "edited"}, 3)
    first, second = (delete, update) if delete_first else (update, delete)
    result = merge(merge(created(), first).state, second)
    assert result.outcome is Outcome.CONFLICT and DELETED in result.conflicts
    assert result.state.deleted, "the delete has the later clock, so it is shown"
    assert result.state.values()["findings"] == "edited", "the edit is kept"


def test_restore_by_resolution():
    state = merge(created(), op("a", 2, OpKind.DELETE, 1, hlc_ms=5)).state
    state = merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "edited"}, 3)).state
    result = merge(state, op("h", 1, OpKind.RESOLVE, state.version, {DELETED: False}, 9))
    assert result.outcome is Outcome.APPLIED and not result.state.deleted


def test_appends_merge_as_a_set():
    item = {"id": "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d60", "text": "回访：情况稳定"}
    append = op("a", 2, OpKind.APPEND, 1, collection="notes", item=item)
    state = merge(created(), append).state
    again = merge(state, op("b", 1, OpKind.APPEND, 1, collection="notes", item=item))
    assert again.outcome is Outcome.APPLIED and not again.changed
    clash = merge(
        state, op("b", 2, OpKind.APPEND, 1, collection="notes", item={**item, "text": "changed"})
    )
    assert (clash.outcome, clash.reason) == (Outcome.REJECTED, Reason.ITEM_ID_REUSED)
    assert state.items("notes") == [item]


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        (op("a", 9, OpKind.UPDATE, 0, {"findings": "y"}), Reason.UNKNOWN_RECORD),
        (op("a", 9, OpKind.CREATE, 0, {"grid_code": GRID}), Reason.RECORD_EXISTS),
    ],
)
def test_rejections(operation, reason):
    state = created() if operation.kind is OpKind.CREATE else None
    result = merge(state, operation)
    assert (result.outcome, result.reason) == (Outcome.REJECTED, reason)


def test_replay_is_a_duplicate_and_key_reuse_is_rejected():
    first = op("a", 2, OpKind.UPDATE, 1, {"findings": "y"})
    result = merge(created(), first)
    receipt = result.receipt(first)
    again = apply_operation(result.state, first, receipt=receipt)
    assert again.outcome is Outcome.DUPLICATE and again.version == result.version
    assert again.original is Outcome.APPLIED and again.state is result.state
    other = op("a", 2, OpKind.UPDATE, 1, {"findings": "different"})
    reused = apply_operation(result.state, other, receipt=receipt)
    assert (reused.outcome, reused.reason) == (Outcome.REJECTED, Reason.KEY_REUSED)


def test_state_round_trips_through_storage_form():
    state = merge(created(), op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3)).state
    state = merge(state, op("c", 1, OpKind.UPDATE, 1, {"findings": "w"}, 4)).state
    from sync import RecordState

    assert RecordState.from_dict(state.to_dict()) == state
