"""The dispute case (矛盾纠纷) workflow as a pure state machine.

The server is authoritative; the device SDK runs the same :func:`decide` to pre-check what a
worker may do offline. ``decide`` does no I/O and never reads the clock (callers pass ``today``);
it never raises on bad input from the field: every problem comes back as :class:`Refused` with a
:class:`RefusalCode`.

Main path (``MAIN_PATH``)::

    reported → accepted → assigned → in_progress → resolved → followed_up → closed
    已上报       已受理      已交办       办理中          已化解       已回访          已归档

Side exits: ``reject`` (reported/escalated → rejected 不予受理, terminal) and ``escalate`` by the
community head (reported/accepted/assigned/in_progress → escalated 已上报街道). A street or
district admin then accepts the escalated case (escalated → accepted, the street-level
acceptance restarts the clock) or rejects it. ``closed`` and ``rejected`` are terminal.

Roles: grid workers start, resolve and follow up; heads and admins (community_head,
street_admin, district_admin) accept, reject, assign, close, return and approve or refuse
extensions; only the community head escalates; heads and admins supervise (督办) any open case
without changing its status. Extensions are requested by the grid worker or the head while the
case is assigned or in progress, granted once per case. ``decide`` checks the role only: whether
the actor's territory covers the case (their grid, community, street) is the server's permission
layer's job.

``return`` (退回) goes to a status strictly earlier on the main path and clears what the later
steps set (e.g. back to ``accepted`` clears the responsible person and due date).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from .deadlines import DeadlineRule, DeadlineRules
from .deadlines import due_date as _rule_due_date

__all__ = [
    "MAIN_PATH",
    "TRANSITIONS",
    "Allowed",
    "CaseAction",
    "CaseState",
    "CaseStatus",
    "MediationOutcome",
    "Move",
    "RefusalCode",
    "Refused",
    "Role",
    "SupervisionLevel",
    "Transition",
    "allowed_actions",
    "apply_transition",
    "decide",
    "open_case",
]


class CaseStatus(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"
    ESCALATED = "escalated"


class CaseAction(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ASSIGN = "assign"
    START = "start"
    RESOLVE = "resolve"
    FOLLOW_UP = "follow_up"
    CLOSE = "close"
    RETURN = "return"
    ESCALATE = "escalate"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REFUSE_EXTENSION = "refuse_extension"
    SUPERVISE = "supervise"


class Role(StrEnum):
    GRID_WORKER = "grid_worker"
    COMMUNITY_HEAD = "community_head"
    STREET_ADMIN = "street_admin"
    DISTRICT_ADMIN = "district_admin"


class MediationOutcome(StrEnum):
    WRITTEN_AGREEMENT = "written_agreement"
    ORAL_AGREEMENT = "oral_agreement"
    FAILED = "failed"


class SupervisionLevel(StrEnum):
    NORMAL = "normal"  # 普通督办
    YELLOW = "yellow"  # 黄牌督办
    RED = "red"  # 红牌督办


class RefusalCode(StrEnum):
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_STATUS = "unknown_status"
    UNKNOWN_ROLE = "unknown_role"
    UNKNOWN_RULE = "unknown_rule"
    ILLEGAL_TRANSITION = "illegal_transition"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    MISSING_PARAM = "missing_param"
    INVALID_PARAM = "invalid_param"
    RETURN_NOT_EARLIER = "return_not_earlier"
    NO_DUE_DATE = "no_due_date"
    EXTENSION_NOT_ALLOWED = "extension_not_allowed"
    EXTENSION_ALREADY_USED = "extension_already_used"
    EXTENSION_ALREADY_PENDING = "extension_already_pending"
    EXTENSION_TOO_LONG = "extension_too_long"
    NOT_PENDING_EXTENSION = "not_pending_extension"


_S, _A, _R, _RC = CaseStatus, CaseAction, Role, RefusalCode
MAIN_PATH: tuple[CaseStatus, ...] = (
    _S.REPORTED, _S.ACCEPTED, _S.ASSIGNED, _S.IN_PROGRESS, _S.RESOLVED, _S.FOLLOWED_UP, _S.CLOSED,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Move:
    """One row of the table: the status reached (None: the ``return`` target) and who may."""

    to_status: CaseStatus | None
    roles: frozenset[Role]


_WORKER = frozenset({_R.GRID_WORKER})
_HEAD = frozenset({_R.COMMUNITY_HEAD})
_HEADS = frozenset({_R.COMMUNITY_HEAD, _R.STREET_ADMIN, _R.DISTRICT_ADMIN})
_STREET_UP = frozenset({_R.STREET_ADMIN, _R.DISTRICT_ADMIN})
_EXTENSION_STATUSES = frozenset({_S.ASSIGNED, _S.IN_PROGRESS})
_OPEN = (*MAIN_PATH[:-1], _S.ESCALATED)


def _table() -> dict[tuple[CaseStatus, CaseAction], Move]:
    rows = {
        (_S.REPORTED, _A.ACCEPT): Move(_S.ACCEPTED, _HEADS),
        (_S.REPORTED, _A.REJECT): Move(_S.REJECTED, _HEADS),
        (_S.ACCEPTED, _A.ASSIGN): Move(_S.ASSIGNED, _HEADS),
        (_S.ASSIGNED, _A.START): Move(_S.IN_PROGRESS, _WORKER),
        (_S.IN_PROGRESS, _A.RESOLVE): Move(_S.RESOLVED, _WORKER),
        (_S.RESOLVED, _A.FOLLOW_UP): Move(_S.FOLLOWED_UP, _WORKER),
        (_S.FOLLOWED_UP, _A.CLOSE): Move(_S.CLOSED, _HEADS),
        (_S.ESCALATED, _A.ACCEPT): Move(_S.ACCEPTED, _STREET_UP),
        (_S.ESCALATED, _A.REJECT): Move(_S.REJECTED, _STREET_UP),
    }
    for status in (_S.REPORTED, _S.ACCEPTED, _S.ASSIGNED, _S.IN_PROGRESS):
        rows[status, _A.ESCALATE] = Move(_S.ESCALATED, _HEAD)
    for status in MAIN_PATH[1:-1]:
        rows[status, _A.RETURN] = Move(None, _HEADS)
    for status in _EXTENSION_STATUSES:
        rows[status, _A.REQUEST_EXTENSION] = Move(status, _WORKER | _HEAD)
        rows[status, _A.APPROVE_EXTENSION] = Move(status, _HEADS)
        rows[status, _A.REFUSE_EXTENSION] = Move(status, _HEADS)
    for status in _OPEN:
        rows[status, _A.SUPERVISE] = Move(status, _HEADS)
    return rows


TRANSITIONS: Mapping[tuple[CaseStatus, CaseAction], Move] = _table()

# Fields each main-path step sets; ``return`` clears those of the steps after its target.
_SET_BY_STEP: dict[CaseStatus, tuple[str, ...]] = {
    _S.ACCEPTED: ("accepted_on",),
    _S.ASSIGNED: ("responsible_unit", "responsible_person", "due_date"),
    _S.IN_PROGRESS: ("started_on",),
    _S.RESOLVED: ("mediation_outcome", "resolved_on"),
    _S.FOLLOWED_UP: ("followed_up_on",),
}


@dataclass(frozen=True, slots=True)
class CaseState:
    """What the rules need to know about a case. ``extension_days`` is the granted extension."""

    status: CaseStatus | str
    category: str = ""
    rule_code: str | None = None
    accepted_on: date | None = None
    due_date: date | None = None
    extension_used: bool = False
    extension_days: int = 0
    extension_pending: int | None = None
    supervision: SupervisionLevel | None = None


@dataclass(frozen=True, slots=True)
class Allowed:
    """The action may happen: set ``changes`` on the case and append ``step`` to its history.

    Values in ``changes`` and ``step`` are wire-ready: dates are ISO strings, enums plain strings.
    """

    to_status: CaseStatus
    changes: dict[str, Any] = field(default_factory=dict)
    step: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    """The action may not happen, and why. ``message`` is for developers and logs."""

    reason_code: RefusalCode
    message: str


Transition = Allowed | Refused


_E = TypeVar("_E", bound=StrEnum)


class _Refusal(Exception):
    """Internal shortcut out of a handler; always turned into ``Refused`` by ``decide``."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.refused = Refused(code, message)


