"""The pull's fast paths give what the full paths give: a pull page decodes to the same page and
the same errors as ``PullResponse.from_dict``, snapshots orjson read are stored as the same
values, and a push batch's results are applied as the reference loop applies them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import ProtocolError, Response
from client_sdk.api import _read
from client_sdk.inbox import Snapshots, pull_page
from client_sdk.store import Store
from client_sdk.syncpass import SyncPass
from sync import TRANSIENT_REASONS, Operation, OpKind, OpResult, Outcome, PullResponse, SyncError

from .conftest import GRID_1

_RID = "6f1c2f9e-3b7a-4c55-9a8e-0d2b7c1e5f43"
_CHANGE = {
    "type": "visit",
    "id": _RID,
    "version": 2,
    "grid_code": GRID_1,
    "deleted": False,
    "fields": {"grid_code": GRID_1, "findings": "独居", "service_needs": ["elderly"]},
    "conflicts": {},
    "collections": {},
    "review": None,
}
_SCOPE = {"prefixes": [GRID_1], "token": "t1"}
_PAGE = {
    "changes": [_CHANGE],
    "removals": [],
    "cursor": 7,
    "has_more": False,
    "reset": False,
    "scope": _SCOPE,
    "checksum": {"count": 1, "version_sum": 2},
}


def _outcome(decode: Any, answer: Any) -> Any:
    try:
        return decode(answer)
    except SyncError as exc:
        return type(exc), exc.message, exc.context


def _same_as_full(answer: Any) -> None:
    full = _outcome(PullResponse.from_dict, answer)
    fast = _outcome(pull_page, answer)
    assert fast == full
    if isinstance(full, PullResponse):
        assert isinstance(fast.changes, Snapshots)
        assert [type(c) for c in fast.changes] == [dict] * len(full.changes)


def _change(**changed: Any) -> dict[str, Any]:
    return {k: v for k, v in {**_CHANGE, **changed}.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize(
    "answer",
    [
        _PAGE,
        {**_PAGE, "changes": []},
        {**_PAGE, "changes": [_CHANGE] * 3, "has_more": True, "checksum": None},
        {**_PAGE, "removals": [{"record_id": _RID, "reason": "scope"}], "reset": True},
        {k: v for k, v in _PAGE.items() if k not in ("removals", "reset", "checksum")},
        {**_PAGE, "changes": [_change(conflicts=None, collections=_DROP, review=_DROP)]},
        {**_PAGE, "changes": [_change(conflicts=[], collections=0)]},  # falsy: the full check
        {**_PAGE, "changes": [_change(grid_code=_DROP, extra={"x": 1})]},
        {**_PAGE, "changes": [_change(type=None)]},  # present is enough
        {**_PAGE, "changes": [_change(id=_RID.upper())]},  # not canonical: the full check
        {**_PAGE, "changes": [_change(deleted=True, fields={})]},
        {**_PAGE, "changes": [_change(version=2**63 - 1)]},
        # malformed changes
        {**_PAGE, "changes": [_change(type=_DROP)]},
        {**_PAGE, "changes": [_change(id=_DROP)]},
        {**_PAGE, "changes": [_change(id="not-a-uuid")]},
        {**_PAGE, "changes": [_change(id=7)]},
        {**_PAGE, "changes": [_change(version=0)]},
        {**_PAGE, "changes": [_change(version=2**63)]},
        {**_PAGE, "changes": [_change(version=True)]},
        {**_PAGE, "changes": [_change(version=2.0)]},
        {**_PAGE, "changes": [_change(version="2")]},
        {**_PAGE, "changes": [_change(fields=[])]},
        {**_PAGE, "changes": [_change(fields=None)]},
        {**_PAGE, "changes": [_change(fields=_DROP)]},
        {**_PAGE, "changes": [_change(deleted=0)]},
        {**_PAGE, "changes": [_change(deleted=_DROP)]},
        {**_PAGE, "changes": [_change(conflicts=[1])]},
        {**_PAGE, "changes": [_change(collections="x")]},
        {**_PAGE, "changes": [_CHANGE, "change", _change(version=0)]},
        {**_PAGE, "changes": [_CHANGE, None]},
        {**_PAGE, "changes": [_CHANGE] * 100_001},
        {**_PAGE, "changes": {"0": _CHANGE}},
        {**_PAGE, "changes": None},
        {k: v for k, v in _PAGE.items() if k != "changes"},
        # malformed rest of the page, with usual and unusual changes
        {**_PAGE, "has_more": "no"},
        {**_PAGE, "has_more": "no", "changes": [_change(version=0)]},
        {**_PAGE, "reset": None},
        {**_PAGE, "removals": [{"record_id": "x"}]},
        {**_PAGE, "removals": [{"record_id": "x"}], "changes": [_change(fields=1)]},
        {**_PAGE, "removals": {}},
        {**_PAGE, "cursor": -1},
        {**_PAGE, "cursor": True},
        {k: v for k, v in _PAGE.items() if k != "cursor"},
        {**_PAGE, "scope": {"prefixes": [GRID_1]}},
        {k: v for k, v in _PAGE.items() if k != "scope"},
        {**_PAGE, "checksum": {"count": 1}},
        {**_PAGE, "checksum": []},
        [_CHANGE],
        None,
        "page",
    ],
)
def test_pull_pages_are_what_the_full_decoder_gives(answer):
    _same_as_full(answer)


_value = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=2**64)
    | st.floats(allow_nan=False)
    | st.sampled_from([_RID, _RID.upper(), "x", "", "visit"])
    | st.lists(st.integers(0, 2), max_size=2)
    | st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2)
)
_member = st.sampled_from(
    ["type", "id", "version", "grid_code", "deleted", "fields", "conflicts", "collections", "x"]
)


@st.composite
def _any_change(draw: Any) -> Any:
    change = dict(_CHANGE)
    for name in draw(st.lists(_member, max_size=3)):
        if draw(st.booleans()):
            change.pop(name, None)
        else:
            change[name] = draw(_value)
    return change if draw(st.integers(0, 9)) else draw(_value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_any_change(), max_size=4),
    st.dictionaries(
        st.sampled_from(["removals", "cursor", "has_more", "reset", "scope", "checksum"]),
        _value,
        max_size=2,
    ),
    st.sets(st.sampled_from(["cursor", "has_more", "scope", "removals"]), max_size=1),
)
def test_any_pull_page_decodes_as_the_full_decoder_decodes_it(changes, changed, dropped):
    answer = {**_PAGE, "changes": changes, **changed}
    _same_as_full({k: v for k, v in answer.items() if k not in dropped})


def test_the_page_carries_the_plain_mark_either_way():
    assert pull_page(_PAGE, plain=True).changes.plain is True
    assert pull_page(_PAGE).changes.plain is False
    unusual = {**_PAGE, "changes": [_change(conflicts=[])]}
    assert pull_page(unusual, plain=True).changes.plain is True


@pytest.mark.parametrize(
    ("content", "plain"),
    [
        (b'{"a":[1,2.5,"\\u00e9"]}', True),
        (b'{"v":NaN}', False),
        (b'{"v":1e400}', False),
        (b'{"id":"1234567890123456789"}', False),  # 19 digits in a row: the standard library
        (b'["\\ud800"]', False),
    ],
)
def test_the_api_says_whether_orjson_read_the_answer(content, plain):
    value, by_orjson = _read(Response(200, content), "/p")
    assert by_orjson is plain
    assert json.dumps(value) == json.dumps(json.loads(content))


def _stored(snaps: list[dict[str, Any]]) -> list[Any]:
    store = Store(":memory:")
    try:
        with store.tx() as conn:
            Store.save_snapshots(conn, snaps, 0)
        rows = store.db.execute("SELECT snapshot FROM records ORDER BY rowid").fetchall()
        return [json.loads(text) for (text,) in rows]
    finally:
        store.close()


def _typed(value: Any) -> str:
    """A spelling that tells 1 from 1.0 and True, and -0.0 from 0.0."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), _json, max_size=5), min_size=1, max_size=3))
