"""The fast paths of decoding and validation give exactly what the careful code gives.

``tests/sync/reference.py`` holds the code as it was before the fast paths. For any input, valid
or not, the new code must return an equal result, or raise the same error class with the same
message and context. Digests depend on ``canonical_json``, so its text must stay byte-identical
to the standard library's spelling for every value.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import HLC, RECORD_TYPES, Operation, OpKind, SyncError, canonical_json, validate_fields
from sync import _check as c
from sync.operation import _decode_plain
from sync.validators import id_number_check_digit, id_number_valid

from . import reference as ref

PROPERTY = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

# --- values ------------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\x1f\x7f",
        '"\\/',
        "\n\r\t\b\f",
        "\ud800",  # a lone surrogate
        "x\udfff",
        "\u2028\u2029",
        "\u202e\u200b",
        "١٧٠٠",  # Arabic-Indic digits
        "邻里" * 3,
        "🏠",
        "é",
    ]
)
texts = (
    st.text(max_size=12)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
    | ODD_TEXT
)
ints = st.integers(-(2**70), 2**70) | st.sampled_from(
    [0, -1, 2**53, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64]
)
floats = st.floats() | st.sampled_from([0.0, -0.0, 1e16, 1e308, 5e-324, 1.5, math.nan, math.inf])
scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(texts, kids, max_size=4),
    max_leaves=20,
)
not_json = st.sampled_from([(1, 2), {1, 2}, b"x", {1: "a"}, {None: 1}, {(1,): 2}, object()])


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The value returned, or (class, message, context) of the SyncError raised."""
    try:
        return ("ok", fn(*args, **kwargs))
    except SyncError as exc:
        return ("error", type(exc), exc.message, exc.context)


# --- operations --------------------------------------------------------------------------------

uuids = st.uuids().map(str)
hlcs = st.builds(
    lambda wall, counter, node: str(HLC(wall, counter, node)),
    st.integers(0, 9_999_999_999_999),
    st.integers(0, 99_999),
    st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True),
)


@st.composite
def operations(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(OpKind)))
    rtype = draw(st.sampled_from(sorted(RECORD_TYPES)))
    spec = RECORD_TYPES[rtype]
    names = st.sampled_from(sorted(spec.fields)) | texts
    data: dict[str, Any] = {
        "device_id": draw(st.from_regex(r"[A-Za-z0-9\-]{1,20}", fullmatch=True) | texts),
        "seq": draw(st.integers(1, 2**40) | ints),
        "kind": str(kind),
        "record_type": rtype,
        "record_id": draw(uuids | uuids.map(str.upper) | texts),
        "base_version": draw(st.integers(0, 100) | ints),
        "hlc": draw(hlcs),
        "author": draw(texts),
    }
    if kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        data["fields"] = draw(st.dictionaries(names, json_values | not_json, max_size=6))
    if kind is OpKind.APPEND:
        data["collection"] = draw(st.sampled_from(spec.collections) | texts)
        data["item"] = {"id": draw(uuids | uuids.map(str.upper)), "text": draw(texts)}
        data["item"].update(draw(st.dictionaries(texts, json_values, max_size=2)))
    if draw(st.booleans()):
        data["reason"] = draw(st.none() | texts | st.text(min_size=990, max_size=1010))
    if draw(st.booleans()):
        data["made_seq"] = draw(st.none() | st.integers(1, 2**40) | ints)
    if draw(st.booleans()):
        data["made_hlc"] = draw(st.none() | hlcs | texts | ints)
    if draw(st.booleans()):
        nonces = st.from_regex(r"[A-Za-z0-9_\-]{1,32}", fullmatch=True)
        data["nonce"] = draw(st.none() | nonces | texts | ints | st.text(min_size=33))
    return data


@st.composite
def damaged(draw: st.DrawFn) -> Any:
    """An operation with one key dropped or given an odd value, or not an operation at all."""
    data = draw(operations())
    action = draw(st.sampled_from(["keep", "drop", "replace", "whole"]))
    key = draw(st.sampled_from(sorted(data)))
    if action == "drop":
        del data[key]
    elif action == "replace":
        data[key] = draw(json_values | not_json | st.text(min_size=60, max_size=120))
    elif action == "whole":
        return draw(json_values | not_json)
    return data


