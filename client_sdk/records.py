"""The field worker's records: households, residents, visits and disputes, edited offline.

Every method validates its input with the same rules the server applies
(:func:`sync.validate_fields` and the code tables) *before* anything is written, then writes the
edit and its outbox entry in one transaction. Reads return the record as the worker sees it:
the last pulled snapshot with the device's own unsynced edits on top.

A record view is a dict: ``id``, ``type``, ``version``, ``grid_code``, ``deleted``, ``fields``,
``conflicts``, ``collections`` (``notes``, ``steps``), ``review``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any

from fixtures import code_sets, load_code_tables, load_deadline_rules
from sync import DELETED, HLC, DeadlineRules, HybridClock, Operation, OpKind, validate_fields
from sync.workflow import Allowed, CaseState, allowed_actions, apply_transition, decide

from .errors import IllegalTransition, RecordNotFound, ValidationError
from .ids import record_id as new_record_id
from .store import Store

__all__ = ["NOTE_MAX", "Records"]

NOTE_MAX = 4000


@cache
def _codes() -> dict[str, set[str]]:
    return code_sets()


@cache
def _rules() -> DeadlineRules:
    return DeadlineRules.from_dict(load_deadline_rules())


@cache
def _category_rules() -> dict[str, str]:
    """Dispute category → deadline rule code (an L2 category inherits from its L1)."""
    entries = {e["code"]: e for e in load_code_tables().get("dispute_categories", [])}
    found = {}
    for code, entry in entries.items():
        while entry is not None and not entry.get("deadline_rule"):
            entry = entries.get(entry.get("parent"))
        if entry is not None:
            found[code] = entry["deadline_rule"]
    return found


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _validated(record_type: str, fields: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    errors = validate_fields(record_type, fields, partial=partial, codes=_codes())
    if errors:
        raise ValidationError(f"invalid {record_type}: " + ", ".join(sorted(errors)), errors)
    return dict(fields)


# Edits carry a nonce: the same change made by two copies of a store at one stamp is still two
# operations (protocol §4.1).
_EDITS = frozenset({OpKind.UPDATE, OpKind.DELETE, OpKind.RESOLVE})


class Records:
    """Mixin of :class:`~client_sdk.Client`: the field API over the local store."""

    store: Store
    device_id: str
    _now_ms: Callable[[], int]
    _today: Callable[[], date]

    # --- writing -----------------------------------------------------------------------------

    def _write(self, kind: OpKind, record_type: str, record_id: str, **kw: Any) -> Operation:
        user = self.store.cached("user") or {}
        offset = self.store.cached("clock_offset_ms", 0)

        def make(seq: int, base_version: int, last: str | None) -> Operation:
            clock = HybridClock(
                self.device_id,
                now=lambda: self._now_ms() + offset,
                last=HLC.parse(last) if last else None,
                max_drift_ms=10**15,
            )
            return Operation(
                self.device_id,
                seq,
                kind,
                record_type,
                record_id,
                base_version,
                str(clock.now()),
                str(user.get("username", "")),
                **kw,
            )

        if kind in _EDITS:  # a create or an append has a random record or item id already
            kw["nonce"] = secrets.token_urlsafe(8)
        grid = kw.get("fields", {}).get("grid_code")
        return self.store.add_op(record_id, make, grid_code=grid)

    def _create(self, record_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        clean = {k: v for k, v in fields.items() if v is not None}
        values = _validated(record_type, clean, partial=False)
        record_id = new_record_id()  # time-ordered: kind to the server's indexes
        self._write(OpKind.CREATE, record_type, record_id, fields=values)
        return self.get(record_id)

    def _live(self, record_id: str, record_type: str | None = None) -> dict[str, Any]:
        view = self.store.view(record_id)
        if view is None or view["deleted"] or (record_type and view["type"] != record_type):
            raise RecordNotFound(
                f"no {record_type or 'record'} {record_id} on this device", record_id=record_id
            )
        return view

    def create_household(self, *, grid_code: str, address: str, **fields: Any) -> dict[str, Any]:
        """Register a household (户) in a grid."""
        return self._create("household", {"grid_code": grid_code, "address": address, **fields})

    def create_resident(self, *, grid_code: str, name: str, **fields: Any) -> dict[str, Any]:
        """Register a resident; ``household_id``, ``id_number``, ``phone``, ``tags`` optional."""
        return self._create("resident", {"grid_code": grid_code, "name": name, **fields})

    def record_visit(
        self,
        *,
        grid_code: str,
        findings: str | None = None,
        notes: list[str] | None = None,
        visited_at: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Record a door-to-door visit (走访); each of ``notes`` becomes a note item."""
        for text in notes or []:
            self._check_note(text)
        when = visited_at or datetime.now().astimezone().isoformat(timespec="seconds")
        view = self._create(
            "visit", {"grid_code": grid_code, "visited_at": when, "findings": findings, **fields}
        )
        for text in notes or []:
            view = self.add_note(view["id"], text)
        return view

    def screen_dispute(
        self, *, grid_code: str, title: str, category: str, **fields: Any
    ) -> dict[str, Any]:
        """Report a dispute found while screening (矛盾纠纷排查); it starts as ``reported``."""
        return self._create(
            "dispute", {"grid_code": grid_code, "title": title, "category": category, **fields}
        )

    def update(self, record_id: str, **fields: Any) -> dict[str, Any]:
        """Change some fields of a record (``None`` clears an optional field)."""
        view = self._live(record_id)
        if not fields:
            raise ValidationError("nothing to update", {"fields": "give at least one field"})
        values = _validated(view["type"], fields, partial=True)
        self._write(OpKind.UPDATE, view["type"], record_id, fields=values)
        return self.get(record_id)

    def delete(self, record_id: str) -> None:
        """Delete a record (a tombstone: the server keeps its last values)."""
        view = self._live(record_id)
        self._write(OpKind.DELETE, view["type"], record_id)

    def _check_note(self, text: object) -> None:
        if not isinstance(text, str) or not text.strip() or len(text) > NOTE_MAX:
            raise ValidationError("invalid note", {"text": f"1-{NOTE_MAX} characters of text"})

    def add_note(self, record_id: str, text: str) -> dict[str, Any]:
        """Append a note to a record's ``notes`` (append-only: notes never conflict)."""
        self._check_note(text)
        view = self._live(record_id)
        at = datetime.now().astimezone().isoformat(timespec="seconds")
        item = {"id": str(uuid.uuid4()), "text": text, "at": at}
        self._write(OpKind.APPEND, view["type"], record_id, collection="notes", item=item)
        return self.get(record_id)

    # --- dispute workflow --------------------------------------------------------------------

    def _case(self, view: Mapping[str, Any]) -> CaseState:
        """The case as the rules see it, with this device's unsynced steps applied."""
        f = view["fields"]
        case = CaseState(
            status=f.get("status") or "reported",
            category=f.get("category") or "",
            rule_code=_category_rules().get(f.get("category") or ""),
            accepted_on=_date(f.get("accepted_on")),
            due_date=_date(f.get("due_date")),
            extension_used=bool(f.get("extension_used")),
            extension_days=int(f.get("extension_days") or 0),
            extension_pending=f.get("extension_pending"),
            supervision=f.get("supervision"),
        )
        role = self._role()
        for step in view["collections"].get("steps", []):
            if "to" in step or "action" not in step:
                continue  # decided by the server: already in the fields
            params = {
                **step.get("params", {}),
                **({"opinion": step["opinion"]} if step.get("opinion") else {}),
            }
            decision = decide(
                case, step["action"], role, params, today=self._today(), rules=_rules()
            )
            if isinstance(decision, Allowed):
                case = apply_transition(case, decision)
        return case

    def _role(self) -> str:
        return str((self.store.cached("user") or {}).get("role", "grid_worker"))

    def allowed_actions(self, dispute_id: str) -> list[str]:
        """Workflow actions the signed-in role may try now on this dispute."""
        case = self._case(self._live(dispute_id, "dispute"))
        return [str(a) for a in allowed_actions(case, self._role())]

    def advance(
        self, dispute_id: str, action: str, *, opinion: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """Take a workflow step (start, resolve, follow_up, request_extension, ...).

        Checked here with the server's rules; the server decides again when the step arrives.
        """
        view = self._live(dispute_id, "dispute")
        full = {**params, **({"opinion": opinion} if opinion else {})}
        decision = decide(
            self._case(view), action, self._role(), full, today=self._today(), rules=_rules()
        )
        if not isinstance(decision, Allowed):
            raise IllegalTransition(decision.message, reason_code=str(decision.reason_code))
        item = {
            "id": str(uuid.uuid4()),
            "action": str(action),
            "params": params,
            "opinion": opinion,
        }
        self._write(OpKind.APPEND, "dispute", dispute_id, collection="steps", item=item)
        return self.get(dispute_id)

    # --- reading -----------------------------------------------------------------------------

    def get(self, record_id: str) -> dict[str, Any]:
        """One record as the worker sees it (deleted records included, ``deleted`` true)."""
        view = self.store.view(record_id)
        if view is None:
            raise RecordNotFound(f"no record {record_id} on this device", record_id=record_id)
        return view

    def find(
        self,
        record_type: str | None = None,
        *,
        grid_code: str | None = None,
        include_deleted: bool = False,
        **equals: Any,
    ) -> list[dict[str, Any]]:
        """Records of a type (and grid) whose fields equal ``equals``."""
        return [
            v
            for v in self.store.views(record_type, grid_code)
            if (include_deleted or not v["deleted"])
            and all(v["fields"].get(k) == val for k, val in equals.items())
        ]

    def households(self, grid_code: str | None = None) -> list[dict[str, Any]]:
        return self.find("household", grid_code=grid_code)

    def residents(
        self, grid_code: str | None = None, *, household_id: str | None = None
    ) -> list[dict[str, Any]]:
        extra = {"household_id": household_id} if household_id else {}
        return self.find("resident", grid_code=grid_code, **extra)

    def visits(self, grid_code: str | None = None) -> list[dict[str, Any]]:
        return self.find("visit", grid_code=grid_code)

    def disputes(self, grid_code: str | None = None) -> list[dict[str, Any]]:
        return self.find("dispute", grid_code=grid_code)

    def _resolve_values(self, view: Mapping[str, Any], field: str, value: Any) -> dict[str, Any]:
        if field == DELETED:
            if not isinstance(value, bool):
                raise ValidationError("invalid resolution", {field: "must be true or false"})
            return {field: value}
        return _validated(view["type"], {field: value}, partial=True)
