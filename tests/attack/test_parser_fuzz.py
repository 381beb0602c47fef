"""Hypothesis against everything that reads untrusted input, beyond tests/sync/test_wire.py.

1. Decoders (sync.wire messages, Operation.from_dict, HLC.parse) get arbitrary JSON-like values,
   Python values JSON never makes (tuples, sets, bytes, non-string keys), and valid messages of
   every kind mutated at any depth: a key dropped, a value of another type, huge strings and
   integers, deep nesting, NaN and infinities, unicode oddities. Only SyncError subclasses may
   escape; what decodes must round-trip.
2. Validators and masks return a value or an error dict for any input; masks never show the
   hidden middle of an ID number or phone.
3. The push endpoint gets random batches over HTTP: always 200 with one result per operation or a
   4xx in the error shape, and no record answered "rejected" ever reaches the database.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server.extensions import db
from server.models import Record
from server.privacy import mask_snapshot
from sync import (
    HLC,
    RECORD_TYPES,
    Checksum,
    HandshakeRequest,
    HandshakeResponse,
    Operation,
    OpKind,
    OpResult,
    Outcome,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Removal,
    ScopeInfo,
    SyncError,
    validate_fields,
)
from sync.validators import id_number_valid, mask_id_number, mask_phone, phone_valid
from tests.conftest import GRID_1, GRID_2
from tests.server.conftest import assert_error

EXAMPLES = 500
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None)
DEEP = 50_000  # far beyond the interpreter's recursion limit

# --- values -----------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",  # a lone surrogate: JSON can spell it, UTF-8 cannot encode it
        "\u202e\u200b",  # right-to-left override, zero-width space
        "١٧٠٠٠٠٠٠٠٠٠٠٠",  # Arabic-Indic digits (str.isdigit() is True)
        "1700000000000:00000:node\n",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "邻里" * 3,
        "🏠" * 10,
        "NaN",
    ]
)
ODD_NUMBERS = st.sampled_from(
    [math.nan, math.inf, -math.inf, -0.0, 1e308, 2**63, -(2**63) - 1, 10**400, True, False]
)


def _deep(depth: int, container: str) -> Any:
    """A list (or dict) nested ``depth`` levels, built without recursion."""
    root: Any = [] if container == "list" else {}
    node = root
    for _ in range(depth):
        child: Any = [] if container == "list" else {}
        node.append(child) if container == "list" else node.__setitem__("k", child)
        node = child
    return root


leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | ODD_TEXT
    | ODD_NUMBERS
)
json_like = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=12) | ODD_TEXT, children, max_size=5)
    ),
    max_leaves=30,
)
not_json = st.one_of(
    st.tuples(json_like),
    st.frozensets(st.integers(), max_size=3),
    st.binary(max_size=20),
    st.dictionaries(st.integers() | st.none(), json_like, min_size=1, max_size=3),
    st.just(object()),
    st.just(b"\xff" * 10),
)
# Built once: decoders never modify their input.
HUGE = [_deep(DEEP, "list"), _deep(DEEP, "dict"), "x" * 1_000_000, "邻" * 100_000, 10**4000]
weird = st.one_of(
    json_like,
    not_json,
    st.sampled_from(HUGE[2:]),  # the 50,000-deep ones: test_nesting_beyond_the_recursion_limit
    st.integers(1, 60).map(lambda d: _deep(d, "list")),
    st.integers(1, 60).map(lambda d: _deep(d, "dict")),
)

# --- valid messages ---------------------------------------------------------------------------

uuids = st.uuids().map(str)
devices = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)
hlcs = st.builds(
    lambda wall, counter, node: str(HLC(wall, counter, node)),
    st.integers(0, 9_999_999_999_999),
    st.integers(0, 99_999),
    devices,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@st.composite
def operations(draw: st.DrawFn, device_id: str | None = None) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(OpKind)))
    rtype = draw(st.sampled_from(sorted(RECORD_TYPES)))
    spec = RECORD_TYPES[rtype]
    names = st.sampled_from(sorted(spec.fields)) | st.text(min_size=1, max_size=10)
    fields = draw(st.dictionaries(names, json_values, min_size=1, max_size=5))
    collection = draw(st.sampled_from(spec.collections))
    item = {"id": draw(uuids), "text": draw(st.text(max_size=30))}
    op = Operation(
        device_id=device_id or draw(devices),
        seq=draw(st.integers(1, 2**40)),
        kind=kind,
        record_type=rtype,
        record_id=draw(uuids),
        base_version=draw(st.integers(0, 100)),
        hlc=draw(hlcs),
        author=draw(st.text(max_size=10)),
        fields=fields if kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE) else {},
        collection=collection if kind is OpKind.APPEND else None,
        item=item if kind is OpKind.APPEND else None,
        reason=draw(st.none() | st.text(max_size=20)),
    )
    return op.to_dict()


scopes = st.builds(
    ScopeInfo,
    st.lists(st.from_regex(r"\d{6,15}", fullmatch=True), max_size=3).map(tuple),
    st.text("0123456789abcdef", min_size=1, max_size=16),
)
results = st.builds(
    OpResult,
    st.none() | st.text(max_size=20),
    st.sampled_from(list(Outcome)),
    st.none() | uuids,
    st.none() | st.integers(0, 100),
    st.none() | st.text(max_size=10),
    st.none() | st.text(max_size=30),
    st.lists(st.text(min_size=1, max_size=10), max_size=3).map(tuple),
    st.none() | st.sampled_from(list(Outcome)),
)
snapshots = st.fixed_dictionaries(
    {
        "type": st.sampled_from(sorted(RECORD_TYPES)),
        "id": uuids,
        "version": st.integers(1, 100),
        "grid_code": st.just(GRID_1),
        "deleted": st.booleans(),
        "fields": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        "conflicts": st.just({}),
        "collections": st.just({"notes": []}),
        "review": st.none(),
    }
)


@st.composite
def pushes(draw: st.DrawFn) -> dict[str, Any]:
    device = draw(devices)
    return {"device_id": device, "operations": draw(st.lists(operations(device), max_size=4))}


MESSAGES: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "operation": (Operation.from_dict, operations()),
    "push": (PushRequest.from_dict, pushes()),
    "push_response": (
        PushResponse.from_dict,
        st.builds(PushResponse, st.lists(results, max_size=3), st.integers(0, 2**45)).map(
            lambda m: m.to_dict()
        ),
    ),
    "pull": (
        PullRequest.from_dict,
        st.builds(
            PullRequest, st.integers(0, 2**40), st.integers(1, 2000), st.none() | devices
        ).map(lambda m: m.to_dict()),
    ),
    "pull_response": (
        PullResponse.from_dict,
        st.builds(
            PullResponse,
            st.lists(snapshots, max_size=3),
            st.lists(st.builds(Removal, uuids), max_size=2),
            st.integers(0, 2**40),
            st.booleans(),
            scopes,
            st.booleans(),
            st.none() | st.builds(Checksum, st.integers(0, 99), st.integers(0, 999)),
        ).map(lambda m: m.to_dict()),
    ),
    "handshake": (
        HandshakeRequest.from_dict,
        st.builds(
            HandshakeRequest,
            devices,
            st.integers(0, 2**45),
            st.lists(st.integers(0, 999), min_size=1, max_size=3).map(tuple),
            st.integers(0, 999),
            st.none() | st.text(max_size=20),
        ).map(lambda m: m.to_dict()),
    ),
    "handshake_response": (
        HandshakeResponse.from_dict,
        st.builds(
            HandshakeResponse,
            *[st.integers(0, 2**40)] * 7,
            scopes,
        ).map(lambda m: m.to_dict()),
    ),
    "result": (OpResult.from_dict, results.map(lambda m: m.to_dict())),
    "removal": (Removal.from_dict, st.builds(Removal, uuids).map(lambda m: m.to_dict())),
    "checksum": (
        Checksum.from_dict,
        st.builds(Checksum, st.integers(0, 99), st.integers(0, 999)).map(lambda m: m.to_dict()),
    ),
    "scope": (ScopeInfo.from_dict, scopes.map(lambda m: m.to_dict())),
    "hlc": (HLC.parse, hlcs),
}
DECODERS = {name: decoder for name, (decoder, _) in MESSAGES.items()}

# --- mutation ---------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a message: dict keys and list positions, down to depth 8."""
    found = [prefix]
    if len(prefix) >= 8:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any, drop: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if drop and not rest:
        del copy[head]
    else:
        copy[head] = _replace(copy[head], rest, new, drop)
    return copy