@dataclass(frozen=True, slots=True)
class _Context:
    case: CaseState
    status: CaseStatus
    params: Mapping[str, Any]
    today: date
    rules: DeadlineRules

    def rule(self) -> DeadlineRule:
        try:
            return self.rules.rule_for(self.case.rule_code)
        except KeyError:
            raise _Refusal(_RC.UNKNOWN_RULE, f"no deadline rule {self.case.rule_code!r}") from None


def decide(
    case: CaseState,
    action: CaseAction | str,
    actor_role: str,
    params: Mapping[str, Any],
    *,
    today: date,
    rules: DeadlineRules,
) -> Transition:
    """Whether ``actor_role`` may do ``action`` on ``case`` with ``params``, and what it changes."""
    try:
        act, status, role = _parse(_A, action), _parse(_S, case.status), _parse(_R, actor_role)
        if act is None:
            raise _Refusal(_RC.UNKNOWN_ACTION, f"unknown action {action!r}")
        if status is None:
            raise _Refusal(_RC.UNKNOWN_STATUS, f"unknown case status {case.status!r}")
        if role is None:
            raise _Refusal(_RC.UNKNOWN_ROLE, f"unknown role {actor_role!r}")
        move = TRANSITIONS.get((status, act))
        if move is None:
            raise _Refusal(_RC.ILLEGAL_TRANSITION, f"cannot {act} a case that is {status}")
        if role not in move.roles:
            raise _Refusal(_RC.ROLE_NOT_ALLOWED, f"a {role} may not {act} a case that is {status}")
        if not isinstance(params, Mapping):
            raise _Refusal(_RC.INVALID_PARAM, "params must be a mapping")
        ctx = _Context(case, status, params, today, rules)
        changes, step_params, opinion = _HANDLERS[act](ctx)
    except _Refusal as refusal:
        return refusal.refused
    to_status = CaseStatus(changes.get("status", status))
    if case.extension_pending is not None and to_status not in _EXTENSION_STATUSES:
        changes.setdefault("extension_pending", None)
    step = {
        "action": act.value,
        "from": status.value,
        "to": to_status.value,
        "actor_role": role.value,
        "on": today.isoformat(),
        "opinion": opinion,
        "params": step_params,
    }
    return Allowed(to_status, changes, step)


