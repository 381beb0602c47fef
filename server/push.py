"""Applying a device's push: one transaction, one result per operation, in order.

Each operation is checked in turn — replay (receipt), clock, jurisdiction, server-owned fields,
validation, workflow — and merged; a rejected operation is answered on its own and never blocks
the ones behind it. The whole batch is written with a few set-based statements and committed
once: either every result the device receives is durable, or none is.

What needs no stored record — field validation, the canonical payload and its digest — is worked
out first, before the write lock is taken, so concurrent pushes share the CPU for it and hold the
lock only for loading, merging and writing. The answers are the same: each precomputed verdict
is given at the place in the order of checks where it was always given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm.attributes import set_committed_value

from server import audit, jsontext
from server.cases import case_state, local_today, open_new_case, step_item
from server.codes import CodeBook, codebook
from server.db import read_phase, utcnow
from server.errors import Unauthorized
from server.extensions import db
from server.models import AdminUnit, Device, SyncOp, User, UserGrid
from server.scope import Scope
from server.store import CREATED, Created, RecordBatch, StoredRecord, prepare_create
from sync import (
    DELETED,
    TRANSIENT_REASONS,
    MalformedOperation,
    MergeResult,
    Operation,
    OpKind,
    OpResult,
    Outcome,
    PushRequest,
    PushResponse,
    Reason,
    Receipt,
    Runs,
    apply_operation,
    merge,
    validate_fields,
)
from sync.workflow import Refused, decide

__all__ = ["last_seq", "push", "warm"]

_NOTE_MAX = 4000


class _OutOfScope(Exception):
    """The record exists, but outside the caller's jurisdiction."""


