"""Code tables and deadline rules as the server uses them.

The tables live in the ``code_entry`` table (loaded by ``linli load-fixtures``); until a database
has any, the tables shipped in ``fixtures/data`` apply. Lookups are cached per process for a
minute, so a reload reaches every worker process without a restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from fixtures import load_code_tables, load_deadline_rules
from server.extensions import db
from server.models import CodeEntry
from sync.deadlines import DeadlineRules

_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class CodeBook:
    tables: dict[str, list[dict[str, Any]]]
    rules: DeadlineRules

    def sets(self) -> dict[str, set[str]]:
        return {name: {e["code"] for e in entries} for name, entries in self.tables.items()}

    def label(self, table: str, code: str | None) -> str:
        for entry in self.tables.get(table, ()):
            if entry["code"] == code:
                return entry["label"]
        return code or ""

    def entry(self, table: str, code: str | None) -> dict[str, Any] | None:
        return next((e for e in self.tables.get(table, ()) if e["code"] == code), None)

    def rule_code_for_category(self, category: str | None) -> str:
        """The deadline rule of a dispute category (an L2 category inherits from its L1)."""
        entry = self.entry("dispute_categories", category)
        while entry is not None:
            if entry.get("deadline_rule"):
                return entry["deadline_rule"]
            entry = self.entry("dispute_categories", entry.get("parent"))
        return self.rules.default_code


def _from_database() -> dict[str, list[dict[str, Any]]]:
    latest = (
        select(CodeEntry.table_name, func.max(CodeEntry.version).label("v"))
        .group_by(CodeEntry.table_name)
        .subquery()
    )
    rows = db.session.execute(
        select(CodeEntry)
        .join(
            latest,
            (CodeEntry.table_name == latest.c.table_name) & (CodeEntry.version == latest.c.v),
        )
        .order_by(CodeEntry.id)
    ).scalars()
    tables: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        tables.setdefault(row.table_name, []).append(
            {**(row.data or {}), "code": row.code, "label": row.label, "parent": row.parent_code}
        )
    return tables


def codebook() -> CodeBook:
    """The code tables in force (cached per process for a minute)."""
    cache = current_app.extensions.setdefault("linli.codes", {})
    if cache.get("at", 0) + _TTL_S > time.monotonic():
        return cache["book"]
    tables = load_code_tables()
    tables.update(_from_database())
    book = CodeBook(tables, DeadlineRules.from_dict(load_deadline_rules()))
    cache.update(at=time.monotonic(), book=book)
    return book


def forget() -> None:
    """Drop the cached tables (after a reload)."""
    current_app.extensions.pop("linli.codes", None)


__all__ = ["CodeBook", "codebook", "forget"]
