"""Property tests of the merge rules with 2-6 simulated devices, faults and reordering."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sync import Operation, Receipt, RecordState, apply_operation, merge
from sync.merge import MergeResult
from sync.record import current

from .properties import run_orders, run_schedule, schedules, step_strategy
from .sim import real_merge

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(schedules)
def test_any_schedule_converges_loses_nothing_and_replays_idempotently(schedule):
    run_schedule(schedule, real_merge)


order_cases = st.integers(2, 5).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(step_strategy(n), max_size=25),
        st.lists(st.lists(st.integers(0, n - 1), max_size=8), min_size=2, max_size=4),
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_cases)
def test_outcome_does_not_depend_on_delivery_order(case):
    n, edits, orders = case
    run_orders(n, edits, orders, real_merge)


# --- Mutation self-test: broken merge variants must be caught by the same properties. ---


_ARRIVALS = itertools.count(9 * 10**12)


def tie_by_arrival(state: RecordState | None, op: Operation, receipt: Receipt | None):
    """Broken: the latest arrival wins ties (its clock is replaced by a huge one)."""
    if receipt is not None:
        return apply_operation(state, op, receipt=receipt)
    return merge(state, replace(op, hlc=f"{next(_ARRIVALS):013d}:00000:zz"))


def no_idempotency(state: RecordState | None, op: Operation, receipt: Receipt | None):
    """Broken: ignores receipts, so a replay is applied again."""
    return merge(state, op)


def lww_drops_loser(state: RecordState | None, op: Operation, receipt: Receipt | None):
    """Broken: last-writer-wins keeps only the winning write of each field."""
    result = apply_operation(state, op, receipt=receipt)
    if result.state is None or not result.changed:
        return result
    fields = {f: (current(ws),) for f, ws in result.state.fields.items()}
    pruned = RecordState(
        result.state.record_type,
        result.state.record_id,
        result.state.version,
        fields,
        result.state.collections,
    )
    return MergeResult(result.outcome, pruned, result.version, result.reason, (), True)


# Known witnesses, so that each mutant is caught on every run, plus a random search.
CONCURRENT_EDITS_SCHEDULE = (
    2,
    [
        ("create", 0, "a"),
        ("push", 0, "none"),
        ("pull", 1),
        ("update", 0, 0, "findings", "b"),
        ("update", 1, 0, "findings", "c"),
        ("push", 0, "none"),
        ("push", 1, "duplicate"),
    ],
)
CONCURRENT_EDITS_TWO_ORDERS = (
    2,
    [("update", 0, 0, "findings", "b"), ("update", 1, 0, "findings", "c")],
    [[0, 1], [1, 0]],
)

MUTANT = settings(
    max_examples=2000,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.mark.parametrize("mutant", [tie_by_arrival, no_idempotency, lww_drops_loser])
def test_broken_merge_variants_are_caught(mutant):
    if mutant is tie_by_arrival:

        @MUTANT
        @given(order_cases)
        @example(CONCURRENT_EDITS_TWO_ORDERS)
        def check(case):
            n, edits, orders = case
            run_orders(n, edits, orders, mutant)
    else:

        @MUTANT
        @given(schedules)
        @example(CONCURRENT_EDITS_SCHEDULE)
        def check(schedule):
            run_schedule(schedule, mutant)

    with pytest.raises(AssertionError):
        check()
