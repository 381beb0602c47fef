"""Schedules of offline edits and syncs, and the invariants every schedule must keep.

``run_schedule`` plays a schedule against a SimServer with the given merge function and checks:
(a) convergence, (b) no operation lost, (c) idempotent replay, plus read-your-writes after every
step. ``run_orders`` checks (d): the outcome does not depend on delivery order.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from sync import DELETED, Operation, OpKind, Outcome, Write, canonical_json

from .sim import MergeFn, SimDevice, SimServer, new_id

FIELDS = ("findings", "address", "visit_type")
VALUES = ("a", "b", "c")
FAULTS = ("none", "none", "lose_request", "lose_response", "duplicate")


def step_strategy(n_devices: int) -> st.SearchStrategy[tuple[Any, ...]]:
    dev = st.integers(0, n_devices - 1)
    rec = st.integers(0, 30)
    return st.one_of(
        st.tuples(st.just("create"), dev, st.sampled_from(VALUES)),
        st.tuples(st.just("update"), dev, rec, st.sampled_from(FIELDS), st.sampled_from(VALUES)),
        st.tuples(st.just("delete"), dev, rec),
        st.tuples(st.just("append"), dev, rec, st.sampled_from(VALUES)),
        st.tuples(st.just("resolve"), dev, rec),
        st.tuples(st.just("push"), dev, st.sampled_from(FAULTS)),
        st.tuples(st.just("pull"), dev),
        st.tuples(st.just("clock"), dev, st.integers(-(10**6), 10**6)),
    )


schedules = st.integers(2, 6).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(step_strategy(n), max_size=40))
)


class World:
    def __init__(self, n: int, merge_fn: MergeFn) -> None:
        self.server = SimServer(merge_fn)
        self.tick = 1_700_000_000_000
        self.skew = [0] * n
        self.devices = [SimDevice(f"dev{i}", self._clock(i)) for i in range(n)]
        self.ids = itertools.count(1)

    def _clock(self, i: int):
        def now() -> int:
            self.tick += 1
            return self.tick + self.skew[i]

        return now

    def play(self, step: tuple[Any, ...]) -> None:
        kind, d = step[0], self.devices[step[1]]
        known = d.known_ids()
        pick = (
            known[step[2] % len(known)]
            if known and kind in ("update", "delete", "append", "resolve")
            else None
        )
        view = d.view(pick) if pick else None
        if kind == "create":
            d.create(new_id(next(self.ids)), {"findings": step[2]})
        elif kind == "update" and view and not view["deleted"]:
            d.update(pick, {step[3]: step[4]})
        elif kind == "delete" and view and not view["deleted"]:
            d.delete(pick)
        elif kind == "append" and view:
            d.append(pick, step[3], new_id(10**6 + next(self.ids)))
        elif kind == "resolve" and view and view["conflicts"]:
            fields = {f: ws[0]["value"] for f, ws in view["conflicts"].items()}
            if DELETED in fields:
                fields[DELETED] = bool(fields[DELETED])
            d.resolve(pick, fields)
        elif kind == "push":
            fault = step[2]
            d.push(
                self.server,
                lose_request=fault == "lose_request",
                lose_response=fault == "lose_response",
                duplicate=fault == "duplicate",
            )
        elif kind == "pull":
            d.pull(self.server)
        elif kind == "clock":
            self.skew[step[1]] += step[2]

    def settle(self) -> None:
        for _ in range(2):
            for d in self.devices:
                d.push(self.server)
            for d in self.devices:
                d.pull(self.server)


def check_read_your_writes(d: SimDevice) -> None:
    latest: dict[tuple[str, str], Any] = {}
    for op in d.outbox:
        if op.kind in (OpKind.CREATE, OpKind.UPDATE):
            for f, v in op.fields.items():
                latest[(op.record_id, f)] = v
    for (rid, f), v in latest.items():
        view = d.view(rid)
        assert view is not None and view["fields"].get(f) == v, (rid, f, v, view)


def _writes(op: Operation, version: int | None) -> dict[str, Write]:
    if op.kind is OpKind.DELETE:
        values = {DELETED: True}
    elif op.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        values = {DELETED: False, **op.fields}
    else:
        return {}
    return {
        f: Write(v, version or 0, op.hlc, op.device_id, op.seq, op.author, op.base_version)
        for f, v in values.items()
    }


def check_nothing_lost(server: SimServer, sent: dict[str, Operation]) -> None:
    """Every accepted write is live, or a later accepted write's author had seen it."""
    accepted = [
        (sent[r.key], r)
        for r in server.receipts.values()
        if r.outcome in (Outcome.APPLIED, Outcome.CONFLICT)
    ]
    by_field: dict[tuple[str, str], list[Write]] = {}
    for op, receipt in accepted:
        for f, w in _writes(op, receipt.version).items():
            by_field.setdefault((op.record_id, f), []).append(w)
    for op, receipt in accepted:
        state = server.states[op.record_id]
        if op.kind is OpKind.APPEND:
            assert op.item["id"] in state.collections.get(op.collection, {}), op
            continue
        for f, w in _writes(op, receipt.version).items():
            live = {(x.device_id, x.seq) for x in state.fields.get(f, ())}
            if (w.device_id, w.seq) in live:
                continue
            assert any(
                x.saw(w)
                for x in by_field[(op.record_id, f)]
                if (x.device_id, x.seq) != (w.device_id, w.seq)
            ), f"write lost: {op.key} {f}={w.value!r}"