def allowed_actions(case: CaseState, actor_role: str) -> tuple[CaseAction, ...]:
    """Actions the table lets ``actor_role`` try now (params and deadline rules not checked)."""
    status, role = _parse(_S, case.status), _parse(_R, actor_role)
    if status is None or role is None:
        return ()
    found = []
    for act in CaseAction:
        move = TRANSITIONS.get((status, act))
        if move is None or role not in move.roles:
            continue
        pending = case.extension_pending is not None
        if act is _A.REQUEST_EXTENSION and (case.extension_used or pending):
            continue
        if act in (_A.APPROVE_EXTENSION, _A.REFUSE_EXTENSION) and not pending:
            continue
        found.append(act)
    return tuple(found)


def open_case(actor_role: str, *, today: date) -> Transition:
    """Report (排查/上报) a new case: any known role may; the case starts as ``reported``."""
    role = _parse(_R, actor_role)
    if role is None:
        return Refused(_RC.UNKNOWN_ROLE, f"unknown role {actor_role!r}")
    changes = {"status": _S.REPORTED.value, "reported_on": today.isoformat()}
    step = {"action": "report", "from": None, "to": _S.REPORTED.value, "actor_role": role.value,
            "on": today.isoformat(), "opinion": None, "params": {}}  # fmt: skip
    return Allowed(_S.REPORTED, changes, step)