@PROPERTY
@given(damaged())
def test_from_dict_matches_the_careful_decoder(data):
    assert _outcome(Operation.from_dict, data) == _outcome(ref.from_dict, data)


@PROPERTY
@given(damaged())
def test_fast_path_accepts_only_what_the_careful_decoder_accepts(data):
    fast = _decode_plain(Operation, data)
    if fast is not None:
        assert fast == ref.from_dict(data)


def test_fast_path_takes_the_common_operations():
    """A visit of plain JSON, and each kind, decode on the fast path."""
    base = {
        "device_id": "dev-1",
        "seq": 3,
        "record_type": "visit",
        "record_id": "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6e",
        "base_version": 0,
        "hlc": "1700000000000:00000:dev-1",
        "author": "",
    }
    fields = {"findings": "邻里 ok", "service_needs": ["elderly"], "resident_name": "胡秋"}
    cases = [
        {**base, "kind": "create", "fields": fields},
        {**base, "kind": "update", "fields": {"involved_amount": 12.5}},
        {**base, "kind": "resolve", "fields": fields, "reason": "checked"},
        {**base, "kind": "update", "fields": {"findings": "again"}, "made_seq": 1},
        {**base, "kind": "update", "fields": {"findings": "x"}, "made_hlc": base["hlc"]},
        {**base, "kind": "delete", "nonce": "Zq3_-x8AbCd"},
        {**base, "kind": "delete"},
        {
            **base,
            "kind": "append",
            "collection": "notes",
            "item": {"id": "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6f", "text": "note"},
        },
    ]
    for data in cases:
        fast = _decode_plain(Operation, data)
        assert fast is not None, data["kind"]
        assert fast == ref.from_dict(data)


@PROPERTY
@given(damaged())
def test_attribution_replaces_only_the_author_on_both_decoders(data):
    """The server attributes an operation to its user at decoding: the same operation and the
    same errors as decoding it and then setting the author (what was sent is still checked)."""
    plain = _outcome(ref.from_dict, data)
    attributed = _outcome(lambda d: Operation.from_dict(d, author="42"), data)
    careful = _outcome(lambda d: Operation._decode(d, "42"), data)
    if plain[0] == "ok":
        expected = ("ok", replace(ref.from_dict(data), author="42"))
        assert attributed == careful == expected
    else:
        assert attributed == careful == plain


@pytest.mark.parametrize(
    "change",
    [
        {"fields": {"findings": "x" * 4096}},  # may be within the limit: the careful path decides
        {"fields": {"findings": "x\ud800"}},
        {"fields": {"n": [2**64]}},
        {"fields": {"n": math.nan}},
        {"fields": {"n": (1, 2)}},
        {"fields": {"": 1}},
        {"fields": {"é": 1}},
        {"seq": True},
        {"made_seq": 0},
        {"made_seq": False},
        {"made_hlc": "1700000000000:0:dev-1"},
        {"made_hlc": 7},
        {"nonce": ""},
        {"nonce": "a b"},
        {"nonce": "x" * 33},
        {"record_id": "0190D5C4-7A10-7C3E-9B7E-3F1C2B4A5D6E"},
        {"author": None},
        {"kind": "merge"},
    ],
)
def test_unusual_operations_take_the_careful_path_and_decode_the_same(change):
    data = {
        "device_id": "dev-1",
        "seq": 3,
        "kind": "create",
        "record_type": "visit",
        "record_id": "0190d5c4-7a10-7c3e-9b7e-3f1c2b4a5d6e",
        "base_version": 0,
        "hlc": "1700000000000:00000:dev-1",
        "fields": {},
        **change,
    }
    assert _decode_plain(Operation, data) is None
    assert _outcome(Operation.from_dict, data) == _outcome(ref.from_dict, data)


# --- json_value and plain_size -----------------------------------------------------------------


