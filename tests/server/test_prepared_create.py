"""A create worked out before the write lock (server.store.prepare_create) is written exactly as
the general path writes it: the same row, the same texts, the same merge state, and it names
its device as ``echo_of`` — and once anything else changes the new record in the same batch,
the general path writes it (``echo_of`` cleared)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import jsontext
from server.extensions import db
from server.store import JSONText, RecordBatch, prepare_create
from sync import HybridClock, Operation, OpKind, merge

_CLOCK = HybridClock("prepared")
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_fields = st.dictionaries(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=8), _values, max_size=8
).map(lambda f: {"grid_code": "990101001001001", **f})


def _create(
    fields: dict[str, Any], seq: int = 1, device: str = "dev-prepared", author: str = "15"
) -> Operation:
    return Operation(
        device,
        seq,
        OpKind.CREATE,
        "visit",
        "7934fefd-629d-470a-a95d-0eb88cca34b3",
        0,
        str(_CLOCK.now()),
        author,
        fields=fields,
    )


@contextmanager
def _batch(app: Flask) -> Iterator[RecordBatch]:
    """A record batch in a transaction that is rolled back: rows are built, never written."""
    with app.app_context():
        try:
            yield RecordBatch(db.session, 15)
        finally:
            db.session.rollback()


def _general_row(batch: RecordBatch, op: Operation) -> dict[str, Any]:
    rec = batch.apply(None, op, merge(None, op), grid_code=op.fields["grid_code"])
    assert rec is not None and rec.created is None
    row = batch._row(rec, 41)
    batch.records.clear()
    return {**row, "data": jsontext.dumps(row["data"])}


def _prepared_row(batch: RecordBatch, op: Operation) -> dict[str, Any]:
    rec = batch.create(op, prepare_create(op))
    row = batch._row(rec, 41)
    batch.records.clear()
    assert type(row["data"]) is JSONText
    return {**row, "data": str(row["data"])}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=_fields,
    grid=st.none() | st.text(max_size=16),
    seq=st.integers(min_value=1, max_value=2**63 - 1),
    device=st.text(min_size=1, max_size=12),  # quotes, escapes, any text: spelled alike
    author=st.text(max_size=6),
)
def test_the_prepared_row_is_the_general_row(
    app: Flask, fields: dict[str, Any], grid: str | None, seq: int, device: str, author: str
) -> None:
    if grid is not None:
        fields = {**fields, "grid_code": grid}
    op = _create(fields, seq, device, author)
    with _batch(app) as batch:
        prepared, general = _prepared_row(batch, op), _general_row(batch, op)
        # The one difference: only a create nothing else changed is the device's echo.
        assert prepared.pop("echo_of") == op.device_id and general.pop("echo_of") is None
        assert prepared == general
        assert prepare_create(op).merged() == merge(None, op).state


def test_a_record_changed_after_its_create_is_written_from_its_state(app: Flask) -> None:
    op = _create({"grid_code": "990101001001001", "findings": "first"})
    with _batch(app) as batch:
        rec = batch.create(op, prepare_create(op))
        assert rec.id == op.record_id and rec.version == 1
        assert rec._state is None  # nothing has asked for the state yet
        later = Operation(
            "dev-prepared",
            2,
            OpKind.UPDATE,
            "visit",
            op.record_id,
            1,
            str(_CLOCK.now()),
            "15",
            fields={"findings": "second"},
        )
        batch.apply(rec, later, merge(rec.state, later))
        assert rec.created is None and rec.version == 2
        row = batch._row(rec, 42)
        assert row["version"] == 2 and row["data"]["findings"] == "second"
        assert row["echo_of"] is None

        batch.records.clear()
        reviewed = batch.create(op, prepare_create(op))
        reviewed.review = {"status": "returned"}
        envelope = jsontext.loads(batch._row(reviewed, 43)["envelope"])
        assert envelope["review"] == {"status": "returned"}


def test_a_new_record_touched_in_its_batch_is_written_from_its_state(app: Flask) -> None:
    op = _create({"grid_code": "990101001001001", "findings": "新建"})
    with _batch(app) as batch:
        rec = batch.create(op, prepare_create(op))
        batch.touch(rec)  # e.g. a review decision in the same batch
        assert rec.created is None and rec.id == op.record_id and rec.version == 1
        row = batch._row(rec, 44)
        assert row["echo_of"] is None and row["data"] == dict(op.fields)