def check_converged(world: World) -> None:
    truth = world.server.view()
    for d in world.devices:
        assert not d.outbox, f"{d.device_id} still has {len(d.outbox)} unsent"
        assert d.full_view() == truth, f"{d.device_id} diverged from the server"


def check_replay_is_noop(server: SimServer, sent: dict[str, Operation]) -> None:
    before = {rid: st.to_dict() for rid, st in server.states.items()}
    ops = [
        sent[k]
        for k in sorted(server.receipts, key=lambda k: (k.split(":")[0], int(k.split(":")[1])))
    ]
    for op in ops:
        again = server.push([op])[0]
        assert again.outcome is Outcome.DUPLICATE, (op.key, again.outcome)
    assert {rid: st.to_dict() for rid, st in server.states.items()} == before


def run_schedule(schedule: tuple[int, list[tuple[Any, ...]]], merge_fn: MergeFn) -> World:
    n, steps = schedule
    world = World(n, merge_fn)
    sent: dict[str, Operation] = {}
    for step in steps:
        world.play(step)
        for d in world.devices:
            for op in d.outbox:
                sent[op.key] = op
            check_read_your_writes(d)
    world.settle()
    check_converged(world)
    check_nothing_lost(world.server, sent)
    check_replay_is_noop(world.server, sent)
    return world


def semantic(view: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A record set without server-assigned versions: what a person sees."""
    return {
        rid: (
            canonical_json(s["fields"]),
            s["deleted"],
            canonical_json(
                {
                    f: sorted(canonical_json(w["value"]) for w in ws)
                    for f, ws in s["conflicts"].items()
                }
            ),
            canonical_json(s["collections"]),
        )
        for rid, s in view.items()
    }


def run_orders(
    n: int, edits: list[tuple[Any, ...]], orders: list[list[int]], merge_fn: MergeFn
) -> None:
    """Devices start from one synced snapshot, edit offline, then push in different orders."""
    results = []
    for order in orders:
        world = World(n, merge_fn)
        base = world.devices[0]
        for i in range(3):
            base.create(new_id(i + 1), {"findings": "seed"})
        base.push(world.server)
        for d in world.devices:
            d.pull(world.server)
        for step in edits:
            if step[0] not in ("push", "pull"):
                world.play(step)
        batches = {d.device_id: list(d.outbox) for d in world.devices}
        for i in [*order, *range(n)]:
            d = world.devices[i % n]
            world.server.push(batches[d.device_id])
        results.append(semantic(world.server.view()))
    assert all(r == results[0] for r in results[1:]), "outcome depends on delivery order"