@st.composite
def mutated(draw: st.DrawFn, message: st.SearchStrategy[Any], values: Any = None) -> Any:
    """``message`` with 1-3 mutations; ``values`` replaces the default pool of odd values."""
    value = draw(message)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        action = draw(st.sampled_from(["drop", "replace", "wrap", "retype"]))
        if action == "drop" and path:
            value = _replace(value, path, None, drop=True)
            continue
        old = _get(value, path)
        if action == "wrap":
            new = draw(
                st.sampled_from([[old], {"value": old}, (old,)][: 3 if values is None else 2])
            )
        elif action == "retype":
            new = _retype(old)
        else:
            new = draw(weird if values is None else values)
        value = _replace(value, path, new)
    return value


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _retype(value: Any) -> Any:
    """The same content in another JSON type: 3 -> "3", "3" -> 3, [x] -> {"0": x} ..."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() and len(value) < 4000 else [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return value


def _decode(name: str, value: Any) -> Any:
    try:
        return DECODERS[name](value)
    except SyncError:
        return None


# --- 1. decoders ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MESSAGES))
@FUZZ
@given(data=st.data())
def test_arbitrary_values_only_raise_sync_errors(name, data):
    _decode(name, data.draw(st.one_of(weird, json_like, not_json)))


@pytest.mark.parametrize("name", sorted(MESSAGES))
@FUZZ
@given(data=st.data())
def test_mutated_messages_only_raise_sync_errors_and_round_trip(name, data):
    decoded = _decode(name, data.draw(mutated(MESSAGES[name][1])))
    if decoded is None or name in ("hlc", "pull_response", "push"):
        return  # an HLC has no to_dict; the other two keep raw parts (snapshots, bad ops)
    assert DECODERS[name](decoded.to_dict()) == decoded


@pytest.mark.parametrize("name", sorted(MESSAGES))
@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_valid_messages_decode(name, data):
    """The generators above make valid messages, so the mutation tests start from real ones."""
    decoder, message = MESSAGES[name]
    decoder(data.draw(message))


@pytest.mark.parametrize("container", ["list", "dict"])
@pytest.mark.parametrize("name", sorted(set(MESSAGES) - {"hlc"}))
def test_nesting_beyond_the_recursion_limit_is_a_sync_error(name, container):
    """Every field of every message, in turn, replaced by a structure 50,000 levels deep."""
    base = _example(name)
    escaped = set()
    for path in _paths(base):
        if not path:
            continue
        try:
            _decode(name, _replace(base, path, HUGE[0 if container == "list" else 1]))
        except RecursionError:
            escaped.add((name, path))
    assert escaped == set()


def test_lone_surrogate_in_a_field_is_a_sync_error():
    with pytest.raises(SyncError):
        DECODERS["operation"]({**_example("operation"), "fields": {"findings": "x\ud800"}})


_EXAMPLES: dict[str, Any] = {}


def _example(name: str) -> Any:
    """One valid, fully populated message of each kind (deterministic)."""
    rid = "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6e"
    op = {
        "device_id": "dev-1",
        "seq": 1,
        "kind": "update",
        "record_type": "visit",
        "record_id": rid,
        "base_version": 3,
        "hlc": "1700000000000:00000:dev-1",
        "author": "u1",
        "fields": {"findings": "ok"},
        "reason": "r",
    }
    scope = {"prefixes": [GRID_1], "token": "abc"}
    result = {
        "key": "dev-1:1",
        "status": "duplicate",
        "record_id": rid,
        "version": 4,
        "reason": "x",
        "message": "m",
        "conflicts": ["findings"],
        "original": "applied",
    }
    snap = {
        "type": "visit",
        "id": rid,
        "version": 2,
        "deleted": False,
        "fields": {"a": 1},
        "conflicts": {},
        "collections": {"notes": []},
        "grid_code": GRID_1,
        "review": None,
    }
    return {
        "operation": op,
        "push": {"device_id": "dev-1", "operations": [op, {**op, "seq": 2, "kind": "nope"}]},
        "push_response": {"results": [result], "server_time_ms": 1},
        "pull": {"cursor": 1, "limit": 10, "scope_token": "abc"},
        "pull_response": {
            "changes": [snap],
            "removals": [{"record_id": rid, "reason": "scope"}],
            "cursor": 3,
            "has_more": False,
            "reset": False,
            "scope": scope,
            "checksum": {"count": 1, "version_sum": 2},
        },
        "handshake": {
            "device_id": "dev-1",
            "device_time_ms": 1,
            "protocol_versions": [1],
            "schema_version": 1,
            "app": "a",
        },
        "handshake_response": {
            "protocol_version": 1,
            "schema_version": 1,
            "server_time_ms": 1,
            "clock_skew_ms": 0,
            "max_clock_drift_ms": 1,
            "max_batch": 1,
            "max_page": 1,
            "scope": scope,
        },
        "result": result,
        "removal": {"record_id": rid, "reason": "scope"},
        "checksum": {"count": 1, "version_sum": 2},
        "scope": scope,
    }[name]


@FUZZ
@given(st.one_of(hlcs, st.text(max_size=90), ODD_TEXT, hlcs.map(lambda h: h[:-1] + "é")))
def test_hlc_parse_accepts_only_its_canonical_form(text):
    """A parsed HLC prints back as the text it came from."""
    try:
        parsed = HLC.parse(text)
    except SyncError:
        return
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["1700000000000:00000:node\n", "١٧٠٠٠٠٠٠٠٠٠٠٠:00000:node"])
def test_hlc_parse_refuses_newline_and_non_ascii_digits(text):
    with pytest.raises(SyncError):
        HLC.parse(text)


# --- 2. validators and masks ------------------------------------------------------------------

field_names = st.sampled_from(
    sorted({n for t in RECORD_TYPES.values() for n in t.fields} | {"id", "_deleted", "version"})
) | st.text(max_size=10)


@FUZZ
@given(
    st.sampled_from(sorted(RECORD_TYPES)) | st.text(max_size=10),
    st.dictionaries(field_names, st.one_of(json_like, weird), max_size=8),
    st.booleans(),
    st.booleans(),
    st.none()
    | st.dictionaries(
        st.sampled_from(["genders", "resident_tags", "dispute_categories"]),
        st.sets(st.text(max_size=4), max_size=3),
        max_size=3,
    ),
)
def test_validate_fields_returns_errors_never_raises(rtype, fields, partial, server, codes):
    errors = validate_fields(rtype, fields, partial=partial, codes=codes, allow_server_only=server)
    assert isinstance(errors, dict)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    assert set(errors) <= set(fields) | set(
        RECORD_TYPES.get(rtype, RECORD_TYPES["visit"]).fields
    ) | {"record_type"}


@FUZZ
@given(
    st.one_of(
        json_like,
        not_json,
        ODD_TEXT,
        st.from_regex(r"\d{17}[\dX]", fullmatch=True),
        st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    )
)
def test_identity_validators_answer_true_or_false(value):
    assert id_number_valid(value) in (True, False)
    assert phone_valid(value) in (True, False)
    if id_number_valid(value):
        assert value.isascii() and len(value) == 18
    if phone_valid(value):
        assert value.isascii()


@FUZZ
@given(st.none() | st.text(max_size=40) | ODD_TEXT)
def test_masks_hide_the_middle(value):
    for mask, keep_head, keep_tail in ((mask_id_number, 4, 4), (mask_phone, 3, 4)):
        masked = mask(value)
        if not value:
            assert masked == value
            continue
        assert len(masked) == len(value)
        if len(value) <= keep_head + keep_tail:
            assert set(masked) == {"*"}
        else:
            assert masked[keep_head:-keep_tail] == "*" * (len(value) - keep_head - keep_tail)


@FUZZ
@given(
    st.sampled_from(sorted(RECORD_TYPES)),
    st.from_regex(r"\d{17}[\dX]", fullmatch=True),
    st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
)
def test_masked_snapshot_shows_no_birth_date_or_full_phone(rtype, id_number, phone):
    spec = RECORD_TYPES[rtype].fields
    values = {
        "id_number": id_number,
        "resident_id_number": id_number,
        "phone": phone,
        "resident_phone": phone,
        "tags": ["dibao"],
    }
    fields = {k: v for k, v in values.items() if k in spec and spec[k].sensitive}
    conflicts = {k: [{"value": v, "author": "a"}] for k, v in fields.items()}
    masked = mask_snapshot({"type": rtype, "fields": fields, "conflicts": conflicts})
    for name, value in fields.items():
        assert masked["fields"][name] != value
        assert masked["conflicts"][name][0]["value"] == masked["fields"][name]
        if name != "tags":
            assert set(masked["fields"][name][4:-4]) == {"*"}  # birth date, subscriber number


# --- 3. the push endpoint over HTTP -----------------------------------------------------------


class _Pusher:
    """A signed-in device that remembers every result the server gave it."""

    def __init__(self, client: Any, login: Any) -> None:
        self.client, self.login = client, login
        self.accepted: set[str] = set()  # record ids some create was applied/duplicated for
        self.rejected_creates: set[str] = set()
        self.known: list[str] = []
        self.seqs: list[int] = []

    def push(self, body: Any) -> Any:
        return self.client.post("/api/v1/sync/push", json=body, headers=self.login.headers)


@st.composite
def push_operations(draw: st.DrawFn, device_id: str, known: list[str], seqs: list[int]) -> Any:
    """Mostly plausible operations (right device, valid or nearly valid fields), some mutated."""
    kind = draw(st.sampled_from([OpKind.CREATE, OpKind.CREATE, *OpKind]))
    rtype = draw(st.sampled_from(sorted(RECORD_TYPES)))
    spec = RECORD_TYPES[rtype]
    pick, fresh = draw(st.integers(0, 15)), draw(uuids)  # the same draws whatever is known
    rid = known[pick] if pick < len(known) else fresh
    good = {
        "visit": {"visited_at": "2026-11-27T09:00:00+08:00"},
        "household": {"address": "1号楼"},
        "resident": {"name": "甲"},
        "dispute": {"title": "噪音", "category": "0201"},
    }[rtype]
    names = st.sampled_from(sorted(spec.fields)) | st.sampled_from(["id", "review_status"])
    text_field = {"visit": "findings", "dispute": "description"}.get(rtype, "note")
    extra = draw(
        st.just({})
        | st.dictionaries(names, json_values, max_size=2)
        | st.fixed_dictionaries({text_field: st.text(max_size=30)})
    )
    grid = draw(st.sampled_from([GRID_1, GRID_1, GRID_2, "990101001001099", "x"]))
    fields = (
        {"grid_code": grid, **good, **extra}
        if kind is OpKind.CREATE
        else (extra or {text_field: "n"})
    )
    item = {"id": draw(uuids), "text": draw(st.text(max_size=20))}
    # Mostly a fresh key; one in eight reuses an earlier one (a replay, or a clash).
    replay, earlier = draw(st.integers(0, 7)) == 0, draw(st.integers(0, 10**6))
    seq = seqs[earlier % len(seqs)] if replay and seqs else len(seqs) + 1
    seqs.append(seq)
    ahead, wall = draw(st.integers(0, 9)) == 0, draw(st.integers(1_7 * 10**11, 1_79 * 10**10))
    wall = 2_000_000_000_000 if ahead else wall  # a tablet set to 2033
    if draw(st.booleans()):
        item = {**item, "action": draw(st.sampled_from(["report", "accept", "close", "??"]))}
    op = {
        "device_id": device_id,
        "seq": seq,
        "kind": str(kind),
        "record_type": rtype,
        "record_id": rid,
        "base_version": draw(st.integers(0, 3)),
        "hlc": str(HLC(wall, 0, "dev")),
        "author": "x",
    }
    if kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        op["fields"] = fields
    if kind is OpKind.APPEND:
        op["collection"] = draw(st.sampled_from([*spec.collections, "nope"]))
        op["item"] = item
    if draw(st.integers(0, 4)) == 0:
        return draw(mutated(st.just(op), JSON_ODD))
    return op


JSON_ODD = st.one_of(json_like, st.sampled_from(HUGE[2:]))  # what a JSON body can carry


@pytest.fixture
def pusher(client, make_user, make_unit, login) -> _Pusher:
    make_unit(GRID_2)
    return _Pusher(client, login(make_user()))


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_push_endpoint_answers_every_batch_and_stores_no_rejected_record(pusher, test_app, data):
    device = pusher.login.device_id
    ops = data.draw(st.lists(push_operations(device, pusher.known, pusher.seqs), max_size=8))
    body: Any = {"device_id": device, "operations": ops}
    if data.draw(st.integers(0, 9)) == 0:
        body = data.draw(mutated(st.just(body), JSON_ODD))
    response = pusher.push(body)
    event(f"HTTP {response.status_code}")
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert_error(response, response.status_code)
        return
    answer = response.get_json()
    ops = body["operations"]  # a mutated body that still got a 200 kept a list here
    assert len(answer["results"]) == len(ops)
    for op, result in zip(ops, answer["results"], strict=True):
        assert result["status"] in {"applied", "duplicate", "conflict", "rejected"}
        rid = op.get("record_id") if isinstance(op, dict) else None
        if not isinstance(rid, str):
            continue
        if result["status"] == "rejected":
            assert result.get("reason"), result
        if "rejected" in (result["status"], result.get("original")):  # or a replay of one
            if op.get("kind") == "create":
                pusher.rejected_creates.add(rid)
        elif op.get("kind") == "create":
            pusher.accepted.add(rid)
            pusher.known.append(rid)
    with test_app.app_context():
        stored = set(db.session.execute(select(Record.id)).scalars())
    assert stored == pusher.accepted  # nothing answered "rejected" was kept; nothing lost
    assert not (pusher.rejected_creates - pusher.accepted) & stored


def test_push_with_uuid_case_variants_is_one_record(pusher, test_app):
    """The same record id in upper case is the same record (ids are normalised on decode)."""
    rid = str(uuid.uuid4())
    device = pusher.login.device_id
    base = {
        "device_id": device,
        "kind": "create",
        "record_type": "household",
        "base_version": 0,
        "hlc": "1700000000000:00000:dev",
        "author": "x",
        "fields": {"grid_code": GRID_1, "address": "1号楼"},
    }
    response = pusher.push(
        {
            "device_id": device,
            "operations": [
                {**base, "seq": 1, "record_id": rid},
                {**base, "seq": 2, "record_id": rid.upper()},
            ],
        }
    )
    assert response.status_code == 200
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses[0] == "applied" and statuses[1] != "applied", statuses
    with test_app.app_context():
        assert db.session.execute(select(Record.id)).scalars().all() == [rid]
