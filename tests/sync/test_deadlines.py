"""Deadline rules: loading, due dates in calendar days, and the computed deadline status."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.deadlines import (
    DeadlineRule,
    DeadlineRules,
    DeadlineStatus,
    deadline_status,
    due_date,
    route_due,
)

RULES_PATH = Path(__file__).parents[2] / "fixtures" / "data" / "deadline_rules.json"
RAW = json.loads(RULES_PATH.read_text(encoding="utf-8"))
RULES = DeadlineRules.from_dict(RAW)
MEDIATION = RULES.rule_for("mediation")
PETITION = RULES.rule_for("petition")


def test_fixture_holds_the_documented_limits() -> None:
    assert (MEDIATION.handle_days, MEDIATION.warn_days, MEDIATION.route_days) == (30, 5, None)
    assert (MEDIATION.max_extensions, MEDIATION.max_extension_days) == (1, 30)
    assert (PETITION.route_days, PETITION.handle_days, PETITION.warn_days) == (15, 60, 7)
    assert (PETITION.max_extensions, PETITION.max_extension_days) == (1, 30)


@pytest.mark.parametrize("code", [None, ""])
def test_rule_for_defaults_to_mediation(code: str | None) -> None:
    assert RULES.rule_for(code) is MEDIATION


def test_rule_for_unknown_code_is_a_code_table_error() -> None:
    with pytest.raises(KeyError, match="labour"):
        RULES.rule_for("labour")


def _mutated(path: tuple[object, ...], value: object) -> dict:
    data = copy.deepcopy(RAW)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), 0, "version"),
        (("version",), True, "version"),
        (("calendar",), "working_days", "calendar"),
        (("default",), "labour", "default rule"),
        (("rules",), [], "non-empty list"),
        (("extra",), 1, "unknown keys"),
        (("rules", 0, "handle_days"), _DELETE, "missing keys"),
        (("rules", 0, "handle_days"), "30", "handle_days"),
        (("rules", 0, "handle_days"), 0, "at least 1"),
        (("rules", 0, "warn_days"), -1, "warn_days"),
        (("rules", 0, "warn_days"), 30, "less than"),
        (("rules", 0, "max_extensions"), 2, "0 or 1"),
        (("rules", 0, "route_days"), 0, "route_days"),
        (("rules", 0, "code"), " ", "code"),
        (("rules", 0, "colour"), "red", "unknown keys"),
        (("rules", 1, "code"), "mediation", "duplicate"),
    ],
)
def test_from_dict_is_strict(path: tuple[object, ...], value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeadlineRules.from_dict(_mutated(path, value))


@pytest.mark.parametrize("data", [[], "rules", None])
def test_from_dict_rejects_a_non_object(data: object) -> None:
    with pytest.raises(ValueError, match="object"):
        DeadlineRules.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "accepted_on", "extension", "expected"),
    [
        (MEDIATION, date(2024, 1, 31), 0, date(2024, 3, 1)),  # leap February
        (MEDIATION, date(2023, 1, 31), 0, date(2023, 3, 2)),  # common February
        (MEDIATION, date(2023, 2, 28), 0, date(2023, 3, 30)),
        (MEDIATION, date(2024, 2, 29), 0, date(2024, 3, 30)),
        (MEDIATION, date(2024, 12, 20), 0, date(2025, 1, 19)),  # year end
        (MEDIATION, date(2024, 1, 31), 30, date(2024, 3, 31)),
        (PETITION, date(2024, 1, 31), 0, date(2024, 3, 31)),
        (PETITION, date(2024, 1, 31), 30, date(2024, 4, 30)),
        (PETITION, date(2023, 12, 31), 15, date(2024, 3, 15)),
    ],
)
def test_due_date_counts_calendar_days(
    rule: DeadlineRule, accepted_on: date, extension: int, expected: date
) -> None:
    assert due_date(rule, accepted_on, extension_days=extension) == expected


@pytest.mark.parametrize("extension", [-1, 31, True])
def test_due_date_rejects_an_impossible_extension(extension: int) -> None:
    with pytest.raises(ValueError, match="extension"):
        due_date(PETITION, date(2024, 1, 1), extension_days=extension)


def test_route_due_for_petitions_only() -> None:
    assert route_due(PETITION, date(2024, 2, 20)) == date(2024, 3, 6)
    assert route_due(MEDIATION, date(2024, 2, 20)) is None


DUE = date(2024, 3, 1)


@pytest.mark.parametrize(
    ("today", "warn_days", "expected"),
    [
        (date(2024, 2, 24), 5, DeadlineStatus.NOT_DUE),  # 6 days left
        (date(2024, 2, 25), 5, DeadlineStatus.DUE_SOON),  # 5 days left
        (date(2024, 2, 29), 5, DeadlineStatus.DUE_SOON),
        (DUE, 5, DeadlineStatus.DUE_SOON),  # due today is not overdue
        (date(2024, 3, 2), 5, DeadlineStatus.OVERDUE),  # the day after is
        (date(2024, 2, 29), 0, DeadlineStatus.NOT_DUE),
        (DUE, 0, DeadlineStatus.DUE_SOON),
        (date(2025, 1, 1), 7, DeadlineStatus.OVERDUE),
    ],
)
def test_deadline_status_boundaries(today: date, warn_days: int, expected: DeadlineStatus) -> None:
    assert deadline_status(DUE, today, warn_days) is expected


def test_labels_are_chinese() -> None:
    assert [s.label_zh for s in DeadlineStatus] == ["未到期", "将到期", "已超期"]
    assert [str(s) for s in DeadlineStatus] == ["not_due", "due_soon", "overdue"]


dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(rule=st.sampled_from([MEDIATION, PETITION]), accepted=dates, ext=st.integers(0, 30))
def test_due_date_is_exactly_the_limit_in_days(
    rule: DeadlineRule, accepted: date, ext: int
) -> None:
    due = due_date(rule, accepted, extension_days=ext)
    assert (due - accepted).days == rule.handle_days + ext


_ORDER = list(DeadlineStatus)


@given(due=dates, today=dates, warn=st.integers(0, 29))
def test_deadline_status_only_moves_forward(due: date, today: date, warn: int) -> None:
    status = deadline_status(due, today, warn)
    assert (status is DeadlineStatus.OVERDUE) == (today > due)
    later = deadline_status(due, today + timedelta(days=1), warn)
    assert _ORDER.index(later) >= _ORDER.index(status)