def _deep(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


@PROPERTY
@given(
    json_values | not_json | st.integers(1, 3000).map(_deep),
    st.sampled_from([2, 8, 20, 64, 300, 8 * 1024, c.MAX_VALUE_BYTES]),
)
def test_json_value_matches_the_careful_check(value, max_bytes):
    assert _outcome(c.json_value, value, "v", max_bytes=max_bytes) == _outcome(
        ref.json_value, value, "v", max_bytes=max_bytes
    )


@PROPERTY
@given(json_values)
def test_plain_size_is_a_bound_on_the_encoded_size(value):
    size = c.plain_size(value, 10**9)
    if size is not None:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        assert len(encoded.encode("utf-8")) <= size


def test_plain_size_refuses_circular_values():
    loop: list[Any] = []
    loop.append(loop)
    assert c.plain_size(loop, 10**9) is None
    assert _outcome(c.json_value, loop, "v") == _outcome(ref.json_value, loop, "v")


# --- validate_fields and the ID number -----------------------------------------------------------

field_names = st.sampled_from(
    sorted({n for t in RECORD_TYPES.values() for n in t.fields} | {"id", "_deleted", "version"})
) | st.text(max_size=10)
id_numbers = st.from_regex(r"\d{17}[\dX]", fullmatch=True) | st.from_regex(
    r"[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}", fullmatch=True
).map(lambda first17: first17 + id_number_check_digit(first17))
field_values = (
    json_values
    | not_json
    | id_numbers
    | uuids
    | uuids.map(str.upper)
    | st.from_regex(r"\d{15}", fullmatch=True)
    | st.from_regex(r"1[3-9]\d{9}", fullmatch=True)
    | st.dates().map(str)
    | st.datetimes().map(lambda d: d.isoformat())
    | st.lists(st.sampled_from(["elderly", "", "x" * 65, "disabled", 3]), max_size=4)
)
code_books = st.none() | st.dictionaries(
    st.sampled_from(["genders", "resident_tags", "visit_types", "dispute_categories"]),
    st.sets(st.sampled_from(["elderly", "disabled", "key", "male", "a"]), max_size=3),
    max_size=4,
)


@PROPERTY
@given(
    st.sampled_from(sorted(RECORD_TYPES)) | st.text(max_size=10),
    st.dictionaries(field_names, field_values, max_size=10),
    st.booleans(),
    st.booleans(),
    code_books,
)
def test_validate_fields_matches_the_careful_checks(rtype, fields, partial, server, codes):
    new = validate_fields(rtype, fields, partial=partial, codes=codes, allow_server_only=server)
    old = ref.validate_fields(rtype, fields, partial=partial, codes=codes, allow_server_only=server)
    assert new == old
    assert list(new) == list(old)  # the same order too


@PROPERTY
@given(id_numbers | texts | st.text("0123456789X", min_size=17, max_size=19))
def test_id_number_checks_match_the_careful_ones(value):
    assert id_number_valid(value) == ref.id_number_valid(value)
    if len(value) >= 17 and value[:17].isascii() and value[:17].isdigit():
        assert id_number_check_digit(value[:17]) == ref.id_number_check_digit(value[:17])


# --- canonical JSON ------------------------------------------------------------------------------


def _stdlib(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=600, deadline=None, database=None)
@given(json_values)
def test_canonical_json_is_the_standard_library_spelling(value):
    try:
        expected: Any = ("ok", _stdlib(value))
    except (TypeError, ValueError, RecursionError) as exc:
        expected = ("error", type(exc), str(exc))
    try:
        got: Any = ("ok", canonical_json(value))
    except (TypeError, ValueError, RecursionError) as exc:
        got = ("error", type(exc), str(exc))
    assert got == expected


@PROPERTY
@given(operations())
def test_operation_digest_is_over_the_standard_library_spelling(data):
    try:
        op = Operation.from_dict(data)
    except SyncError:
        return
    payload = op.to_dict()
    del payload["author"]
    assert op.canonical() == _stdlib(payload)
    assert op.digest() == hashlib.sha256(_stdlib(payload).encode()).hexdigest()