def apply_transition(case: CaseState, allowed: Allowed) -> CaseState:
    """The case state after ``allowed`` (what the device keeps as its local projection)."""
    c = allowed.changes
    updates: dict[str, Any] = {"status": allowed.to_status}
    for name in ("accepted_on", "due_date"):
        if name in c:
            updates[name] = date.fromisoformat(c[name]) if c[name] else None
    for name in ("extension_used", "extension_days", "extension_pending"):
        if name in c:
            updates[name] = c[name]
    if "supervision" in c:
        updates["supervision"] = SupervisionLevel(c["supervision"])
    return replace(case, **updates)


# --- handlers: each returns (changes, step params, opinion) or raises _Refusal ---------------

_Result = tuple[dict[str, Any], dict[str, Any], str | None]


def _accept(ctx: _Context) -> _Result:
    changes = {"status": _S.ACCEPTED.value, "accepted_on": ctx.today.isoformat()}
    return changes, {}, _opinion(ctx)


def _reject(ctx: _Context) -> _Result:
    reason = _text(ctx, "reason")
    return {"status": _S.REJECTED.value, "rejection_reason": reason}, {"reason": reason}, reason


def _assign(ctx: _Context) -> _Result:
    unit, person = _text(ctx, "responsible_unit"), _text(ctx, "responsible_person")
    accepted_on = ctx.case.accepted_on or ctx.today  # legacy rows may lack the acceptance date
    due = _rule_due_date(ctx.rule(), accepted_on) + timedelta(days=ctx.case.extension_days)
    changes = {"status": _S.ASSIGNED.value, "responsible_unit": unit,
               "responsible_person": person, "due_date": due.isoformat()}  # fmt: skip
    return changes, {"responsible_unit": unit, "responsible_person": person}, _opinion(ctx)


def _start(ctx: _Context) -> _Result:
    return {"status": _S.IN_PROGRESS.value, "started_on": ctx.today.isoformat()}, {}, _opinion(ctx)


def _resolve(ctx: _Context) -> _Result:
    outcome = _choice(ctx, "mediation_outcome", MediationOutcome)
    changes = {"status": _S.RESOLVED.value, "mediation_outcome": outcome.value,
               "resolved_on": ctx.today.isoformat()}  # fmt: skip
    return changes, {"mediation_outcome": outcome.value}, _opinion(ctx)


def _follow_up(ctx: _Context) -> _Result:
    note = _text(ctx, "note")
    changes = {"status": _S.FOLLOWED_UP.value, "followed_up_on": ctx.today.isoformat()}
    return changes, {"note": note}, note


def _close(ctx: _Context) -> _Result:
    return {"status": _S.CLOSED.value, "closed_on": ctx.today.isoformat()}, {}, _opinion(ctx)


def _return(ctx: _Context) -> _Result:
    target = _choice(ctx, "target_status", CaseStatus)
    if target not in MAIN_PATH or MAIN_PATH.index(target) >= MAIN_PATH.index(ctx.status):
        raise _Refusal(_RC.RETURN_NOT_EARLIER, f"cannot return from {ctx.status} to {target}")
    reason = _text(ctx, "reason")
    changes: dict[str, Any] = {"status": target.value}
    for later in MAIN_PATH[MAIN_PATH.index(target) + 1 :]:
        changes.update(dict.fromkeys(_SET_BY_STEP.get(later, ()), None))
    return changes, {"target_status": target.value, "reason": reason}, reason


def _escalate(ctx: _Context) -> _Result:
    reason = _text(ctx, "reason")
    changes = {"status": _S.ESCALATED.value, "escalated_on": ctx.today.isoformat(),
               "escalation_reason": reason}  # fmt: skip
    return changes, {"reason": reason}, reason


def _request_extension(ctx: _Context) -> _Result:
    case, rule = ctx.case, ctx.rule()
    if rule.max_extensions == 0:
        raise _Refusal(_RC.EXTENSION_NOT_ALLOWED, f"rule {rule.code!r} allows no extension")
    if case.extension_used:
        raise _Refusal(_RC.EXTENSION_ALREADY_USED, "the one extension has been used")
    if case.extension_pending is not None:
        raise _Refusal(_RC.EXTENSION_ALREADY_PENDING, "an extension request is pending")
    days = _days(ctx, "days")
    if days > rule.max_extension_days:
        raise _Refusal(_RC.EXTENSION_TOO_LONG, f"at most {rule.max_extension_days} days")
    _current_due(ctx, rule)
    reason = _text(ctx, "reason")
    changes = {"extension_pending": days, "extension_reason": reason}
    return changes, {"days": days, "reason": reason}, reason


