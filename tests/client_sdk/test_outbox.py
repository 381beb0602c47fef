"""The push's fast paths give what the full decoders give: stored ops are their wire form, the
body built from them is the body of ``PushRequest.to_dict()``, the push answer decodes to the
same results and errors as ``PushResponse.from_dict``, and answers read by orjson are the values
``json.loads`` reads."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import ProtocolError, Response
from client_sdk.api import _decode
from client_sdk.outbox import Outgoing, push_body, push_results
from client_sdk.store import Store
from sync import Operation, OpKind, PushRequest, PushResponse, SyncError

from .conftest import GRID_1


def _old_body(device_id: str, ops: list[Operation]) -> bytes:
    """The push body as the SDK built it before: decode, to_dict, json.dumps."""
    body = PushRequest(device_id, list(ops)).to_dict()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _same_as_pending(store: Store, device_id: str) -> None:
    ops = store.pending()
    entries = store.outgoing(limit=10_000)
    assert [entry.operation() for entry in entries] == ops
    assert [(e.seq, e.key, e.record_id) for e in entries] == [
        (op.seq, op.key, op.record_id) for op in ops
    ]
    for entry, op in zip(entries, ops, strict=True):  # stored exactly as a push sends it
        assert (
            entry.wire
            == json.dumps(op.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
        )
    assert push_body(device_id, entries) == _old_body(device_id, ops)


def test_ops_the_field_api_writes_are_sent_as_stored(offline_device):
    device = offline_device()
    device.store.set(user={"username": '网格员 "甲"', "role": "worker"})
    home = device.create_household(grid_code=GRID_1, address="幸福里 3 栋 301\n(东)")
    visit = device.record_visit(grid_code=GRID_1, findings="独居 \\ 老人", notes=["下周复访"])
    device.update(home["id"], head_name="张三")
    device.add_note(visit["id"], '带 "药"')
    device.delete(home["id"])
    kinds = {op.kind for op in device.store.pending()}
    assert kinds == {OpKind.CREATE, OpKind.UPDATE, OpKind.APPEND, OpKind.DELETE}
    _same_as_pending(device.store, device.device_id)
    assert device.store.outgoing(limit=2) == device.store.outgoing(limit=10_000)[:2]


_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5).filter(str.isprintable), inner, max_size=4)
    ),
    max_leaves=12,
)
_name = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@st.composite
def _operation(draw: Any, seq: int, device_id: str) -> Operation:
    kind = draw(st.sampled_from([OpKind.CREATE, OpKind.UPDATE, OpKind.DELETE, OpKind.APPEND]))
    record_type = "dispute" if kind is OpKind.APPEND else "household"
    fields = draw(st.dictionaries(_name, _json, min_size=kind is not OpKind.CREATE, max_size=5))
    item = None
    if kind is OpKind.APPEND:
        item = {"id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))}
        item.update(draw(st.dictionaries(_name.filter(lambda k: k != "id"), _json, max_size=3)))
    return Operation(
        device_id,
        seq,
        kind,
        record_type,
        str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        draw(st.integers(0, 2**40)),
        f"{1_780_000_000_000 + seq}:00000:node-1",
        draw(_name),
        fields if kind in (OpKind.CREATE, OpKind.UPDATE) else {},
        "steps" if kind is OpKind.APPEND else None,
        item,
        draw(st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=30)),
    )


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(["d-1", 'dev "quoted"', "dev\\back", "设备-1", "d\u2028x"]))
def test_any_stored_op_is_sent_as_the_full_decoder_would_send_it(data, device_id):
    store = Store(":memory:")
    try:
        for seq in range(1, data.draw(st.integers(1, 4)) + 1):
            op = data.draw(_operation(seq, device_id))
            assert Operation.from_dict(op.to_dict()) == op  # a valid operation
            store.add_op(op.record_id, lambda s, b, h, op=op: op)
        _same_as_pending(store, device_id)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("wire", "key"),
    [
        (b'{"device_id":"d1","seq":3}', "d1:3"),
        (b'{"device_id":"d\\"1","seq":3}', 'd"1:3'),  # an escape: decoded as JSON
        (b'{"seq":3,"device_id":"d1"}', "d1:3"),  # another member first
        (b'{"device_id":"\xe8\xae\xbe\xe5\xa4\x87","seq":3}', "设备:3"),
        (b'{"seq":3}', "None:3"),
        (b"[1]", "None:3"),
    ],
)
def test_the_key_of_a_stored_op_names_its_own_device(wire, key):
    assert Outgoing.from_row(3, "r", wire).key == key


def _outcome(decode: Any, answer: Any) -> Any:
    try:
        return decode(answer)
    except SyncError as exc:
        return type(exc), exc.message, exc.context


_USUAL = {"key": "d:1", "status": "applied", "record_id": "r1", "version": 3}


@pytest.mark.parametrize(
    "answer",
    [
        {"results": [_USUAL], "server_time_ms": 5},
        {"results": [], "server_time_ms": 0},
        {"results": [{"status": "duplicate"}, {**_USUAL, "version": None}], "server_time_ms": 1},
        {"results": [{**_USUAL, "key": None, "record_id": None}], "server_time_ms": 1},
        {"results": [{**_USUAL, "status": "rejected", "reason": "scope", "message": "不在"}]}
        | {"server_time_ms": 1},
        {"results": [{**_USUAL, "status": "duplicate", "original": "rejected"}]}
        | {"server_time_ms": 1},
        {"results": [{**_USUAL, "status": "conflict", "conflicts": ["a", "b"]}]}
        | {"server_time_ms": 1},
        {"results": [{**_USUAL, "original": None, "conflicts": []}], "server_time_ms": 1},
        {"results": [{**_USUAL, "key": "设备:1"}], "server_time_ms": 1},
        {"results": [{**_USUAL, "key": "k" * 201}], "server_time_ms": 1},
        {"results": [{**_USUAL, "record_id": "r" * 201}], "server_time_ms": 1},
        {"results": [{**_USUAL, "key": ""}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": True}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": -1}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": 2**63}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": 2**63 - 1}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": 1.0}], "server_time_ms": 1},
        {"results": [{**_USUAL, "version": "3"}], "server_time_ms": 1},
        {"results": [{**_USUAL, "status": "applied "}], "server_time_ms": 1},
        {"results": [{**_USUAL, "status": ["applied"]}], "server_time_ms": 1},
        {"results": [{**_USUAL, "status": None}], "server_time_ms": 1},
        {"results": [{**_USUAL, "key": 7}], "server_time_ms": 1},
        {"results": [{**_USUAL, "extra": 1}], "server_time_ms": 1},
        {"results": [_USUAL, "applied", {**_USUAL, "status": "x"}], "server_time_ms": 1},
        {"results": [{"key": "d:1"}], "server_time_ms": 1},
        {"results": [_USUAL], "server_time_ms": -1},
        {"results": [{**_USUAL, "status": "x"}], "server_time_ms": -1},
        {"results": [_USUAL], "server_time_ms": True},
        {"results": [_USUAL], "server_time_ms": 2**63},
        {"results": [_USUAL]},
        {"results": {"0": _USUAL}, "server_time_ms": 1},
        {"results": [_USUAL] * 100_001, "server_time_ms": 1},
        {"server_time_ms": 1},
        [_USUAL],
        None,
    ],
)
def test_push_results_are_what_the_full_decoder_gives(answer):
    full = _outcome(lambda a: PushResponse.from_dict(a).results, answer)
    assert _outcome(push_results, answer) == full


_result_value = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.sampled_from(["applied", "duplicate", "conflict", "rejected", "d:1", "", "设备"])
    | st.text(max_size=3)
    | st.lists(st.text(max_size=2), max_size=2)
)
_result = st.dictionaries(
    st.sampled_from(["key", "status", "record_id", "version", "reason", "original", "x"]),
    _result_value,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_result | _result_value, max_size=4),
    st.integers(min_value=-5, max_value=2**64) | st.booleans() | st.none(),
)
def test_any_push_answer_decodes_as_the_full_decoder_decodes_it(results, stamp):
    answer = {"results": results, "server_time_ms": stamp}
    full = _outcome(lambda a: PushResponse.from_dict(a).results, answer)
    assert _outcome(push_results, answer) == full


def _typed(value: Any) -> str:
    """A spelling that tells 1 from 1.0 and True, and -0.0 from 0.0."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


