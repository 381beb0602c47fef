"""The review queue: records in the user's jurisdiction, filtered, newest first, paginated."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from sqlalchemy import Select, and_, func, or_, select

from server.codes import codebook
from server.console import bp
from server.console.auth import current_user, signed_in
from server.console.forms import arg_date, arg_int
from server.console.labels import REVIEW_LABELS, TYPE_LABELS, day_bounds, today_local
from server.console.present import case_summary, summary
from server.extensions import db
from server.models import AdminUnit, Record, Role, User

PAGE_SIZE = 25
CLOSED_STATUSES = ("closed", "rejected")


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The queue's filters, as read from the query string (and echoed into links and forms)."""

    status: str = "pending"
    grid: str = ""
    worker: str = ""
    type: str = ""
    date_from: str = ""
    date_to: str = ""
    conflict: str = ""
    q: str = ""

    @classmethod
    def from_args(cls, args: Any) -> QueueFilter:
        status = args.get("status", "pending")
        status = status if status in (*REVIEW_LABELS, "all") else "pending"
        rtype = args.get("type", "")
        worker = args.get("worker", "")
        return cls(
            status=status,
            grid=(args.get("grid") or "").strip()[:15],
            worker=worker if worker.isdigit() else "",
            type=rtype if rtype in TYPE_LABELS else "",
            date_from=_iso(arg_date("date_from")),
            date_to=_iso(arg_date("date_to")),
            conflict="1" if args.get("conflict") == "1" else "",
            q=(args.get("q") or "").strip()[:64],
        )

    def params(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def overdue_condition(today: date) -> Any:
    """Open dispute cases past their due date (JSON fields, on SQLite and PostgreSQL)."""
    due = Record.data["due_date"].as_string()
    status = Record.data["status"].as_string()
    return and_(
        Record.type == "dispute",
        due.is_not(None),
        due < today.isoformat(),
        or_(status.is_(None), status.not_in(CLOSED_STATUSES)),
    )


def scoped(query: Select[Any]) -> Select[Any]:
    return query.where(g.scope.filter(Record.grid_code), Record.deleted.is_(False))


def filtered(flt: QueueFilter) -> Select[Any]:
    """The queue query for ``flt``; a grid outside the user's scope answers 404."""
    query = scoped(select(Record))
    if flt.status != "all":
        query = query.where(Record.review_status == flt.status)
    if flt.grid:
        if not g.scope.contains(flt.grid):
            abort(404)
        query = query.where(Record.grid_code.startswith(flt.grid, autoescape=True))
    if flt.worker:
        query = query.where(Record.author_id == int(flt.worker))
    if flt.type:
        query = query.where(Record.type == flt.type)
    if flt.date_from:
        query = query.where(Record.updated_at >= day_bounds(date.fromisoformat(flt.date_from))[0])
    if flt.date_to:
        query = query.where(Record.updated_at < day_bounds(date.fromisoformat(flt.date_to))[1])
    if flt.conflict:
        query = query.where(Record.has_conflict.is_(True))
    if flt.q:
        searched_id(flt.q)
        query = query.where(Record.id.startswith(flt.q.lower(), autoescape=True))
    return query.order_by(Record.updated_at.desc(), Record.seq.desc())


def counts() -> dict[str, int]:
    def count(*conditions: Any) -> int:
        return db.session.execute(
            scoped(select(func.count(Record.id))).where(*conditions)
        ).scalar_one()

    return {
        "pending": count(Record.review_status == "pending"),
        "conflicts": count(Record.has_conflict.is_(True)),
        "returned": count(Record.review_status == "returned"),
        "overdue": count(overdue_condition(today_local())),
    }


def grids_in_scope() -> list[AdminUnit]:
    return list(
        db.session.execute(
            select(AdminUnit)
            .where(AdminUnit.level == "grid", g.scope.filter(AdminUnit.code))
            .order_by(AdminUnit.code)
        ).scalars()
    )


def workers_in_scope() -> list[User]:
    return list(
        db.session.execute(
            select(User)
            .where(User.role == Role.GRID_WORKER, g.scope.filter(User.unit_code))
            .order_by(User.display_name)
        ).scalars()
    )


def names(user_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {r.id: r.display_name for r in rows}


def unit_names(codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = db.session.execute(
        select(AdminUnit.code, AdminUnit.name).where(AdminUnit.code.in_(codes))
    )
    return {r.code: r.name for r in rows}


def rows_for(records: list[Record]) -> list[dict[str, Any]]:
    """What the queue and the export show of each record (sensitive fields never included)."""
    book, today = codebook(), today_local()
    authors = names({r.author_id for r in records})
    grids = unit_names({r.grid_code for r in records})
    return [
        {
            "record": r,
            "summary": summary(r.type, r.data),
            "type": TYPE_LABELS.get(r.type, r.type),
            "grid": grids.get(r.grid_code, r.grid_code),
            "author": authors.get(r.author_id, ""),
            "review": REVIEW_LABELS.get(r.review_status, r.review_status),
            "case": case_summary(r.data, book, today) if r.type == "dispute" else None,
        }
        for r in records
    ]


def searched_id(q: str) -> str | None:
    """A full record id searched for: the id if it is in scope, 404 if it is not (or does not
    exist, so that ids cannot be probed); None when ``q`` is not a full id."""
    try:
        record_id = str(uuid.UUID(q))
    except ValueError:
        return None
    grid = db.session.execute(select(Record.grid_code).where(Record.id == record_id)).scalar()
    if grid is None or not g.scope.contains(grid):
        abort(404)
    return record_id


@bp.get("/")
@signed_in
def index() -> Any:
    user = current_user()
    if user.role == Role.GRID_WORKER:
        return render_template("console/field_only.html")
    flt = QueueFilter.from_args(request.args)
    if flt.q and (found := searched_id(flt.q)) is not None:
        return redirect(url_for("console.record", record_id=found), code=303)
    query = filtered(flt)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = arg_int("page", 1, maximum=pages)
    records = list(
        db.session.execute(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars()
    )
    return render_template(
        "console/queue.html",
        flt=flt,
        rows=rows_for(records),
        total=total,
        page=page,
        pages=pages,
        counts=counts(),
        grids=grids_in_scope(),
        workers=workers_in_scope(),
        type_labels=TYPE_LABELS,
        review_labels=REVIEW_LABELS,
    )


__all__ = [
    "QueueFilter",
    "counts",
    "filtered",
    "grids_in_scope",
    "names",
    "overdue_condition",
    "rows_for",
    "scoped",
    "searched_id",
    "unit_names",
]
