"""Deadline rules for dispute cases, and the deadline status computed from them.

Rules are data (``fixtures/data/deadline_rules.json``): the caller loads the JSON and passes the
dict to :meth:`DeadlineRules.from_dict`, which validates it strictly. This module does no I/O and
never reads the clock: callers pass ``today``.

All periods are **calendar days** (自然日), not working days. The day of acceptance (or receipt)
is day 0, so "handle within 30 days of acceptance" on 2024-01-31 means due on 2024-03-01 — plain
date arithmetic, correct across month ends and leap years. A case is due *on* its due date: on
that day it is "due soon", the next day it is overdue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_RULE_CODE",
    "DeadlineRule",
    "DeadlineRules",
    "DeadlineStatus",
    "deadline_status",
    "due_date",
    "route_due",
]

DEFAULT_RULE_CODE = "mediation"


class DeadlineStatus(StrEnum):
    """Where a case stands against its due date."""

    NOT_DUE = "not_due"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"

    @property
    def label_zh(self) -> str:
        """The Chinese label shown in the console."""
        return _LABELS_ZH[self]


_LABELS_ZH = {
    DeadlineStatus.NOT_DUE: "未到期",
    DeadlineStatus.DUE_SOON: "将到期",
    DeadlineStatus.OVERDUE: "已超期",
}


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """One kind of case and its limits, in calendar days.

    ``route_days`` is the limit for routing (转送/交办) counted from receipt, or None when the
    kind has no routing limit. ``max_extensions`` is 0 or 1: a case is extended at most once.
    """

    code: str
    name_zh: str
    handle_days: int
    warn_days: int
    max_extensions: int
    max_extension_days: int
    route_days: int | None = None
    basis: str = ""


_RULE_KEYS = frozenset(
    {
        "code",
        "name_zh",
        "basis",
        "route_days",
        "handle_days",
        "warn_days",
        "max_extensions",
        "max_extension_days",
    }
)
_REQUIRED_RULE_KEYS = _RULE_KEYS - {"basis", "route_days"}
_TOP_KEYS = frozenset({"version", "calendar", "default", "rules"})


@dataclass(frozen=True, slots=True)
class DeadlineRules:
    """A versioned set of deadline rules, looked up by the rule code a dispute category names."""

    version: int
    rules: Mapping[str, DeadlineRule]
    default_code: str = DEFAULT_RULE_CODE

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadlineRules:
        """Build rules from the decoded JSON; raise ValueError naming the first problem."""
        if not isinstance(data, Mapping):
            raise ValueError("deadline rules: expected an object at the top level")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ValueError(f"deadline rules: unknown keys {sorted(unknown)}")
        version = data.get("version")
        if not _is_int(version) or version < 1:
            raise ValueError("deadline rules: 'version' must be a positive integer")
        calendar = data.get("calendar", "calendar_days")
        if calendar != "calendar_days":
            raise ValueError(f"deadline rules: unsupported calendar {calendar!r}")
        items = data.get("rules")
        if not isinstance(items, list) or not items:
            raise ValueError("deadline rules: 'rules' must be a non-empty list")
        rules: dict[str, DeadlineRule] = {}
        for index, item in enumerate(items):
            rule = _parse_rule(item, f"deadline rules: rules[{index}]")
            if rule.code in rules:
                raise ValueError(f"deadline rules: duplicate rule code {rule.code!r}")
            rules[rule.code] = rule
        default_code = data.get("default", DEFAULT_RULE_CODE)
        if default_code not in rules:
            raise ValueError(f"deadline rules: default rule {default_code!r} is not defined")
        return cls(version=version, rules=MappingProxyType(rules), default_code=default_code)

    def rule_for(self, category_rule_code: str | None = None) -> DeadlineRule:
        """The rule a category names; the default (mediation) when it names none.

        An unknown code raises KeyError: a category naming a rule that does not exist is a
        code-table error, not something to paper over with the default.
        """
        if not category_rule_code:
            return self.rules[self.default_code]
        try:
            return self.rules[category_rule_code]
        except KeyError:
            raise KeyError(f"no deadline rule {category_rule_code!r}") from None


def due_date(rule: DeadlineRule, accepted_on: date, *, extension_days: int = 0) -> date:
    """The date a case must be handled by: acceptance + handle_days (+ an approved extension)."""
    if not _is_int(extension_days) or extension_days < 0:
        raise ValueError("extension_days must be a non-negative integer")
    if extension_days > rule.max_extension_days * rule.max_extensions:
        raise ValueError(
            f"extension of {extension_days} days exceeds rule {rule.code!r} "
            f"({rule.max_extensions} × {rule.max_extension_days} days)"
        )
    return accepted_on + timedelta(days=rule.handle_days + extension_days)


def route_due(rule: DeadlineRule, received_on: date) -> date | None:
    """The date a case must be routed (转送/交办) by, or None when the rule sets no limit."""
    if rule.route_days is None:
        return None
    return received_on + timedelta(days=rule.route_days)


def deadline_status(due: date, today: date, warn_days: int) -> DeadlineStatus:
    """Overdue after the due date; due soon within ``warn_days`` of it (the due day included)."""
    if today > due:
        return DeadlineStatus.OVERDUE
    if (due - today).days <= warn_days:
        return DeadlineStatus.DUE_SOON
    return DeadlineStatus.NOT_DUE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_rule(item: object, where: str) -> DeadlineRule:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected an object")
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    missing = _REQUIRED_RULE_KEYS - set(item)
    if missing:
        raise ValueError(f"{where}: missing keys {sorted(missing)}")
    for key in ("code", "name_zh", "basis"):
        if key in item and (not isinstance(item[key], str) or not item[key].strip()):
            raise ValueError(f"{where}: {key!r} must be a non-empty string")
    for key in ("handle_days", "warn_days", "max_extensions", "max_extension_days"):
        if not _is_int(item[key]) or item[key] < 0:
            raise ValueError(f"{where}: {key!r} must be a non-negative integer")
    route_days = item.get("route_days")
    if route_days is not None and (not _is_int(route_days) or route_days < 1):
        raise ValueError(f"{where}: 'route_days' must be a positive integer or null")
    if item["handle_days"] < 1:
        raise ValueError(f"{where}: 'handle_days' must be at least 1")
    if item["warn_days"] >= item["handle_days"]:
        raise ValueError(f"{where}: 'warn_days' must be less than 'handle_days'")
    if item["max_extensions"] not in (0, 1):
        raise ValueError(f"{where}: 'max_extensions' must be 0 or 1 (a case is extended once)")
    return DeadlineRule(
        code=item["code"],
        name_zh=item["name_zh"],
        basis=item.get("basis", ""),
        route_days=route_days,
        handle_days=item["handle_days"],
        warn_days=item["warn_days"],
        max_extensions=item["max_extensions"],
        max_extension_days=item["max_extension_days"],
    )