def test_snapshots_orjson_read_are_stored_as_the_same_values(fields):
    answer = {
        **_PAGE,
        "changes": [_change(id=str(uuid.UUID(int=n + 1)), fields=f) for n, f in enumerate(fields)],
    }
    content = json.dumps(answer, ensure_ascii=False).encode()
    value, plain = _read(Response(200, content), "/p")
    page = pull_page(value, plain=plain)
    assert page.changes.plain is plain  # mostly True: not with a run of 19 digits
    assert _typed(_stored(page.changes)) == _typed(_stored(list(page.changes)))
    assert _typed(_stored(page.changes)) == _typed(json.loads(content)["changes"])


def test_deep_snapshots_orjson_cannot_write_are_stored_by_the_standard_library():
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    snaps = Snapshots([_change(fields={"deep": deep})], plain=True)
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(snaps[0])
    assert _stored(snaps) == [snaps[0]]


def test_a_page_the_standard_library_read_keeps_its_non_finite_numbers():
    content = json.dumps({**_PAGE, "changes": [_change(fields={"v": float("nan")})]}).encode()
    value, plain = _read(Response(200, content), "/p")
    assert not plain
    page = pull_page(value, plain=plain)
    stored = _stored(page.changes)
    assert stored[0]["fields"]["v"] != stored[0]["fields"]["v"]  # NaN, not null


