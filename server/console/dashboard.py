"""The dashboard: activity, visits, open disputes, overdue cases, conflicts, silent devices.

Every figure is computed in the user's jurisdiction, shown as an inline SVG chart and, for
reading and accessibility, as a table of the same numbers.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from flask import g, render_template, request
from sqlalchemy import Date, cast, func, select

from server import accounts
from server.codes import codebook
from server.console import bp
from server.console.auth import reviewer
from server.console.charts import columns, rows
from server.console.forms import arg_int
from server.console.labels import day_bounds, local, today_local
from server.console.present import case_summary, summary
from server.console.queue import CLOSED_STATUSES, overdue_condition, scoped, unit_names
from server.db import utcnow
from server.extensions import db
from server.models import Record, SyncOp, level_of
from server.models.territory import CODE_LENGTHS, UnitLevel
from server.store import SERVER_DEVICE

DAYS = 14
VISIT_DAYS = 30
LIST_LIMIT = 50


def _local_day(column: Any) -> Any:
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Asia/Shanghai", column), Date)
    return func.date(column, "+8 hours")


def synced_per_day(today: date) -> list[tuple[str, int]]:
    """Distinct records changed from a device, per local day, for the last ``DAYS`` days."""
    start = day_bounds(today - timedelta(days=DAYS - 1))[0]
    day = _local_day(SyncOp.received_at)
    query = (
        select(day.label("day"), func.count(func.distinct(SyncOp.record_id)))
        .join(Record, Record.id == SyncOp.record_id)
        .where(
            g.scope.filter(Record.grid_code),
            SyncOp.received_at >= start,
            SyncOp.device_id != SERVER_DEVICE,
        )
        .group_by(day)
    )
    found = {str(d)[:10]: n for d, n in db.session.execute(query)}
    days = [today - timedelta(days=i) for i in range(DAYS - 1, -1, -1)]
    return [(d.isoformat(), found.get(d.isoformat(), 0)) for d in days]


def visits_per_unit(today: date) -> tuple[str, list[tuple[str, int]]]:
    """Visits of the last ``VISIT_DAYS`` days per grid (admins: per unit one level down)."""
    start = day_bounds(today - timedelta(days=VISIT_DAYS - 1))[0]
    query = (
        scoped(select(Record.grid_code, func.count(Record.id)))
        .where(Record.type == "visit", Record.created_at >= start)
        .group_by(Record.grid_code)
    )
    per_grid = dict(db.session.execute(query).all())
    prefix = g.scope.prefixes[0] if len(g.scope.prefixes) == 1 else None
    level = level_of(prefix) if prefix else UnitLevel.GRID
    order = list(CODE_LENGTHS)
    child = (
        order[min(order.index(level) + 1, len(order) - 1)]
        if level != UnitLevel.GRID
        else UnitLevel.GRID
    )
    length = CODE_LENGTHS[child]
    totals: Counter[str] = Counter()
    for code, count in per_grid.items():
        totals[code[:length]] += count
    names = unit_names(set(totals))
    label = {UnitLevel.GRID: "网格", UnitLevel.COMMUNITY: "社区", UnitLevel.STREET: "街道"}.get(
        child, "单位"
    )
    items = sorted(((names.get(c, c), n) for c, n in totals.items()), key=lambda t: -t[1])
    return label, items


def open_disputes() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Open dispute cases by top-level category and by risk grade."""
    book = codebook()
    datas = db.session.execute(scoped(select(Record.data)).where(Record.type == "dispute"))
    by_category: Counter[str] = Counter()
    by_risk: Counter[str] = Counter()
    for (data,) in datas:
        if (data.get("status") or "reported") in CLOSED_STATUSES:
            continue
        entry = book.entry("dispute_categories", data.get("category"))
        top = entry.get("parent") or entry["code"] if entry else data.get("category")
        by_category[book.label("dispute_categories", top)] += 1
        by_risk[data.get("risk_grade") or ""] += 1
    risks = [(e["label"], by_risk.get(e["code"], 0)) for e in book.tables.get("risk_grades", [])]
    if by_risk.get(""):
        risks.append(("未评定", by_risk[""]))
    return by_category.most_common(), risks


def _listed(condition: Any) -> tuple[int, list[dict[str, Any]]]:
    book, today = codebook(), today_local()
    total = db.session.execute(scoped(select(func.count(Record.id))).where(condition)).scalar_one()
    records = db.session.execute(
        scoped(select(Record)).where(condition).order_by(Record.updated_at.desc()).limit(LIST_LIMIT)
    ).scalars()
    return total, [
        {
            "record": r,
            "summary": summary(r.type, r.data),
            "case": case_summary(r.data, book, today) if r.type == "dispute" else None,
            "updated": local(r.updated_at),
        }
        for r in records
    ]


def silent_devices(days: int) -> list[dict[str, Any]]:
    """Devices (not revoked) that have not synced for ``days`` days, or never."""
    cutoff = utcnow() - timedelta(days=days)
    out = []
    for device in accounts.list_devices(g.scope):
        if device.revoked or (device.last_sync_at and device.last_sync_at >= cutoff):
            continue
        out.append(
            {
                "device": device,
                "last_sync": local(device.last_sync_at) or "从未同步",
                "user": device.user.display_name,
            }
        )
    return out


@bp.get("/dashboard")
@reviewer
def dashboard() -> Any:
    today = today_local()
    days = arg_int("days", 3, minimum=1, maximum=365)
    per_day = synced_per_day(today)
    unit_label, visits = visits_per_unit(today)
    categories, risks = open_disputes()
    overdue_total, overdue = _listed(overdue_condition(today))
    conflict_total, conflicts = _listed(Record.has_conflict.is_(True))
    return render_template(
        "console/dashboard.html",
        today=today,
        days=days,
        per_day=per_day,
        per_day_chart=columns("近14天每日同步记录数", [(d[5:], n) for d, n in per_day]),
        unit_label=unit_label,
        visits=visits,
        visits_chart=rows(f"近{VISIT_DAYS}天各{unit_label}走访数", visits[:20]),
        categories=categories,
        categories_chart=rows("未结纠纷（按类别）", categories),
        risks=risks,
        risks_chart=rows("未结纠纷（按风险等级）", risks),
        overdue_total=overdue_total,
        overdue=overdue,
        conflict_total=conflict_total,
        conflicts=conflicts,
        devices=silent_devices(days),
        visit_days=VISIT_DAYS,
        args=request.args,
    )


__all__ = ["dashboard"]
