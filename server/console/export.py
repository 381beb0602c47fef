"""Export of the filtered queue as CSV or Excel.

Sensitive fields are masked. A district admin may export them unmasked, only with a reason;
that export writes one access-log entry per exported record (and an audit entry). Exports are
POST forms (CSRF-checked, audited) carrying the queue's filters.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from flask import abort, g, render_template, request
from openpyxl import Workbook
from werkzeug.wrappers import Response

from server import audit
from server.codes import codebook
from server.console import bp
from server.console.auth import current_user, reviewer
from server.console.forms import FormError, reason
from server.console.labels import CST, field_label, local, show_value
from server.console.queue import QueueFilter, filtered, rows_for
from server.extensions import db
from server.models import AccessLog, Record, Role
from server.privacy import mask_value, sensitive_fields
from sync.schema import RECORD_TYPES

MAX_ROWS = 10_000
BASE_COLUMNS = [
    "记录编号",
    "类型",
    "摘要",
    "所属网格",
    "网格员",
    "审核状态",
    "有冲突",
    "更新时间",
    "案件状态",
    "期限状态",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is made inert (CSV/formula injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _table(records: list[Record], unmasked: bool) -> list[list[Any]]:
    book = codebook()
    types = [t for t in RECORD_TYPES if any(r.type == t for r in records)]
    names: list[str] = []
    for t in types:
        names += [n for n in RECORD_TYPES[t].fields if n not in names]
    header = BASE_COLUMNS + [field_label(n) for n in names]
    table = [header]
    for row in rows_for(records):
        rec, case = row["record"], row["case"] or {}
        line = [
            rec.id,
            row["type"],
            row["summary"],
            row["grid"],
            row["author"],
            row["review"],
            "是" if rec.has_conflict else "否",
            local(rec.updated_at),
            case.get("status_label", ""),
            case.get("deadline", ""),
        ]
        for n in names:
            value = rec.data.get(n)
            if not unmasked:
                value = mask_value(rec.type, n, value)
            line.append(show_value(book, rec.type, n, value))
        table.append([_cell(v) for v in line])
    return table


def _csv(table: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    return buffer.getvalue().encode("utf-8-sig")  # the BOM lets Excel read UTF-8


def _xlsx(table: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "审核队列"
    for line in table:
        sheet.append(line)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _log_unmasked(records: list[Record], why: str, fmt: str) -> None:
    user = current_user()
    for rec in records:
        fields = sorted(sensitive_fields(rec.type))
        if fields:
            db.session.add(
                AccessLog(
                    user_id=user.id,
                    record_id=rec.id,
                    field=",".join(fields)[:64],
                    reason=f"导出：{why}",
                )
            )
    audit.record(
        user.username,
        "console.export_unmasked",
        f"user:{user.id}",
        {"format": fmt, "records": len(records), "reason": why},
    )


@bp.post("/export")
@reviewer
def export() -> Any:
    fmt = request.form.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    user = current_user()
    unmasked = request.form.get("unmasked") == "1"
    if unmasked and user.role != Role.DISTRICT_ADMIN:
        abort(403)
    flt = QueueFilter.from_args(request.form)
    records = list(db.session.execute(filtered(flt).limit(MAX_ROWS)).scalars())
    if unmasked:
        try:
            why = reason(label="导出理由")
        except FormError as exc:
            page = render_template("console/error.html", status=422, message=str(exc))
            return page, 422
        _log_unmasked(records, why, fmt)
    else:
        audit.record(
            user.username,
            "console.export",
            f"user:{user.id}",
            {
                "format": fmt,
                "records": len(records),
                "filters": flt.params(),
                "scope": list(g.scope.prefixes),
            },
        )
    db.session.commit()
    table = _table(records, unmasked)
    stamp = datetime.now(CST).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        body, mimetype = _csv(table), "text/csv; charset=utf-8"
    else:
        body = _xlsx(table)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="linli-queue-{stamp}.{fmt}"'
    return response


__all__ = ["export"]
