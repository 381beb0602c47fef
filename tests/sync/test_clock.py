"""Hybrid logical clock: monotonic under any physical clock, drift limit enforced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import HLC, ClockDriftError, HybridClock, WrongType


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.integers(-(10**10), 10**10),
            st.booleans(),
            st.integers(-(10**6), 10**6),
            st.integers(0, 50),
        ),
        max_size=60,
    )
)
def test_monotonic_under_random_clock_jumps_and_remote_events(events):
    physical = [1_700_000_000_000]
    clock = HybridClock("dev-a", now=lambda: physical[0], max_drift_ms=10**12)
    last = clock.last
    for jump, remote, remote_offset, remote_counter in events:
        physical[0] = max(0, physical[0] + jump)
        if remote:
            stamp = clock.observe(HLC(max(0, physical[0] + remote_offset), remote_counter, "b"))
        else:
            stamp = clock.now()
        assert stamp > last
        assert str(stamp) > str(last), "the string form must sort like the timestamp"
        last = stamp


def test_survives_backward_jump_of_a_year():
    physical = [1_700_000_000_000]
    clock = HybridClock("dev-a", now=lambda: physical[0])
    before = clock.now()
    physical[0] -= 365 * 24 * 3600 * 1000
    after = clock.now()
    assert after > before and after.wall == before.wall and after.counter == before.counter + 1


def test_observe_moves_past_remote_time():
    clock = HybridClock("a", now=lambda: 1_000)
    stamp = clock.observe(HLC(1_500, 7, "b"))
    assert stamp == HLC(1_500, 8, "a")
    assert clock.now() == HLC(1_500, 9, "a")


def test_remote_clock_beyond_drift_limit_is_refused():
    clock = HybridClock("a", now=lambda: 1_000_000, max_drift_ms=60_000)
    clock.observe(HLC(1_000_000 + 60_000, 0, "b"))  # exactly at the limit is accepted
    with pytest.raises(ClockDriftError) as exc:
        clock.observe(HLC(1_000_000 + 60_001, 0, "b"))
    assert exc.value.context["ahead_ms"] == 60_001
    assert clock.last.wall == 1_060_000, "a refused reading must not move the clock"


def test_counter_overflow_borrows_the_next_millisecond():
    clock = HybridClock("a", now=lambda: 5, last=HLC(5, 99_999, "a"))
    assert clock.now() == HLC(6, 0, "a")


@pytest.mark.parametrize(
    "text",
    [None, 5, "", "1:2:3", "0001700000000000:1:x", "x" * 100, "0001700000000:00000:bad node"],
)
def test_parse_rejects_malformed(text):
    with pytest.raises(WrongType):
        HLC.parse(text)


def test_parse_round_trip():
    stamp = HLC(1_700_000_000_123, 42, "dev-9")
    assert HLC.parse(str(stamp)) == stamp
