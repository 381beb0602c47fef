"""The stored form of a record's merge state: every state any schedule produces comes back
equal from its JSON text, in the current (shared stamps) form — with its values, or with the
settled fields' values kept beside it as the server keeps them — and in the earlier one (a full
list per write) that rows written before the change still hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from sync import OpKind, RecordState, merge
from sync.record import DELETED

from .properties import run_schedule, schedules
from .sim import real_merge
from .test_merge import created, op


def _earlier_form(state: RecordState) -> dict:
    return {
        "type": state.record_type,
        "id": state.record_id,
        "version": state.version,
        "fields": {n: [list(w) for w in ws] for n, ws in state.fields.items()},
        "collections": {n: [list(w) for w in es.values()] for n, es in state.collections.items()},
    }


def _round_trips(state: RecordState) -> None:
    text = json.dumps(state.to_dict(), ensure_ascii=False)
    assert RecordState.from_dict(json.loads(text)) == state
    slim = json.dumps(state.to_dict(values_kept=True), ensure_ascii=False)
    values = json.loads(json.dumps(state.values(), ensure_ascii=False))
    assert RecordState.from_dict(json.loads(slim), values) == state
    assert RecordState.from_dict(json.loads(json.dumps(_earlier_form(state)))) == state


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules)
def test_every_state_a_schedule_produces_round_trips(schedule):
    world = run_schedule(schedule, real_merge)
    for state in world.server.states.values():
        _round_trips(state)


def test_writes_of_one_operation_share_one_stamp():
    state = created()
    stored = state.to_dict()
    assert len(stored["stamps"]) == 1  # three fields and the deletion state, one operation
    assert {i for rows in stored["fields"].values() for _, i in rows} == {0}
    assert set(stored["fields"]) == {"grid_code", "findings", "address", DELETED}
    edited = merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3)).state
    concurrent = merge(edited, op("c", 1, OpKind.UPDATE, 1, {"findings": "w"}, 4)).state
    stored = concurrent.to_dict()
    assert len(stored["stamps"]) == 3 and len(stored["fields"]["findings"]) == 2
    _round_trips(concurrent)


def test_a_row_written_in_the_earlier_form_still_merges():
    state = created()
    earlier = RecordState.from_dict(_earlier_form(state))
    assert (
        merge(earlier, op("b", 1, OpKind.UPDATE, 1, {"findings": "y"}, 2)).state
        == merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "y"}, 2)).state
    )


def test_a_settled_field_is_stored_as_its_stamp_and_read_with_the_values_beside_it():
    state = created()
    stored = state.to_dict(values_kept=True)
    assert stored["fields"]["findings"] == 0 and stored["fields"]["address"] == 0
    assert stored["fields"][DELETED] == [[False, 0]]  # not among the values: kept in full
    assert "x" not in json.dumps(stored["fields"])  # no field value is repeated in the state
    assert RecordState.from_dict(stored, state.values()) == state
    edited = merge(state, op("b", 1, OpKind.UPDATE, 1, {"findings": "z"}, 3)).state
    concurrent = merge(edited, op("c", 1, OpKind.UPDATE, 1, {"findings": "w"}, 4)).state
    stored = concurrent.to_dict(values_kept=True)
    assert sorted(v for v, _ in stored["fields"]["findings"]) == ["w", "z"]  # in conflict: full
    assert RecordState.from_dict(stored, concurrent.values()) == concurrent


def test_a_stamp_only_field_without_its_value_is_refused_not_guessed():
    stored = created().to_dict(values_kept=True)
    with pytest.raises(ValueError, match="findings"):
        RecordState.from_dict(stored, {"grid_code": "x", "address": "y"})
    with pytest.raises(ValueError):
        RecordState.from_dict(stored)