class _Refusal(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message


_OP = SyncOp.__table__
# Plain rows, not ORM entities (about half the CPU for the same SQL); built once.
_RECEIPT_COLUMNS = select(
    _OP.c.device_id,
    _OP.c.seq,
    _OP.c.record_id,
    _OP.c.digest,
    _OP.c.outcome,
    _OP.c.version,
    _OP.c.reason,
    _OP.c.conflicts,
).where(_OP.c.device_id == bindparam("device_id"))
_RECEIPTS = _RECEIPT_COLUMNS.where(_OP.c.seq.in_(bindparam("seqs", expanding=True)))
_RECEIPT_RANGE = _RECEIPT_COLUMNS.where(_OP.c.seq.between(bindparam("lo"), bindparam("hi")))


def _receipts(device_id: str, seqs: list[int]) -> dict[int, Receipt]:
    """The receipts of ``seqs`` (sorted) of the device. A batch's keys are nearly always a
    run of consecutive numbers: those are read as one range of the primary key (an IN list of
    500 numbers cost PostgreSQL about 4 ms to parse and plan); scattered ones by IN lists."""
    found: dict[int, Receipt] = {}
    if not seqs:
        return found
    conn = db.session.connection()
    if seqs[-1] - seqs[0] < 2 * len(seqs):
        wanted = set(seqs)
        rows = conn.execute(
            _RECEIPT_RANGE, {"device_id": device_id, "lo": seqs[0], "hi": seqs[-1]}
        ).all()
        rows = [r for r in rows if r.seq in wanted]
    else:
        rows = [
            r
            for start in range(0, len(seqs), 500)
            for r in conn.execute(
                _RECEIPTS, {"device_id": device_id, "seqs": seqs[start : start + 500]}
            )
        ]
    for r in rows:
        found[r.seq] = _receipt_of(r, r.digest)
    return found


_LAST_SEQ = select(func.max(_OP.c.seq)).where(_OP.c.device_id == bindparam("device_id"))
_PAYLOAD = select(_OP.c.payload).where(
    _OP.c.device_id == bindparam("device_id"), _OP.c.seq == bindparam("seq")
)


def _identity(op: dict[str, Any]) -> Any:
    """:attr:`sync.Operation.identity` of a decoded payload."""
    return op.get("made_hlc") or op.get("hlc")


def _same_operation(held: dict[str, Any], sent: dict[str, Any], *, numbers: bool = False) -> bool:
    """Whether the decoded canonical payloads ``held`` and ``sent`` are one operation: the same
    identity and the same change, their current stamps aside (and, with ``numbers``, their
    numbers): what copies of a store may give one operation differently. The change is
    compared as JSON text, not as values (``1``, ``1.0`` and ``true`` are equal values)."""
    if _identity(held) != _identity(sent):
        return False
    skip = ("hlc", "made_hlc", "seq", "made_seq") if numbers else ("hlc", "made_hlc")
    if "nonce" not in held:  # held by a server from before it, which read past it
        skip += ("nonce",)
    return _text_without(held, skip) == _text_without(sent, skip)


# What a server from before them read past and left out of the payload it holds.
_NEWER = ("made_hlc", "made_seq", "nonce")


def _text_without(op: dict[str, Any], names: tuple[str, ...]) -> str:
    return jsontext.canonical({k: v for k, v in op.items() if k not in names})


def _restamped(device_id: str, seq: int, canonical: str, held: str | None = None) -> bool:
    """Whether the operation held under ``device_id:seq`` (its canonical text ``held`` if kept
    in this batch, else read) is the one whose canonical text is ``canonical``: stamped again
    after ``clock_ahead`` by another copy of the store (protocol §5.5), or held by a server
    from before ``made_hlc``, ``made_seq`` and ``nonce``, which it left out (the same text
    without them).
    Asked only when the digests differ (rare)."""
    if held is None:
        row = db.session.connection().execute(_PAYLOAD, {"device_id": device_id, "seq": seq})
        held = row.scalar()
    if held is None:
        return False
    sent = jsontext.loads(canonical)
    return held == _text_without(sent, _NEWER) or _same_operation(jsontext.loads(held), sent)


_TWIN_COLUMNS = select(*_RECEIPT_COLUMNS.selected_columns, _OP.c.made_seq, _OP.c.payload)
# Made with one of the numbers: numbered again (made_seq), or sent under it (made_seq NULL).
# Two statements: SQLite plans an OR of the two as a scan of the device's receipts.
_TWINS_RENUMBERED = _TWIN_COLUMNS.where(
    _OP.c.device_id == bindparam("device_id"),
    _OP.c.made_seq.in_(bindparam("made", expanding=True)),
)
_TWINS_AS_MADE = _TWIN_COLUMNS.where(
    _OP.c.device_id == bindparam("device_id"),
    _OP.c.seq.in_(bindparam("made", expanding=True)),
    _OP.c.made_seq.is_(None),
)


def _receipt_of(r: Any, digest: str) -> Receipt:
    """A held receipt row, answering an operation with ``digest`` (its own, or that of one
    answered as its replay)."""
    conflicts = tuple(r.conflicts.split(",")) if r.conflicts else ()
    return Receipt(
        f"{r.device_id}:{r.seq}",
        digest,
        Outcome(r.outcome),
        r.record_id,
        r.version,
        r.reason,
        conflicts,
    )


def _twins(device_id: str, renumbered: list[_Checked]) -> dict[int, Receipt]:
    """For operations the device numbered again (``made_seq``) whose key the server does not
    hold as sent (no operation holds it, or another one does): the receipt of the same
    operation (:func:`_same_operation`) held under another number — made with the same number
    and sent under it, or numbered again differently by another copy of the store (protocol
    §3). Such an operation is answered as that one's replay, never applied again. Keyed by
    ``id()`` of the operation's ``_Checked``; each held payload is read once, and only those
    with the operation's own identity are compared."""
    made = sorted({c.op.made_seq for c in renumbered if c.op.made_seq is not None})
    conn = db.session.connection()
    held: dict[tuple[int, str], list[tuple[Any, dict[str, Any]]]] = {}
    for query in (_TWINS_RENUMBERED, _TWINS_AS_MADE):
        for r in conn.execute(query, {"device_id": device_id, "made": made}):
            payload = jsontext.loads(r.payload)
            number = r.seq if r.made_seq is None else r.made_seq
            held.setdefault((number, _identity(payload)), []).append((r, payload))
    found: dict[int, Receipt] = {}
    for checked in renumbered:
        op = checked.op
        if op.made_seq is None:
            continue
        sent = None
        twins = held.get((op.made_seq, op.identity), ())
        for r, payload in sorted(twins, key=lambda x: x[0].seq):
            sent = sent or jsontext.loads(checked.canonical)
            if r.seq != op.seq and _same_operation(payload, sent, numbers=True):
                found[id(checked)] = _receipt_of(r, checked.digest)
                break
    return found


def last_seq(device_id: str) -> int:
    """The highest sequence number of an operation received from ``device_id`` (0: none); one
    step down the receipts' primary key, read outside the write lock."""
    with read_phase(db.session):
        return db.session.connection().execute(_LAST_SEQ, {"device_id": device_id}).scalar() or 0


def warm() -> None:
    """Run a push's reads once for no device and no record (see ``server.serving.warm``): the
    first push a worker takes then finds its statements compiled."""
    conn = db.session.connection()
    conn.execute(_STILL, {"device_id": ""}).all()
    _receipts("", [1])
    last_seq("")
    RecordBatch.warm(db.session)
    _grids({""})


def _grids(codes: set[str]) -> set[str]:
    """Which of ``codes`` are grids. Units are only ever added, never removed or re-levelled, so
    a grid once seen is remembered for the life of the process; only unknown codes are looked
    up (a grid created a moment ago is found at once)."""
    known: set[str] = current_app.extensions.setdefault("linli.grids", set())
    missing = codes - known
    if missing:
        rows = db.session.execute(
            select(AdminUnit.code).where(AdminUnit.code.in_(missing), AdminUnit.level == "grid")
        )
        known.update(r.code for r in rows)
    return codes & known


@dataclass(slots=True)
class _Checked:
    """An operation with what could be worked out before the write lock."""

    op: Operation
    canonical: str  # the stored payload; the digest covers it
    digest: str
    invalid: str | None  # why its fields (or note) are invalid, if they are
    wall: int  # its clock's wall time (ms)
    created: Created | None = None  # a valid create: its outcome and row, if no record exists


def _prepare(
    request: PushRequest, codes: dict[str, set[str]], author: str
) -> list[_Checked | MalformedOperation]:
    """Check what needs no stored record; set the author (the server's, never the device's)."""
    prepared: list[_Checked | MalformedOperation] = []
    for item in request.operations:
        if isinstance(item, MalformedOperation):
            prepared.append(item)
            continue
        op = item if item.author == author else replace(item, author=author)
        canonical = op.canonical(jsontext.canonical)
        invalid = _invalid(op, codes)
        created = prepare_create(op) if invalid is None and op.kind is OpKind.CREATE else None
        # A decoded operation's clock is well formed: 13 digits of wall time first.
        wall = int(op.hlc[:13])
        prepared.append(_Checked(op, canonical, op.digest(canonical), invalid, wall, created))
    return prepared


def _invalid(op: Operation, codes: dict[str, set[str]]) -> str | None:
    if op.kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        fields = op.fields
        if op.kind is OpKind.RESOLVE and DELETED in fields:
            fields = {k: v for k, v in fields.items() if k != DELETED}
        errors = validate_fields(
            op.record_type, fields, partial=op.kind is not OpKind.CREATE, codes=codes
        )
        return "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())) if errors else None
    if op.kind is OpKind.APPEND and op.collection == "notes":
        text = op.item.get("text") if op.item else None
        if not isinstance(text, str) or not text.strip() or len(text) > _NOTE_MAX:
            return f"item.text: a note needs text of 1-{_NOTE_MAX} characters"
    return None


_DEVICE, _USER, _USER_GRID = Device.__table__, User.__table__, UserGrid.__table__
# The device, its user and the user's grids as plain rows (one per grid); built once.
_STILL = (
    select(_DEVICE.c.revoked_at, _USER.c.active, _USER.c.role, _USER.c.unit_code)
    .add_columns(_USER_GRID.c.grid_code)
    .select_from(
        _DEVICE.join(_USER, _USER.c.id == _DEVICE.c.user_id).outerjoin(
            _USER_GRID, _USER_GRID.c.user_id == _USER.c.id
        )
    )
    .where(_DEVICE.c.id == bindparam("device_id"))
)


def _still_allowed(user: User, device: Device) -> Scope:
    """Under the write lock: the device, its user and their grids as they are now.

    Authentication read them before the lock; a revocation, a disabled account, a changed role
    or grid committed since must win over this push (one query; the loaded user's role is
    brought up to date without marking it changed).
    """
    rows = db.session.connection().execute(_STILL, {"device_id": device.id}).all()
    if not rows or rows[0].revoked_at is not None:
        raise Unauthorized("This device has been revoked.", code="device_revoked")
    first = rows[0]
    if not first.active:
        raise Unauthorized("This account is disabled.", code="account_disabled")
    if first.role != user.role:
        set_committed_value(user, "role", first.role)
    grids = [r.grid_code for r in rows if r.grid_code is not None]
    return Scope.of(first.role, first.unit_code, grids)


class _Pusher:
    def __init__(
        self, user: User, device: Device, scope: Scope, book: CodeBook, batch: RecordBatch
    ) -> None:
        self.user, self.device, self.scope, self.book = user, device, scope, book
        self.batch = batch  # holds the write lock
        self.today: date = local_today(self.batch.now)
        self.max_ahead_ms = current_app.config["MAX_CLOCK_DRIFT_MS"]
        self.now_ms = int(self.batch.now.timestamp() * 1000)

    def run(self, prepared: list[_Checked | MalformedOperation]) -> list[OpResult]:
        ops = [c.op for c in prepared if isinstance(c, _Checked)]
        seqs = {o.seq for o in ops}
        self.prior = _receipts(self.device.id, sorted(seqs))
        # Numbered again, and not held as sent: its key free, or taken by another operation
        # (a twin's own key is never held, so another store may number its work with it).
        renumbered = [
            c
            for c in prepared
            if isinstance(c, _Checked)
            and c.op.made_seq is not None
            and (c.op.seq not in self.prior or self.prior[c.op.seq].digest != c.digest)
        ]
        self.twins = _twins(self.device.id, renumbered) if renumbered else {}
        # With operations numbered again in the batch: one that is the twin of another made
        # with the same number earlier in it (a device sending both) is answered from that
        # one's receipt (a resend finds that one held). Kept by (made number, identity).
        self.made_here: dict[tuple[int, str], tuple[Receipt, str]] | None = (
            {} if renumbered else None
        )
        # A key sent twice in one batch is answered from the first one's receipt (kept below).
        self.repeated = len(seqs) < len(ops)
        self.kept: dict[int, str] = {}  # canonical texts of receipts made in this batch
        self.batch.load(o.record_id for o in ops)
        self.valid_grids = _grids(
            {
                o.fields.get("grid_code")
                for o in ops
                if o.kind is OpKind.CREATE and isinstance(o.fields.get("grid_code"), str)
            }
        )
        results = []
        for item in prepared:
            if isinstance(item, MalformedOperation):
                results.append(
                    OpResult(
                        item.key,
                        Outcome.REJECTED,
                        reason=item.error.code,
                        message=item.error.message,
                    )
                )
            else:
                results.append(self.one(item))
        self.batch.write()
        return results

    def one(self, checked: _Checked) -> OpResult:
        op = checked.op
        rec = self.batch.records.get(op.record_id)
        receipt = self.prior.get(op.seq)
        held_as_sent = receipt is not None and receipt.digest == checked.digest
        twin = self.twins.get(id(checked))
        if twin is None and not held_as_sent and self.made_here and op.made_seq is not None:
            # Its twin made with the same number earlier in this batch (a device sending both).
            first = self.made_here.get((op.made_seq, op.identity))
            if first is not None and _same_operation(
                jsontext.loads(first[1]), jsontext.loads(checked.canonical), numbers=True
            ):
                twin = replace(first[0], digest=checked.digest)
        if receipt is not None and not held_as_sent:
            if _restamped(op.device_id, op.seq, checked.canonical, self.kept.get(op.seq)):
                receipt = replace(receipt, digest=checked.digest)  # answered as its replay
            elif twin is not None:
                # Its number was taken since by another store's operation; the operation
                # itself is held under its twin's: answered as that one's replay (§5.5).
                receipt = twin
        receipt = receipt or twin
        if receipt is not None:
            result = apply_operation(
                rec.state if rec else None, op, receipt=receipt, digest=checked.digest
            )
            return _result(op, result)
        try:
            self.check(checked, rec)
            result = self.merge(op, rec, checked.created)
        except _OutOfScope:
            # Answer exactly as for a record that does not exist: nothing about it leaks.
            result = (
                merge(None, op)
                if op.kind is not OpKind.CREATE
                else MergeResult(Outcome.REJECTED, None, None, Reason.RECORD_EXISTS)
            )
            self.keep(checked, result)
            return _result(op, result)
        except _Refusal as refusal:
            result = MergeResult(
                Outcome.REJECTED, None, rec.state.version if rec else None, refusal.reason
            )
            if refusal.reason not in TRANSIENT_REASONS:
                self.keep(checked, result)
            return _result(op, result, refusal.message)
        self.keep(checked, result)
        return _result(op, result)

    def keep(self, checked: _Checked, result: MergeResult) -> None:
        op = checked.op
        self.batch.receipt(op, result, canonical=checked.canonical, digest=checked.digest)
        if not self.repeated and self.made_here is None:
            return
        receipt = Receipt(
            op.key,
            checked.digest,
            result.outcome,
            op.record_id,
            result.version,
            result.reason,
            result.conflicts,
        )
        if self.repeated:
            self.prior[op.seq] = receipt
            self.kept[op.seq] = checked.canonical  # not written until the batch is
        if self.made_here is not None:
            number = op.seq if op.made_seq is None else op.made_seq
            self.made_here.setdefault((number, op.identity), (receipt, checked.canonical))

    def check(self, checked: _Checked, rec: StoredRecord | None) -> None:
        op = checked.op
        if checked.wall > self.now_ms + self.max_ahead_ms:
            raise _Refusal(
                Reason.CLOCK_AHEAD,
                "the device clock is ahead of the server's; "
                "correct it and send the operation again",
            )
        if rec is not None and not self.scope.contains(rec.grid_code):
            raise _OutOfScope
        if rec is None and op.kind is OpKind.CREATE:
            grid = op.fields.get("grid_code")
            if not isinstance(grid, str) or grid not in self.valid_grids:
                raise _Refusal(Reason.INVALID_FIELDS, "grid_code: not a known grid")
            if not self.scope.contains(grid):
                raise _Refusal(Reason.FORBIDDEN, f"grid {grid} is outside your jurisdiction")
        if op.kind in (OpKind.UPDATE, OpKind.RESOLVE) and "grid_code" in op.fields:
            raise _Refusal(
                Reason.FORBIDDEN,
                "grid_code: moving a record to another grid is "
                "done by a community head, not by an edit",
            )
        if op.kind is OpKind.RESOLVE and DELETED in op.fields:
            if not isinstance(op.fields[DELETED], bool):
                raise _Refusal(Reason.INVALID_FIELDS, "_deleted: must be true or false")
            if rec is None or DELETED not in rec.state.conflicts():
                raise _Refusal(
                    Reason.INVALID_FIELDS,
                    "_deleted: only an open delete/edit conflict can be resolved this way",
                )
        if checked.invalid is not None:  # the fields, or a note's text (worked out unlocked)
            raise _Refusal(Reason.INVALID_FIELDS, checked.invalid)

    def merge(
        self, op: Operation, rec: StoredRecord | None, created: Created | None = None
    ) -> MergeResult:
        if op.kind is OpKind.APPEND and op.collection == "steps":
            return self.step(op, rec)
        if rec is None and created is not None:  # worked out before the lock
            result = CREATED
            rec = self.batch.create(op, created)
        else:
            result = merge(rec.state if rec else None, op)
            if result.outcome is Outcome.REJECTED:
                return result
            grid = op.fields.get("grid_code") if rec is None else None
            rec = self.batch.apply(rec, op, result, grid_code=grid)
        if result.changed and rec is not None:
            self.resubmitted(rec)
            if op.kind is OpKind.CREATE and op.record_type == "dispute":
                open_new_case(
                    self.batch, rec, self.user.role, actor=self.user.display_name, today=self.today
                )
        return result

    def step(self, op: Operation, rec: StoredRecord | None) -> MergeResult:
        """A workflow action made on the device: decided here, by the server's rules."""
        if rec is None:
            raise _Refusal(Reason.UNKNOWN_RECORD, "no such case")
        item = dict(op.item or {})
        params = item.get("params") if isinstance(item.get("params"), dict) else {}
        if item.get("opinion"):
            params = {**params, "opinion": item["opinion"]}
        decision = decide(
            case_state(rec.state.values(), self.book),
            str(item.get("action")),
            self.user.role,
            params,
            today=self.today,
            rules=self.book.rules,
        )
        if isinstance(decision, Refused):
            raise _Refusal(Reason.ILLEGAL_TRANSITION, f"{decision.reason_code}: {decision.message}")
        stored = replace(
            op,
            item=step_item(
                item,
                decision,
                actor=self.user.display_name,
                at=self.batch.now.isoformat(timespec="seconds"),
            ),
        )
        result = merge(rec.state, stored)
        if result.outcome is Outcome.REJECTED:
            return result
        self.batch.apply(rec, stored, result)
        if result.changed:
            self.batch.server_write(rec, decision.changes)
            self.resubmitted(rec)
        return result

    def resubmitted(self, rec: StoredRecord) -> None:
        """A device changed the record: it needs a (new) review."""
        if rec.review_status != "pending":
            rec.review_status = "pending"
            rec.review = {
                **(rec.review or {}),
                "status": "pending",
                "resubmitted_at": self.batch.now.isoformat(timespec="seconds"),
            }


def _result(op: Operation, result: MergeResult, message: str | None = None) -> OpResult:
    return OpResult(
        op.key,
        result.outcome,
        op.record_id,
        result.version,
        result.reason,
        message,
        result.conflicts,
        result.original,
    )


_HELD = select(func.count()).where(
    _OP.c.device_id == bindparam("device_id"), _OP.c.seq.between(bindparam("lo"), bindparam("hi"))
)
_HELD_AMONG = select(func.count()).where(
    _OP.c.device_id == bindparam("device_id"), _OP.c.seq.in_(bindparam("seqs", expanding=True))
)
_FOLLOW_POLL_S = (0.002, 0.02)  # the first pause, and the longest (doubling between)


def _held(device_id: str, runs: Runs) -> int:
    """How many of the numbers in ``runs`` the device's receipts hold: a few runs counted
    along the primary key; many (numbers far apart, at most a batch of them) by IN lists."""
    conn = db.session.connection()
    if len(runs) <= 8:
        return sum(
            conn.execute(_HELD, {"device_id": device_id, "lo": lo, "hi": hi}).scalar() or 0
            for lo, hi in runs
        )
    seqs = [n for lo, hi in runs for n in range(lo, hi + 1)]
    return sum(
        conn.execute(_HELD_AMONG, {"device_id": device_id, "seqs": seqs[i : i + 500]}).scalar() or 0
        for i in range(0, len(seqs), 500)
    )


def _runs_text(runs: Runs) -> str:
    """``runs`` for a log line: ``1-500, 701-703`` (at most the first 8)."""
    shown = ", ".join(f"{lo}-{hi}" if hi != lo else str(lo) for lo, hi in runs[:8])
    return shown + (f" and {len(runs) - 8} more runs" if len(runs) > 8 else "")


def _locked_after(request: PushRequest, device_id: str, user_id: int) -> RecordBatch | None:
    """The write lock, taken for a push; for one sent ahead of the batch before it (``after``,
    protocol 4) only once every operation of that batch is held — answered for good (a receipt
    is never removed) — else None: the push is answered ``not_yet``, and nothing is written.

    That batch was sent just before and is usually being applied by another worker: the lock
    is then taken as it commits. Taken before it, the lock is let go again and taken anew
    after 2, 4, 8, 16, then every 20 ms, for at most ``SYNC_AFTER_WAIT_MS``. Its receipts
    appear together, in its commit: once some are held but not all, the others were refused
    without one (``clock_ahead``, itself ``not_yet``, undecodable) and will be sent again —
    nothing more to wait for. (A client sends nothing ahead of a batch whose operations may be
    answered without receipts: twins, §5.5.)
    """
    runs = request.after
    if runs is None:
        return RecordBatch(db.session, user_id)
    wanted = sum(hi - lo + 1 for lo, hi in runs)
    deadline = time.monotonic() + current_app.config["SYNC_AFTER_WAIT_MS"] / 1000
    pause, longest = _FOLLOW_POLL_S
    while True:
        batch = RecordBatch(db.session, user_id)
        held = _held(device_id, runs)
        if held >= wanted:
            return batch
        db.session.rollback()  # lets the lock go
        if held:
            return None
        if time.monotonic() >= deadline:
            # Held a worker for the whole wait: a batch lost on the way, or a device naming
            # numbers it never sends (docs/security.md); operators see which.
            current_app.logger.warning(
                "push from device %s waited %d ms for the batch it follows (%s), "
                "which never came: answered not_yet",
                device_id,
                current_app.config["SYNC_AFTER_WAIT_MS"],
                _runs_text(runs),
            )
            return None
        time.sleep(pause)
        pause = min(2 * pause, longest)


def _not_yet(request: PushRequest) -> PushResponse:
    """The answer to a push whose predecessor is not all held: nothing judged, nothing kept;
    each operation ``not_yet`` (transient: sent again, unchanged, after the one it follows)."""
    message = "sent ahead of a batch the server does not hold in full; send it again after"
    results = [
        OpResult(item.key, Outcome.REJECTED, reason=item.error.code, message=item.error.message)
        if isinstance(item, MalformedOperation)
        else OpResult(item.key, Outcome.REJECTED, item.record_id, None, Reason.NOT_YET, message)
        for item in request.operations
    ]
    return PushResponse(results, int(utcnow().timestamp() * 1000))


def push(
    request: PushRequest, *, user: User, device: Device, scope: Scope
) -> tuple[PushResponse, Scope | None]:
    """Apply a push in one transaction and commit it; return the answer and the jurisdiction
    it was judged by.

    ``scope`` is the jurisdiction as authenticated; the operations are judged by the one read
    again under the write lock (a grid removed meanwhile counts), which is returned: anything
    answered after the push (a pull page) must use it, not the one authenticated before.

    A push sent ahead of a batch the server does not hold in full (``after``, protocol 4) is
    not judged: every operation is answered ``not_yet``, nothing is written, and the returned
    jurisdiction is None (no pull page is answered with it).
    """
    with read_phase(db.session):
        book = codebook()
    prepared = _prepare(request, book.sets(), str(user.id))
    batch = _locked_after(request, device.id, user.id)  # the write lock from here on
    if batch is None:
        return _not_yet(request), None
    scope = _still_allowed(user, device)
    pusher = _Pusher(user, device, scope, book, batch)
    results = pusher.run(prepared)
    counts: dict[str, Any] = {}
    for r in results:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    audit.record(
        user.username,
        "sync.push",
        f"device:{device.id}",
        {"batch": pusher.batch.batch_id, "operations": len(results), **counts},
    )
    now = utcnow()
    if device.sync_mark_due(now):
        device.last_sync_at = now
    db.session.commit()
    return PushResponse(results, int(utcnow().timestamp() * 1000)), scope
