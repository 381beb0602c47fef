"""Record ids (client_sdk.ids, composed by sync.ids) are version 7 UUIDs: unique, time-ordered,
increasing within a process even when the clock stalls or steps back, and accepted wherever a
record id is checked."""

from __future__ import annotations

import itertools
import threading
import uuid

from client_sdk.ids import record_id, uuid7
from sync import Operation, OpKind
from sync.ids import uuid7_at


def test_ids_are_version_7_and_increase() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert {u.version for u in ids} == {7} and {u.variant for u in ids} == {uuid.RFC_4122}


def test_a_clock_that_stalls_or_steps_back_still_gives_increasing_ids() -> None:
    times = itertools.chain([2_000_000_000_000] * 5000, [1_000_000_000_000] * 10)
    ids = [uuid7(now_ms=lambda: next(times)) for _ in range(5010)]
    assert ids == sorted(ids) and len(set(ids)) == 5010
    # 4,096 ids fit one millisecond; then the time part moves on by one.
    assert ids[-1].int >> 80 > 2_000_000_000_000


def test_threads_never_make_the_same_id() -> None:
    made: list[uuid.UUID] = []

    def make() -> None:
        mine = [uuid7() for _ in range(5000)]
        made.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 20_000


def test_the_time_is_the_first_48_bits() -> None:
    ms = 1_795_000_000_123
    made = uuid7_at(ms, bytes(range(10)))
    assert made.int >> 80 == ms and made.version == 7
    assert uuid7_at(ms, bytes(range(10))) == made  # no state: the same inputs, the same id
    assert uuid7_at(ms + 1, bytes(10)) > uuid7_at(ms, b"\xff" * 10)


def test_a_record_id_passes_the_wire_check() -> None:
    rid = record_id()
    op = Operation.from_dict(
        Operation(
            "dev", 1, OpKind.CREATE, "visit", rid, 0, "1795000000000:00000:dev", "", {"a": 1}
        ).to_dict()
    )
    assert op.record_id == rid and rid == str(uuid.UUID(rid))
