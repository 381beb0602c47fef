"""The merge rule: (server-side state of a record, incoming operation) → (outcome, new state).

Pure and deterministic. Concurrency is decided by base versions (did the author see a write?),
never by clocks or arrival order; clocks only pick which of several concurrent values is shown.

- Different fields edited concurrently: both apply.
- The same field edited concurrently with different values: a conflict that keeps every live
  value with its author, device, HLC and base version.
- Append-only collections merge as sets of items keyed by item id.
- Deletes are tombstones; an edit that did not see a delete (or a delete that did not see an
  edit) is a conflict on the deletion state; an edit made after seeing the delete is refused.
- Replays are answered from the receipt of the first delivery: same payload → duplicate, another
  payload under the same key → rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .operation import Operation, OpKind, canonical_json
from .record import DELETED, RecordState, Write, _new_write, in_conflict

__all__ = [
    "TRANSIENT_REASONS",
    "MergeResult",
    "Outcome",
    "Reason",
    "Receipt",
    "apply_operation",
    "merge",
]


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class Reason(StrEnum):
    """Why an operation was rejected. Servers may add their own (scope, validation, workflow)."""

    UNKNOWN_RECORD = "unknown_record"
    RECORD_EXISTS = "record_exists"
    RECORD_DELETED = "record_deleted"
    WRONG_RECORD_TYPE = "wrong_record_type"
    KEY_REUSED = "key_reused"
    ITEM_ID_REUSED = "item_id_reused"
    INVALID_FIELDS = "invalid_fields"
    NOT_FOUND = "not_found"  # outside the caller's jurisdiction, or does not exist
    FORBIDDEN = "forbidden"
    ILLEGAL_TRANSITION = "illegal_transition"
    CLOCK_AHEAD = "clock_ahead"
    # Protocol 4: a batch sent ahead (``after``) whose predecessor is not all held: not judged.
    NOT_YET = "not_yet"


# Rejections that leave no receipt: the device may fix the cause and send the same key again.
TRANSIENT_REASONS = frozenset({Reason.CLOCK_AHEAD, Reason.NOT_YET})


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the server answered for an operation key, kept to answer replays the same way."""

    key: str
    digest: str
    outcome: Outcome
    record_id: str
    version: int | None
    reason: str | None = None
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MergeResult:
    outcome: Outcome
    state: RecordState | None
    version: int | None = None
    reason: str | None = None
    conflicts: tuple[str, ...] = ()
    changed: bool = False
    original: Outcome | None = None  # for a duplicate: the outcome of the first delivery

    def receipt(self, op: Operation) -> Receipt:
        return Receipt(
            op.key,
            op.digest(),
            self.outcome,
            op.record_id,
            self.version,
            self.reason,
            self.conflicts,
        )


def _rejected(state: RecordState | None, reason: str) -> MergeResult:
    return MergeResult(Outcome.REJECTED, state, state.version if state else None, reason)


def apply_operation(
    state: RecordState | None,
    op: Operation,
    *,
    receipt: Receipt | None = None,
    digest: str | None = None,
) -> MergeResult:
    """Apply ``op`` unless ``receipt`` shows its key was seen before (``digest``: the
    operation's digest, if already computed)."""
    if receipt is not None:
        if receipt.digest != (digest or op.digest()):
            return _rejected(state, Reason.KEY_REUSED)
        return MergeResult(
            Outcome.DUPLICATE,
            state,
            receipt.version,
            receipt.reason,
            receipt.conflicts,
            original=receipt.outcome,
        )
    return merge(state, op)


def _write(op: Operation, value: object, version: int) -> Write:
    return Write(value, version, op.hlc, op.device_id, op.seq, op.author, op.base_version)


def _merge_writes(live: tuple[Write, ...], new: Write) -> tuple[tuple[Write, ...], bool]:
    """Add ``new`` to a field's live writes; drop the writes its author had seen."""
    if any(w.saw(new) for w in live):
        return live, False  # a later write by the same device already supersedes it
    kept = tuple(w for w in live if not new.saw(w))
    return (*kept, new), True


def merge(state: RecordState | None, op: Operation) -> MergeResult:
    """The merge rule for one operation (see the module docstring)."""
    if state is None:
        if op.kind is not OpKind.CREATE:
            return _rejected(None, Reason.UNKNOWN_RECORD)
        # A new record: every field gets its one write (the common case, kept cheap).
        stamp = (1, op.hlc, op.device_id, op.seq, op.author, op.base_version)
        fields = {name: (_new_write(Write, (value, *stamp)),) for name, value in op.fields.items()}
        fields[DELETED] = (_new_write(Write, (False, *stamp)),)
        created = RecordState(op.record_type, op.record_id, 1, fields, {})
        return MergeResult(Outcome.APPLIED, created, 1, changed=True)
    elif op.kind is OpKind.CREATE:
        return _rejected(state, Reason.RECORD_EXISTS)
    if op.record_type != state.record_type:
        return _rejected(state, Reason.WRONG_RECORD_TYPE)
    version = state.version + 1

    if op.kind is OpKind.APPEND:
        assert op.collection is not None and op.item is not None
        entries = state.collections.get(op.collection, {})
        item_id = op.item["id"]
        if item_id in entries:
            if canonical_json(entries[item_id].value) != canonical_json(dict(op.item)):
                return _rejected(state, Reason.ITEM_ID_REUSED)
            return MergeResult(Outcome.APPLIED, state, state.version)
        collections = dict(state.collections)
        collections[op.collection] = {**entries, item_id: _write(op, dict(op.item), version)}
        new_state = RecordState(
            state.record_type, state.record_id, version, state.fields, collections
        )
        return MergeResult(Outcome.APPLIED, new_state, version, changed=True)

    if op.kind is OpKind.DELETE:
        values = {DELETED: True}
    else:
        values = dict(op.fields)
        if op.kind is OpKind.RESOLVE and DELETED in values:
            values[DELETED] = values[DELETED] is True
        else:
            values[DELETED] = False
        if state.deleted and not values[DELETED]:
            probe = _write(op, False, version)
            if all(probe.saw(w) for w in state.fields[DELETED] if w.value is True) and not (
                op.kind is OpKind.RESOLVE and DELETED in op.fields
            ):
                return _rejected(state, Reason.RECORD_DELETED)

    fields = dict(state.fields)
    changed = False
    conflicted: list[str] = []
    for name, value in values.items():
        new = _write(op, value, version)
        live, added = _merge_writes(fields.get(name, ()), new)
        if added:
            fields[name] = live
            changed = True
            if in_conflict(live):
                conflicted.append(name)
    if not changed:
        return MergeResult(Outcome.APPLIED, state, state.version)
    new_state = RecordState(state.record_type, state.record_id, version, fields, state.collections)
    outcome = Outcome.CONFLICT if conflicted else Outcome.APPLIED
    return MergeResult(
        outcome, new_state, version, conflicts=tuple(sorted(conflicted)), changed=True
    )