def _approve_extension(ctx: _Context) -> _Result:
    case, rule = ctx.case, ctx.rule()
    days = _pending_days(case)
    if case.extension_used:
        raise _Refusal(_RC.EXTENSION_ALREADY_USED, "the one extension has been used")
    if days > rule.max_extension_days:
        raise _Refusal(_RC.EXTENSION_TOO_LONG, f"at most {rule.max_extension_days} days")
    due = _current_due(ctx, rule) + timedelta(days=days)
    changes = {"due_date": due.isoformat(), "extension_used": True, "extension_days": days,
               "extension_pending": None}  # fmt: skip
    return changes, {"days": days}, _opinion(ctx)


def _refuse_extension(ctx: _Context) -> _Result:
    days = _pending_days(ctx.case)
    reason = _text(ctx, "reason")
    return {"extension_pending": None}, {"days": days, "reason": reason}, reason


def _supervise(ctx: _Context) -> _Result:
    level = _choice(ctx, "level", SupervisionLevel)
    note = _text(ctx, "note")
    changes = {"supervision": level.value, "supervised_on": ctx.today.isoformat()}
    return changes, {"level": level.value, "note": note}, note


_HANDLERS = {
    _A.ACCEPT: _accept,
    _A.REJECT: _reject,
    _A.ASSIGN: _assign,
    _A.START: _start,
    _A.RESOLVE: _resolve,
    _A.FOLLOW_UP: _follow_up,
    _A.CLOSE: _close,
    _A.RETURN: _return,
    _A.ESCALATE: _escalate,
    _A.REQUEST_EXTENSION: _request_extension,
    _A.APPROVE_EXTENSION: _approve_extension,
    _A.REFUSE_EXTENSION: _refuse_extension,
    _A.SUPERVISE: _supervise,
}


# --- param and state helpers ----------------------------------------------------------------


def _parse(enum: type[_E], value: object) -> _E | None:
    if not isinstance(value, str):
        return None
    try:
        return enum(value)
    except ValueError:
        return None


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _required(ctx: _Context, key: str) -> object:
    value = ctx.params.get(key)
    if _is_blank(value):
        raise _Refusal(_RC.MISSING_PARAM, f"{key!r} is required")
    return value


def _text(ctx: _Context, key: str) -> str:
    value = _required(ctx, key)
    if not isinstance(value, str):
        raise _Refusal(_RC.INVALID_PARAM, f"{key!r} must be text")
    return value.strip()


def _opinion(ctx: _Context) -> str | None:
    if _is_blank(ctx.params.get("opinion")):
        return None
    return _text(ctx, "opinion")


def _choice(ctx: _Context, key: str, enum: type[_E]) -> _E:
    parsed = _parse(enum, _required(ctx, key))
    if parsed is None:
        raise _Refusal(_RC.INVALID_PARAM, f"{key!r} must be one of {[e.value for e in enum]}")
    return parsed


def _days(ctx: _Context, key: str) -> int:
    value = _required(ctx, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Refusal(_RC.INVALID_PARAM, f"{key!r} must be a positive whole number of days")
    return value


def _pending_days(case: CaseState) -> int:
    days = case.extension_pending
    if days is None:
        raise _Refusal(_RC.NOT_PENDING_EXTENSION, "no extension request is pending")
    return days


def _current_due(ctx: _Context, rule: DeadlineRule) -> date:
    if ctx.case.due_date is not None:
        return ctx.case.due_date
    if ctx.case.accepted_on is not None:
        return _rule_due_date(rule, ctx.case.accepted_on)
    raise _Refusal(_RC.NO_DUE_DATE, "the case has neither a due date nor an acceptance date")
