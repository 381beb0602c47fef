"""A simulated server and devices that speak the sync rules without HTTP or databases.

The server keeps record states, receipts and a change sequence; devices keep the snapshots they
pulled and an outbox. The merge function is injectable so that deliberately broken variants can
prove the property tests are able to fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync import (
    HybridClock,
    MergeResult,
    Operation,
    OpKind,
    Outcome,
    Receipt,
    RecordState,
    apply_operation,
    overlay,
    snapshot,
)

MergeFn = Callable[[RecordState | None, Operation, Receipt | None], MergeResult]
GRID = "990101001001001"


def real_merge(state: RecordState | None, op: Operation, receipt: Receipt | None) -> MergeResult:
    return apply_operation(state, op, receipt=receipt)


@dataclass
class SimServer:
    merge_fn: MergeFn = real_merge
    states: dict[str, RecordState] = field(default_factory=dict)
    receipts: dict[str, Receipt] = field(default_factory=dict)
    change_seq: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    history: list[tuple[Operation, int]] = field(default_factory=list)  # accepted, with version

    def push(self, ops: list[Operation]) -> list[MergeResult]:
        results = []
        for op in ops:
            result = self.merge_fn(self.states.get(op.record_id), op, self.receipts.get(op.key))
            if result.outcome is not Outcome.DUPLICATE:
                self.receipts[op.key] = result.receipt(op)
            if result.changed and result.state is not None:
                self.states[op.record_id] = result.state
                self.seq += 1
                self.change_seq[op.record_id] = self.seq
                self.history.append((op, result.state.version))
            results.append(result)
        return results

    def pull(self, cursor: int) -> tuple[list[dict[str, Any]], int]:
        changed = sorted((s, rid) for rid, s in self.change_seq.items() if s > cursor)
        return [snapshot(self.states[rid]) for _, rid in changed], self.seq

    def view(self) -> dict[str, dict[str, Any]]:
        return {rid: snapshot(st) for rid, st in self.states.items()}


class SimDevice:
    """A device: pulled snapshots, an outbox, a hybrid clock on a fake physical clock."""

    def __init__(self, name: str, clock_ms: Callable[[], int]) -> None:
        self.device_id = name
        self.clock = HybridClock(name, now=clock_ms, max_drift_ms=10**15)
        self.next_seq = 1
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.outbox: list[Operation] = []
        self.acked: list[Operation] = []  # acknowledged, not yet seen in a pull
        self.cursor = 0

    def _op(self, kind: OpKind, rtype: str, rid: str, **kw: Any) -> Operation:
        snap = self.snapshots.get(rid)
        op = Operation(
            device_id=self.device_id,
            seq=self.next_seq,
            kind=kind,
            record_type=rtype,
            record_id=rid,
            base_version=snap["version"] if snap else 0,
            hlc=str(self.clock.now()),
            author=f"user-{self.device_id}",
            **kw,
        )
        self.next_seq += 1
        self.outbox.append(op)
        return op

    def known_ids(self) -> list[str]:
        ids = set(self.snapshots) | {op.record_id for op in self.outbox + self.acked}
        return sorted(i for i in ids if self.view(i) is not None)

    def view(self, rid: str) -> dict[str, Any] | None:
        mine = [o for o in self.acked + self.outbox if o.record_id == rid]
        return overlay(self.snapshots.get(rid), mine)

    def create(self, rid: str, fields: dict[str, Any]) -> Operation:
        return self._op(OpKind.CREATE, "visit", rid, fields={"grid_code": GRID, **fields})

    def update(self, rid: str, fields: dict[str, Any]) -> Operation:
        return self._op(OpKind.UPDATE, "visit", rid, fields=fields)

    def delete(self, rid: str) -> Operation:
        return self._op(OpKind.DELETE, "visit", rid)

    def append(self, rid: str, text: str, item_id: str) -> Operation:
        return self._op(
            OpKind.APPEND, "visit", rid, collection="notes", item={"id": item_id, "text": text}
        )

    def resolve(self, rid: str, fields: dict[str, Any]) -> Operation:
        return self._op(OpKind.RESOLVE, "visit", rid, fields=fields, reason="checked on site")

    def push(
        self,
        server: SimServer,
        *,
        lose_request: bool = False,
        lose_response: bool = False,
        duplicate: bool = False,
    ) -> None:
        batch = list(self.outbox)
        if not batch or lose_request:
            return
        results = server.push(batch)
        if duplicate:
            results = server.push(batch)
        if lose_response:
            return
        kept = {Outcome.APPLIED, Outcome.CONFLICT, Outcome.DUPLICATE}
        self.acked += [op for op, r in zip(batch, results, strict=True) if r.outcome in kept]
        self.outbox = self.outbox[len(batch) :]

    def pull(self, server: SimServer) -> None:
        changes, cursor = server.pull(self.cursor)
        for snap in changes:
            self.snapshots[snap["id"]] = snap
        self.cursor = cursor
        self.acked = []

    def full_view(self) -> dict[str, dict[str, Any]]:
        return {rid: v for rid in self.known_ids() if (v := self.view(rid)) is not None}


def new_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))