@pytest.mark.parametrize(
    "content",
    [
        b'{"a":[1,2.5,-0.0,true,null,"x\\u00e9"]}',
        b'{"v":18446744073709551615,"w":-9223372036854775808}',
        b'{"v":18446744073709551616}',  # 2**64: beyond orjson's integers
        b'{"v":-9223372036854775809}',
        b'{"v":123456789012345678901234567890}',
        b'{"f":1.2345678901234567890123}',
        b'{"id":"123456789012345678901234","n":1}',
        b'{"v":NaN,"w":Infinity}',
        b'{"v":1e400}',
        b"\xef\xbb\xbf[1]",  # a UTF-8 byte order mark
        '{"名":"值"}'.encode("utf-16"),
        b'["\\ud800"]',  # a lone surrogate
        b'{"a":1,"a":2}',
        b" [1] \n",
    ],
)
def test_answers_decode_to_what_json_loads_gives(content):
    assert _typed(_decode(Response(200, content), "/p")) == _typed(json.loads(content))


@pytest.mark.parametrize("content", [b"", b"<html>", b"\xff\xfe\x00", b'{"a":1} x', b"[01]"])
def test_answers_that_are_not_json_are_refused(content):
    with pytest.raises(ProtocolError, match="not JSON"):
        _decode(Response(200, content), "/p")


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_answer_decodes_to_what_json_loads_gives(value):
    content = json.dumps(value, ensure_ascii=False).encode()
    assert _typed(_decode(Response(200, content), "/p")) == _typed(json.loads(content))


class _Recording:
    """Wraps a transport; keeps the (decompressed) body of every push."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.bodies = inner, []

    def handle(self, request: Any) -> Any:
        if request.path.endswith("/push"):
            content = request.content
            if request.headers.get("Content-Encoding") == "gzip":
                content = gzip.decompress(content)
            self.bodies.append(content)
        return self.inner.handle(request)

    def close(self) -> None:
        self.inner.close()


def test_a_push_sends_the_body_of_push_request_to_dict(make_user, make_device):
    recorders: list[_Recording] = []

    def recording(inner: Any) -> _Recording:
        recorders.append(_Recording(inner))
        return recorders[-1]

    device = make_device(make_user(grids=[GRID_1]), transport=recording)
    for n in range(12):
        home = device.create_household(grid_code=GRID_1, address=f'幸福里 {n} 号 "东"')
    device.update(home["id"], head_name="张三")
    device.record_visit(grid_code=GRID_1, findings="独居", notes=["复访"])
    ops = device.store.pending()
    report = device.sync()
    assert report.pushed == len(ops) and report.rejected == 0
    # The last (here the only) batch also asks for the first pull page (protocol 2), after
    # the operations: the body is PushRequest.to_dict()'s, with "pull" added at its end; the
    # page leaves out the device's own creates (protocol 3).
    [body] = recorders[0].bodies
    ask = b',"pull":{"cursor":0,"limit":2000,"scope_token":null,"echo":false}}'
    assert body.endswith(ask)
    assert body[: -len(ask)] + b"}" == _old_body(device.device_id, ops)
