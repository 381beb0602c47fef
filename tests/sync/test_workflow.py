"""The dispute case workflow: the transition table, parameter checks, extensions, returns."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sync.deadlines import DeadlineRules
from sync.workflow import (
    MAIN_PATH,
    TRANSITIONS,
    Allowed,
    CaseAction,
    CaseState,
    CaseStatus,
    RefusalCode,
    Refused,
    Role,
    SupervisionLevel,
    allowed_actions,
    apply_transition,
    decide,
    open_case,
)

RULES = DeadlineRules.from_dict(
    json.loads((Path(__file__).parents[2] / "fixtures/data/deadline_rules.json").read_text("utf-8"))
)
TODAY = date(2024, 3, 1)
A, S, R, RC = CaseAction, CaseStatus, Role, RefusalCode

PARAMS: dict[CaseAction, dict[str, Any]] = {
    A.ACCEPT: {},
    A.REJECT: {"reason": "不属于受理范围"},
    A.ASSIGN: {"responsible_unit": "幸福社区调委会", "responsible_person": "王网格"},
    A.START: {},
    A.RESOLVE: {"mediation_outcome": "written_agreement"},
    A.FOLLOW_UP: {"note": "双方履行协议"},
    A.CLOSE: {},
    A.RETURN: {"reason": "材料不全"},  # target_status added per case
    A.ESCALATE: {"reason": "涉及多个社区"},
    A.REQUEST_EXTENSION: {"days": 10, "reason": "当事人外出"},
    A.APPROVE_EXTENSION: {},
    A.REFUSE_EXTENSION: {"reason": "理由不充分"},
    A.SUPERVISE: {"level": "yellow", "note": "请加快办理"},
}


def make_case(status: CaseStatus, action: CaseAction | None = None, **kw: Any) -> CaseState:
    """A case in ``status`` with what ``action`` needs (a pending request for approve/refuse)."""
    pending = 10 if action in (A.APPROVE_EXTENSION, A.REFUSE_EXTENSION) else None
    fields = {
        "category": "neighbour",
        "rule_code": "mediation",
        "accepted_on": date(2024, 2, 1),
        "due_date": date(2024, 3, 2),
        "extension_pending": pending,
    }
    return CaseState(status, **(fields | kw))


def params_for(status: CaseStatus, action: CaseAction) -> dict[str, Any]:
    params = dict(PARAMS[action])
    if action is A.RETURN and status in MAIN_PATH[1:]:
        params["target_status"] = MAIN_PATH[MAIN_PATH.index(status) - 1].value
    return params


def run(case: CaseState, action: str, role: str, params: Any = None, **kw: Any) -> Any:
    return decide(case, action, role, {} if params is None else params, today=TODAY, rules=RULES)


LEGAL = sorted(
    (s, a, r) for (s, a), move in TRANSITIONS.items() for r in move.roles
)  # fmt: skip
ILLEGAL = [
    (s, a, r)
    for s in CaseStatus
    for a in CaseAction
    for r in Role
    if (s, a) not in TRANSITIONS or r not in TRANSITIONS[s, a].roles
]


def test_table_covers_every_combination_once() -> None:
    assert len(LEGAL) + len(ILLEGAL) == len(CaseStatus) * len(CaseAction) * len(Role)
    assert len(LEGAL) == len(set(LEGAL)) and not set(LEGAL) & set(ILLEGAL)


@pytest.mark.parametrize(("status", "action", "role"), LEGAL)
def test_every_legal_move_is_allowed(status: CaseStatus, action: CaseAction, role: Role) -> None:
    result = run(make_case(status, action), action, role, params_for(status, action))
    assert isinstance(result, Allowed), result
    expected = TRANSITIONS[status, action].to_status
    if expected is None:  # return: the target given in params
        expected = CaseStatus(params_for(status, action)["target_status"])
    assert result.to_status is expected
    assert result.changes.get("status", status) == expected
    assert result.step["action"] == action and result.step["actor_role"] == role
    assert (result.step["from"], result.step["to"]) == (status, expected)
    assert result.step["on"] == "2024-03-01"


@pytest.mark.parametrize(("status", "action", "role"), ILLEGAL)
def test_every_illegal_move_is_refused(status: CaseStatus, action: CaseAction, role: Role) -> None:
    result = run(make_case(status, action), action, role, params_for(status, action))
    assert isinstance(result, Refused)
    expected = RC.ILLEGAL_TRANSITION if (status, action) not in TRANSITIONS else RC.ROLE_NOT_ALLOWED
    assert result.reason_code is expected
    assert result.message


# A hand-written reading of the table, so an accidental edit to it fails a test.
@pytest.mark.parametrize(
    ("status", "action", "role", "to"),
    [
        (S.REPORTED, A.ACCEPT, R.COMMUNITY_HEAD, S.ACCEPTED),
        (S.REPORTED, A.REJECT, R.STREET_ADMIN, S.REJECTED),
        (S.ACCEPTED, A.ASSIGN, R.COMMUNITY_HEAD, S.ASSIGNED),
        (S.ASSIGNED, A.START, R.GRID_WORKER, S.IN_PROGRESS),
        (S.IN_PROGRESS, A.RESOLVE, R.GRID_WORKER, S.RESOLVED),
        (S.RESOLVED, A.FOLLOW_UP, R.GRID_WORKER, S.FOLLOWED_UP),
        (S.FOLLOWED_UP, A.CLOSE, R.DISTRICT_ADMIN, S.CLOSED),
        (S.IN_PROGRESS, A.ESCALATE, R.COMMUNITY_HEAD, S.ESCALATED),
        (S.ESCALATED, A.ACCEPT, R.STREET_ADMIN, S.ACCEPTED),
        (S.ASSIGNED, A.SUPERVISE, R.STREET_ADMIN, S.ASSIGNED),
    ],
)
def test_core_moves(status: CaseStatus, action: CaseAction, role: Role, to: CaseStatus) -> None:
    result = run(make_case(status, action), action, role, params_for(status, action))
    assert isinstance(result, Allowed) and result.to_status is to


@pytest.mark.parametrize(
    ("status", "action", "role"),
    [
        (S.REPORTED, A.ACCEPT, R.GRID_WORKER),
        (S.ASSIGNED, A.START, R.COMMUNITY_HEAD),
        (S.IN_PROGRESS, A.ESCALATE, R.GRID_WORKER),
        (S.IN_PROGRESS, A.ESCALATE, R.STREET_ADMIN),
        (S.ESCALATED, A.ACCEPT, R.COMMUNITY_HEAD),
        (S.ASSIGNED, A.SUPERVISE, R.GRID_WORKER),
        (S.ASSIGNED, A.APPROVE_EXTENSION, R.GRID_WORKER),
    ],
)
def test_core_role_limits(status: CaseStatus, action: CaseAction, role: Role) -> None:
    result = run(make_case(status, action), action, role, params_for(status, action))
    assert isinstance(result, Refused) and result.reason_code is RC.ROLE_NOT_ALLOWED


REQUIRED = [
    (S.REPORTED, A.REJECT, R.COMMUNITY_HEAD, "reason"),
    (S.ACCEPTED, A.ASSIGN, R.COMMUNITY_HEAD, "responsible_unit"),
    (S.ACCEPTED, A.ASSIGN, R.COMMUNITY_HEAD, "responsible_person"),
    (S.IN_PROGRESS, A.RESOLVE, R.GRID_WORKER, "mediation_outcome"),
    (S.RESOLVED, A.FOLLOW_UP, R.GRID_WORKER, "note"),
    (S.ASSIGNED, A.RETURN, R.COMMUNITY_HEAD, "reason"),
    (S.ASSIGNED, A.RETURN, R.COMMUNITY_HEAD, "target_status"),
    (S.ASSIGNED, A.ESCALATE, R.COMMUNITY_HEAD, "reason"),
    (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days"),
    (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "reason"),
    (S.ASSIGNED, A.REFUSE_EXTENSION, R.COMMUNITY_HEAD, "reason"),
    (S.ASSIGNED, A.SUPERVISE, R.STREET_ADMIN, "level"),
    (S.ASSIGNED, A.SUPERVISE, R.STREET_ADMIN, "note"),
]


@pytest.mark.parametrize(("status", "action", "role", "key"), REQUIRED)
@pytest.mark.parametrize("blank", ["absent", None, "", "   "])
def test_missing_param_is_refused(
    status: CaseStatus, action: CaseAction, role: Role, key: str, blank: object
) -> None:
    params = params_for(status, action)
    if blank == "absent":
        del params[key]
    else:
        params[key] = blank
    result = run(make_case(status, action), action, role, params)
    assert result == Refused(RC.MISSING_PARAM, result.message)
    assert key in result.message


@pytest.mark.parametrize(
    ("status", "action", "role", "key", "value"),
    [
        (S.IN_PROGRESS, A.RESOLVE, R.GRID_WORKER, "mediation_outcome", "maybe"),
        (S.IN_PROGRESS, A.RESOLVE, R.GRID_WORKER, "mediation_outcome", 1),
        (S.ASSIGNED, A.SUPERVISE, R.STREET_ADMIN, "level", "orange"),
        (S.ASSIGNED, A.RETURN, R.COMMUNITY_HEAD, "target_status", "limbo"),
        (S.REPORTED, A.REJECT, R.COMMUNITY_HEAD, "reason", 42),
        (S.ACCEPTED, A.ASSIGN, R.COMMUNITY_HEAD, "responsible_person", ["王"]),
        (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days", 0),
        (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days", -3),
        (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days", True),
        (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days", "10"),
        (S.ASSIGNED, A.REQUEST_EXTENSION, R.GRID_WORKER, "days", 10.0),
        (S.FOLLOWED_UP, A.CLOSE, R.COMMUNITY_HEAD, "opinion", 7),
    ],
)
def test_invalid_param_is_refused(
    status: CaseStatus, action: CaseAction, role: Role, key: str, value: object
) -> None:
    params = params_for(status, action) | {key: value}
    result = run(make_case(status, action), action, role, params)
    assert isinstance(result, Refused) and result.reason_code is RC.INVALID_PARAM


@pytest.mark.parametrize(
    ("case", "action", "role", "params", "code"),
    [
        (CaseState("archived"), "accept", "community_head", {}, RC.UNKNOWN_STATUS),
        (CaseState(S.REPORTED), "promote", "community_head", {}, RC.UNKNOWN_ACTION),
        (CaseState(S.REPORTED), None, "community_head", {}, RC.UNKNOWN_ACTION),
        (CaseState(S.REPORTED), "accept", "mayor", {}, RC.UNKNOWN_ROLE),
        (CaseState(S.REPORTED), "accept", None, {}, RC.UNKNOWN_ROLE),
        (CaseState(S.REPORTED), "accept", "community_head", None, RC.INVALID_PARAM),
        (CaseState(S.REPORTED), "accept", "community_head", ["x"], RC.INVALID_PARAM),
        (
            CaseState(S.ACCEPTED, rule_code="labour"),
            "assign",
            "community_head",
            PARAMS[A.ASSIGN],
            RC.UNKNOWN_RULE,
        ),
    ],
)
def test_field_garbage_is_refused_not_raised(
    case: CaseState, action: Any, role: Any, params: Any, code: RefusalCode
) -> None:
    result = decide(case, action, role, params, today=TODAY, rules=RULES)
    assert isinstance(result, Refused) and result.reason_code is code


def test_plain_strings_work_like_enums() -> None:
    result = run(CaseState("reported"), "accept", "street_admin")
    assert result.to_status is S.ACCEPTED
    assert result.changes == {"status": "accepted", "accepted_on": "2024-03-01"}


@pytest.mark.parametrize(
    ("rule_code", "accepted_on", "extension_days", "due"),
    [
        ("mediation", date(2024, 1, 31), 0, "2024-03-01"),
        (None, date(2023, 2, 28), 0, "2023-03-30"),
        ("petition", date(2024, 1, 31), 0, "2024-03-31"),
        ("petition", date(2024, 1, 31), 30, "2024-04-30"),
        ("mediation", None, 0, "2024-03-31"),  # no acceptance date: counted from today
    ],
)
def test_assign_sets_the_due_date_from_the_rule(
    rule_code: str | None, accepted_on: date | None, extension_days: int, due: str
) -> None:
    case = CaseState(
        S.ACCEPTED, rule_code=rule_code, accepted_on=accepted_on, extension_days=extension_days
    )
    result = run(case, A.ASSIGN, R.COMMUNITY_HEAD, PARAMS[A.ASSIGN])
    assert result.changes["due_date"] == due
    assert result.changes["responsible_person"] == "王网格"


# --- extensions -----------------------------------------------------------------------------


def request(case: CaseState, days: object, role: Role = R.GRID_WORKER) -> Any:
    return run(case, A.REQUEST_EXTENSION, role, {"days": days, "reason": "当事人外出"})


@pytest.mark.parametrize(
    ("rule_code", "days", "code"),
    [
        ("petition", 30, None),
        ("petition", 31, RC.EXTENSION_TOO_LONG),
        ("petition", 90, RC.EXTENSION_TOO_LONG),
        ("mediation", 30, None),
        ("mediation", 31, RC.EXTENSION_TOO_LONG),
    ],
)
def test_extension_length_is_limited(rule_code: str, days: int, code: RefusalCode | None) -> None:
    result = request(make_case(S.IN_PROGRESS, rule_code=rule_code), days)
    if code is None:
        assert isinstance(result, Allowed)
        assert result.changes == {"extension_pending": days, "extension_reason": "当事人外出"}
        assert result.to_status is S.IN_PROGRESS
    else:
        assert result.reason_code is code


def test_extension_is_granted_at_most_once() -> None:
    case = make_case(S.ASSIGNED, rule_code="petition", due_date=date(2024, 3, 31))
    asked = request(case, 30)
    case = apply_transition(case, asked)
    assert case.extension_pending == 30
    assert request(case, 5).reason_code is RC.EXTENSION_ALREADY_PENDING

    approved = run(case, A.APPROVE_EXTENSION, R.STREET_ADMIN)
    assert approved.changes == {
        "due_date": "2024-04-30",
        "extension_used": True,
        "extension_days": 30,
        "extension_pending": None,
    }
    case = apply_transition(case, approved)
    assert (case.due_date, case.extension_used, case.extension_pending) == (
        date(2024, 4, 30),
        True,
        None,
    )
    assert request(case, 5).reason_code is RC.EXTENSION_ALREADY_USED
    assert request(case, 5, R.COMMUNITY_HEAD).reason_code is RC.EXTENSION_ALREADY_USED
    assert A.REQUEST_EXTENSION not in allowed_actions(case, R.GRID_WORKER)


def test_refused_extension_does_not_use_it_up() -> None:
    case = apply_transition(make_case(S.ASSIGNED), request(make_case(S.ASSIGNED), 10))
    refused = run(case, A.REFUSE_EXTENSION, R.COMMUNITY_HEAD, {"reason": "理由不充分"})
    assert refused.changes == {"extension_pending": None}
    assert refused.step["opinion"] == "理由不充分" and refused.step["params"]["days"] == 10
    case = apply_transition(case, refused)
    assert (case.extension_used, case.extension_pending, case.due_date) == (
        False,
        None,
        date(2024, 3, 2),
    )
    assert isinstance(request(case, 10), Allowed)


@pytest.mark.parametrize("action", [A.APPROVE_EXTENSION, A.REFUSE_EXTENSION])
def test_approve_or_refuse_needs_a_pending_request(action: CaseAction) -> None:
    result = run(make_case(S.IN_PROGRESS), action, R.COMMUNITY_HEAD, PARAMS[action])
    assert result.reason_code is RC.NOT_PENDING_EXTENSION


def test_approve_refuses_more_than_the_rule_allows() -> None:
    case = make_case(S.IN_PROGRESS, extension_pending=45)
    assert run(case, A.APPROVE_EXTENSION, R.STREET_ADMIN).reason_code is RC.EXTENSION_TOO_LONG


def test_approve_computes_from_acceptance_when_no_due_date_is_stored() -> None:
    case = make_case(S.IN_PROGRESS, due_date=None, extension_pending=10)
    assert run(case, A.APPROVE_EXTENSION, R.STREET_ADMIN).changes["due_date"] == "2024-03-12"
    bare = replace(case, accepted_on=None)
    assert run(bare, A.APPROVE_EXTENSION, R.STREET_ADMIN).reason_code is RC.NO_DUE_DATE


def test_a_rule_without_extensions() -> None:
    raw = json.loads((Path(__file__).parents[2] / "fixtures/data/deadline_rules.json").read_text())
    raw["rules"][0]["max_extensions"] = 0
    strict = DeadlineRules.from_dict(raw)
    result = decide(
        make_case(S.ASSIGNED),
        A.REQUEST_EXTENSION,
        R.GRID_WORKER,
        PARAMS[A.REQUEST_EXTENSION],
        today=TODAY,
        rules=strict,
    )
    assert result.reason_code is RC.EXTENSION_NOT_ALLOWED


def test_leaving_the_handling_statuses_drops_a_pending_request() -> None:
    case = make_case(S.IN_PROGRESS, extension_pending=10)
    result = run(case, A.RESOLVE, R.GRID_WORKER, PARAMS[A.RESOLVE])
    assert result.changes["extension_pending"] is None
    assert apply_transition(case, result).extension_pending is None


# --- return ---------------------------------------------------------------------------------

EARLIER = [
    (s, t) for i, s in enumerate(MAIN_PATH) if (s, A.RETURN) in TRANSITIONS for t in MAIN_PATH[:i]
]
NOT_EARLIER = [
    (s, t)
    for s in MAIN_PATH
    if (s, A.RETURN) in TRANSITIONS
    for t in CaseStatus
    if t not in MAIN_PATH[: MAIN_PATH.index(s)]
]


@pytest.mark.parametrize(("status", "target"), EARLIER)
def test_return_to_any_earlier_step(status: CaseStatus, target: CaseStatus) -> None:
    result = run(
        make_case(status), A.RETURN, R.STREET_ADMIN, {"target_status": target, "reason": "x"}
    )
    assert result.to_status is target
    assert result.step["opinion"] == "x"


@pytest.mark.parametrize(("status", "target"), NOT_EARLIER)
def test_return_only_to_an_earlier_step(status: CaseStatus, target: CaseStatus) -> None:
    result = run(
        make_case(status), A.RETURN, R.STREET_ADMIN, {"target_status": target, "reason": "x"}
    )
    assert result.reason_code is RC.RETURN_NOT_EARLIER


def test_return_clears_what_later_steps_set() -> None:
    params = {"target_status": "accepted", "reason": "交办对象有误"}
    result = run(make_case(S.IN_PROGRESS), A.RETURN, R.COMMUNITY_HEAD, params)
    assert result.changes == {
        "status": "accepted",
        "responsible_unit": None,
        "responsible_person": None,
        "due_date": None,
        "started_on": None,
        "mediation_outcome": None,
        "resolved_on": None,
        "followed_up_on": None,
    }
    case = apply_transition(make_case(S.IN_PROGRESS), result)
    assert (case.status, case.due_date, case.accepted_on) == (S.ACCEPTED, None, date(2024, 2, 1))


# --- other actions --------------------------------------------------------------------------


def test_supervise_records_the_level_without_moving() -> None:
    case = make_case(S.IN_PROGRESS)
    result = run(case, A.SUPERVISE, R.DISTRICT_ADMIN, {"level": "red", "note": "限期办结"})
    assert result.to_status is S.IN_PROGRESS and "status" not in result.changes
    assert result.changes == {"supervision": "red", "supervised_on": "2024-03-01"}
    assert apply_transition(case, result).supervision is SupervisionLevel.RED


def test_escalated_case_is_accepted_again_at_street_level() -> None:
    case = make_case(S.ASSIGNED)
    up = run(case, A.ESCALATE, R.COMMUNITY_HEAD, {"reason": "跨社区"})
    case = apply_transition(case, up)
    assert case.status is S.ESCALATED
    back = run(case, A.ACCEPT, R.STREET_ADMIN)
    assert back.changes["accepted_on"] == "2024-03-01"
    assert apply_transition(case, back).accepted_on == TODAY


def test_allowed_actions_reads_the_table() -> None:
    assert allowed_actions(make_case(S.ASSIGNED), R.GRID_WORKER) == (
        A.START,
        A.REQUEST_EXTENSION,
    )
    pending = make_case(S.ASSIGNED, extension_pending=5)
    assert A.APPROVE_EXTENSION in allowed_actions(pending, R.COMMUNITY_HEAD)
    assert allowed_actions(make_case(S.CLOSED), R.DISTRICT_ADMIN) == ()
    assert allowed_actions(CaseState("limbo"), R.GRID_WORKER) == ()


def test_open_case() -> None:
    opened = open_case(R.GRID_WORKER, today=TODAY)
    assert opened.to_status is S.REPORTED
    assert opened.step["action"] == "report" and opened.step["from"] is None
    assert open_case("visitor", today=TODAY).reason_code is RC.UNKNOWN_ROLE


def walk_to_closed() -> CaseState:
    case = CaseState(S.REPORTED)
    path = [
        (A.ACCEPT, R.COMMUNITY_HEAD),
        (A.ASSIGN, R.COMMUNITY_HEAD),
        (A.START, R.GRID_WORKER),
        (A.RESOLVE, R.GRID_WORKER),
        (A.FOLLOW_UP, R.GRID_WORKER),
        (A.CLOSE, R.COMMUNITY_HEAD),
    ]
    for action, role in path:
        case = apply_transition(case, run(case, action, role, PARAMS[action]))
    return case


@pytest.mark.parametrize("action", list(CaseAction))
@pytest.mark.parametrize("role", list(Role))
def test_closed_is_terminal(action: CaseAction, role: Role) -> None:
    case = walk_to_closed()
    assert case.status is S.CLOSED
    result = run(case, action, role, params_for(S.CLOSED, action) | {"target_status": "reported"})
    assert result.reason_code is RC.ILLEGAL_TRANSITION


# --- properties -----------------------------------------------------------------------------

field_values = st.one_of(
    st.none(), st.booleans(), st.integers(-100, 100), st.text(max_size=8), st.lists(st.integers())
)
param_keys = sorted({k for p in PARAMS.values() for k in p} | {"target_status", "opinion"})


@given(
    status=st.one_of(st.sampled_from(CaseStatus), st.text(max_size=8)),
    action=st.one_of(st.sampled_from(CaseAction), st.text(max_size=8), st.none()),
    role=st.one_of(st.sampled_from(Role), st.text(max_size=8)),
    params=st.dictionaries(st.sampled_from(param_keys), field_values),
    pending=st.one_of(st.none(), st.integers(1, 60)),
    used=st.booleans(),
)
def test_decide_never_raises(
    status: str, action: Any, role: str, params: dict, pending: int | None, used: bool
) -> None:
    case = make_case(status, extension_pending=pending, extension_used=used)  # type: ignore[arg-type]
    result = run(case, action, role, params)
    assert isinstance(result, Allowed | Refused)
    if isinstance(result, Allowed):
        assert result.to_status in CaseStatus


FORWARD = set(MAIN_PATH[1:])  # moves along the main path, so that walks often reach closed


@settings(max_examples=300)
@given(data=st.data())
def test_random_walks_stay_in_the_state_space(data: st.DataObject) -> None:
    case = CaseState(S.REPORTED, rule_code=data.draw(st.sampled_from(["mediation", "petition"])))
    for _ in range(data.draw(st.integers(0, 30))):
        legal = [(a, r) for (s, a), m in TRANSITIONS.items() if s == case.status for r in m.roles]
        forward = [(a, r) for a, r in legal if TRANSITIONS[case.status, a].to_status in FORWARD]
        mode = data.draw(st.sampled_from(["forward", "legal", "any"]))
        if mode == "forward" and forward:
            action, role = data.draw(st.sampled_from(forward))
        elif mode == "legal" and legal:
            action, role = data.draw(st.sampled_from(legal))
        else:
            action, role = data.draw(st.sampled_from(CaseAction)), data.draw(st.sampled_from(Role))
        params = params_for(S(case.status), action)
        if action is A.RETURN:
            params["target_status"] = data.draw(st.sampled_from(CaseStatus))
        if action is A.REQUEST_EXTENSION:
            params["days"] = data.draw(st.integers(1, 40))
        before = case.status
        result = run(case, action, role, params)
        if before is S.CLOSED:
            assert isinstance(result, Refused)
        if isinstance(result, Allowed):
            case = apply_transition(case, result)
        assert case.status in CaseStatus and isinstance(case.status, CaseStatus)
        if before is S.CLOSED:
            assert case.status is S.CLOSED
    event(f"ended {case.status}")
