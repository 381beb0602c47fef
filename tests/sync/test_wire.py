"""Wire format: every message round-trips; malformed input only ever raises SyncError."""

from __future__ import annotations

import contextlib
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import (
    Checksum,
    HandshakeRequest,
    HandshakeResponse,
    MalformedOperation,
    Operation,
    OpKind,
    OpResult,
    Outcome,
    ProtocolVersionError,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Removal,
    ScopeInfo,
    SyncError,
    negotiate,
    seq_runs,
)
from sync.errors import MissingField, OversizeValue, UnknownRecordType, WrongType

RID = "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6e"
SCOPE = ScopeInfo(("990101001001001",), "abc123")


def op(**kw):
    base = dict(
        device_id="dev-1",
        seq=1,
        kind=OpKind.UPDATE,
        record_type="visit",
        record_id=RID,
        base_version=3,
        hlc="1700000000000:00000:dev-1",
        author="u1",
        fields={"findings": "ok"},
    )
    base.update(kw)
    return Operation(**base)


MESSAGES = [
    HandshakeRequest("dev-1", 1_700_000_000_000, (1,), 1, "field-app/1.0"),
    HandshakeResponse(1, 1, 1_700_000_000_000, -250, 300_000, 500, 2000, SCOPE),
    PushResponse(
        [
            OpResult("dev-1:1", Outcome.CONFLICT, RID, 4, None, None, ("findings",)),
            OpResult("dev-1:2", Outcome.DUPLICATE, RID, 4, original=Outcome.APPLIED),
            OpResult(None, Outcome.REJECTED, None, None, "wrong_type", "bad"),
        ],
        1_700_000_000_001,
    ),
    PullRequest(42, 500, "abc123"),
    PullResponse(
        [
            {
                "type": "visit",
                "id": RID,
                "version": 2,
                "grid_code": "990101001001001",
                "deleted": False,
                "fields": {"findings": "x"},
                "conflicts": {},
                "collections": {"notes": []},
                "review": None,
            }
        ],
        [Removal(RID)],
        43,
        False,
        SCOPE,
        False,
        Checksum(10, 55),
    ),
    Removal(RID, "scope"),
    Checksum(3, 9),
    SCOPE,
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message):
    data = json.loads(json.dumps(message.to_dict()))
    assert type(message).from_dict(data) == message


@pytest.mark.parametrize("kind", list(OpKind))
def test_operation_round_trip_every_kind(kind):
    extra = {}
    if kind is OpKind.APPEND:
        extra = {
            "fields": {},
            "collection": "notes",
            "item": {"id": "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6f", "text": "note"},
        }
    elif kind is OpKind.DELETE:
        extra = {"fields": {}}
    elif kind is OpKind.RESOLVE:
        extra = {"reason": "checked with the resident"}
    original = op(kind=kind, **extra)
    decoded = Operation.from_dict(json.loads(json.dumps(original.to_dict())))
    assert decoded == original
    assert decoded.digest() == original.digest()


def test_push_request_round_trip_and_per_operation_errors():
    good = op().to_dict()
    bad = {**op(seq=2).to_dict(), "record_type": "spaceship"}
    req = PushRequest.from_dict({"device_id": "dev-1", "operations": [good, bad, 7]})
    assert req.operations[0] == op()
    assert isinstance(req.operations[1], MalformedOperation)
    assert isinstance(req.operations[1].error, UnknownRecordType)
    assert req.operations[1].key == "dev-1:2"
    assert isinstance(req.operations[2], MalformedOperation) and req.operations[2].key is None


def test_operation_of_another_device_is_refused_in_a_push():
    req = PushRequest.from_dict({"device_id": "dev-2", "operations": [op().to_dict()]})
    assert isinstance(req.operations[0], MalformedOperation)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.pop("record_id"), MissingField),
        (lambda d: d.update(seq="1"), WrongType),
        (lambda d: d.update(seq=True), WrongType),
        (lambda d: d.update(seq=0), WrongType),
        (lambda d: d.update(record_id="not-a-uuid"), WrongType),
        (lambda d: d.update(record_type="spaceship"), UnknownRecordType),
        (lambda d: d.update(kind="merge"), WrongType),
        (lambda d: d.update(hlc="yesterday"), WrongType),
        (lambda d: d.update(fields={"findings": "x" * 20_000}), OversizeValue),
        (lambda d: d.update(fields={"k" * 100: 1}), OversizeValue),
        (lambda d: d.update(fields={f"f{i}": 1 for i in range(100)}), WrongType),
        (lambda d: d.update(fields=[1, 2]), WrongType),
        (lambda d: d.update(fields={"findings": float("nan")}), WrongType),
        (lambda d: d.update(device_id="d" * 65), OversizeValue),
    ],
)
def test_malformed_operation_raises_a_named_sync_error(mutate, error):
    data = op().to_dict()
    mutate(data)
    with pytest.raises(error):
        Operation.from_dict(data)


def test_oversize_batch_is_refused():
    with pytest.raises(OversizeValue):
        PushRequest.from_dict({"device_id": "d", "operations": [{}] * 501})


def test_protocol_negotiation():
    assert negotiate([1, 2, 3, 4]) == 4  # the highest both speak
    assert negotiate([1, 2, 3]) == 3  # an app of protocol 3 is still served
    assert negotiate([1, 2]) == 2  # and 2
    assert negotiate([1]) == 1  # and 1
    assert negotiate([4, 5]) == 4
    with pytest.raises(ProtocolVersionError):
        negotiate([5, 6])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
DECODERS = [
    Operation.from_dict,
    PushRequest.from_dict,
    PullRequest.from_dict,
    PullResponse.from_dict,
    PushResponse.from_dict,
    HandshakeRequest.from_dict,
    HandshakeResponse.from_dict,
    OpResult.from_dict,
    Removal.from_dict,
    Checksum.from_dict,
    ScopeInfo.from_dict,
]


@settings(max_examples=300)
@given(st.sampled_from(DECODERS), json_values)
def test_fuzzed_input_only_raises_sync_errors(decoder, value):
    with contextlib.suppress(SyncError):
        decoder(value)


def _mutated_ops():
    keys = list(op().to_dict())
    return st.builds(
        lambda k, v, drop: {**{kk: vv for kk, vv in op().to_dict().items() if kk != drop}, k: v},
        st.sampled_from(keys),
        json_values,
        st.sampled_from([*keys, None]),
    )


@settings(max_examples=300)
@given(_mutated_ops())
def test_fuzzed_operations_only_raise_sync_errors(data):
    try:
        decoded = Operation.from_dict(data)
    except SyncError:
        return
    assert Operation.from_dict(decoded.to_dict()) == decoded


@given(st.sets(st.integers(1, 2**63 - 1), max_size=60))
def test_seq_runs_name_exactly_the_numbers_and_a_push_carries_them(numbers):
    runs = seq_runs(sorted(numbers))
    assert {n for lo, hi in runs for n in range(lo, hi + 1)} == numbers
    assert all(lo <= hi for lo, hi in runs)
    assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(runs))  # apart
    assert sum(hi - lo + 1 for lo, hi in runs) == len(numbers)
    if runs:
        sent = PushRequest("d", [], after=runs).to_dict()
        assert PushRequest.from_dict(json.loads(json.dumps(sent))).after == runs
    else:
        assert "after" not in PushRequest("d", []).to_dict()