def test_a_pull_stores_every_snapshot_as_the_server_sent_it(make_user, make_device):
    seen: list[dict[str, Any]] = []

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle(self, request: Any) -> Any:
            response = self.inner.handle(request)
            if request.path.endswith("/pull"):
                seen.extend(json.loads(response.content)["changes"])
            return response

        def close(self) -> None:
            self.inner.close()

    user = make_user(grids=[GRID_1])
    writer = make_device(user)
    for n in range(5):
        writer.record_visit(grid_code=GRID_1, findings=f'第 {n} 户 "独居"', notes=["复访"])
    writer.sync()
    reader = make_device(user, transport=Recording, page_size=2)
    report = reader.sync()
    assert report.pulled == len(seen) == 5 and report.checksum_ok
    rows = dict(reader.store.db.execute("SELECT id, snapshot FROM records").fetchall())
    assert {rid: json.loads(text) for rid, text in rows.items()} == {c["id"]: c for c in seen}


# --- applying push results ----------------------------------------------------------------------


def _old_apply(sync_pass: SyncPass, batch: list[Any], results: list[Any]) -> list[Any]:
    """``SyncPass._apply_results`` as specified (a reference copy: a faster rewrite of the
    method must apply results exactly as this loop does)."""
    again, acks, rejects = [], [], []
    r = sync_pass.report
    with sync_pass.store.tx() as conn:
        for op, result in zip(batch, results, strict=True):
            status = result.status
            if status is Outcome.DUPLICATE and result.original is Outcome.REJECTED:
                status = Outcome.REJECTED
            if status is Outcome.REJECTED and result.reason in TRANSIENT_REASONS:
                again.append((op, result.reason))
                continue
            r.pushed += 1
            if status is Outcome.REJECTED:
                r.rejected += 1
                rejects.append((op, result.reason or "rejected", result.message))
                continue
            r.applied += status is Outcome.APPLIED
            r.duplicates += status is Outcome.DUPLICATE
            r.conflicts += status is Outcome.CONFLICT
            acks.append((op, result.version))
        Store.reject(conn, rejects)
        Store.ack(conn, acks)
    return again


def _device_store(ops: int, pulled: dict[int, int]) -> Store:
    store = Store(":memory:")
    for n in range(ops):
        rid = str(uuid.UUID(int=n + 1))
        store.add_op(
            rid,
            lambda seq, base, last, rid=rid: Operation(
                "dev",
                seq,
                OpKind.CREATE,
                "household",
                rid,
                base,
                f"{1_780_000_000_000 + seq:013d}:0000:dev",
                "w",
                fields={"grid_code": GRID_1, "address": "a"},
            ),
        )
    with store.tx() as conn:
        snaps = [_change(id=str(uuid.UUID(int=n + 1)), version=v) for n, v in pulled.items()]
        Store.save_snapshots(conn, snaps, 0)
    return store


_result = st.builds(
    lambda status, original, reason, version: (status, original, reason, version),
    st.sampled_from(list(Outcome)),
    st.none() | st.sampled_from(list(Outcome)),
    st.none() | st.sampled_from([*TRANSIENT_REASONS, "scope", "validation"]),
    st.none() | st.integers(1, 4),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_result, min_size=1, max_size=8),
    st.dictionaries(st.integers(0, 7), st.integers(1, 4), max_size=4),
    st.booleans(),
)
def test_push_results_are_applied_as_the_plain_loop_applied_them(answers, pulled, keyed):
    states = []
    for apply in (SyncPass._apply_results, _old_apply):
        store = _device_store(len(answers), pulled)
        try:
            sync_pass = SyncPass(None, store, device_id="dev", now_ms=lambda: 0)  # type: ignore[arg-type]
            batch = store.outgoing(limit=100)
            results = [
                OpResult(op.key if keyed else None, status, op.record_id, version, reason,
                         "消息" if reason else None, (), original)
                for op, (status, original, reason, version) in zip(batch, answers, strict=True)
            ]  # fmt: skip
            again = apply(sync_pass, batch, results)
            states.append(
                (
                    [(op.seq, reason) for op, reason in again],
                    sync_pass.report,
                    store.db.execute("SELECT * FROM outbox ORDER BY seq").fetchall(),
                    store.db.execute("SELECT * FROM acked ORDER BY seq").fetchall(),
                )
            )
        finally:
            store.close()
    assert states[0] == states[1]


@pytest.mark.parametrize("wrong", [0, 2])
def test_a_result_for_another_operation_is_refused_and_nothing_is_applied(wrong):
    store = _device_store(3, {})
    try:
        sync_pass = SyncPass(None, store, device_id="dev", now_ms=lambda: 0)  # type: ignore[arg-type]
        batch = store.outgoing(limit=100)
        results = [OpResult(op.key, Outcome.APPLIED, op.record_id, 1) for op in batch]
        results[wrong] = OpResult("dev:99", Outcome.APPLIED, batch[wrong].record_id, 1)
        with pytest.raises(ProtocolError, match="result for dev:99"):
            sync_pass._apply_results(batch, results)
        assert store.count("outbox", "state = 'pending'") == 3 and store.count("acked") == 0
    finally:
        store.close()
