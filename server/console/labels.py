"""Chinese labels for what the console shows, and formatting of values and times.

Times are shown in China Standard Time (UTC+8, no daylight saving), the only zone the product
serves; device times come from the hybrid logical clock of a write (its wall milliseconds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from server.codes import CodeBook
from sync import HLC, SyncError
from sync.schema import RECORD_TYPES

CST = timezone(timedelta(hours=8), "CST")

TYPE_LABELS = {"household": "户", "resident": "居民", "visit": "走访记录", "dispute": "矛盾纠纷"}
REVIEW_LABELS = {"pending": "待审核", "approved": "已通过", "returned": "已退回"}
ROLE_LABELS = {
    "grid_worker": "网格员",
    "community_head": "社区负责人",
    "street_admin": "街道管理员",
    "district_admin": "区管理员",
}
LEVEL_LABELS = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}
OUTCOME_LABELS = {
    "applied": "已应用",
    "duplicate": "重复",
    "conflict": "冲突",
    "rejected": "已拒绝",
}
KIND_LABELS = {
    "create": "新建",
    "update": "修改",
    "delete": "删除",
    "append": "追加",
    "resolve": "解决冲突",
}
FIELD_LABELS = {
    "grid_code": "所属网格",
    "address": "地址",
    "head_name": "户主姓名",
    "phone": "联系电话",
    "tags": "标签",
    "note": "备注",
    "household_id": "所属户",
    "name": "姓名",
    "gender": "性别",
    "birth_date": "出生日期",
    "id_number": "身份证号",
    "relation": "与户主关系",
    "resident_id": "居民",
    "visited_at": "走访时间",
    "visit_type": "走访类型",
    "findings": "走访情况",
    "service_needs": "服务需求",
    "resident_name": "居民姓名",
    "resident_phone": "居民电话",
    "resident_id_number": "居民身份证号",
    "title": "标题",
    "category": "纠纷类别",
    "source": "来源",
    "description": "情况描述",
    "parties": "当事人",
    "involved_count": "涉及人数",
    "involved_amount": "涉及金额（元）",
    "risk_grade": "风险等级",
    "occurred_on": "发生日期",
    "measures": "已采取措施",
    "status": "办理状态",
    "responsible_unit": "责任单位",
    "responsible_person": "责任人",
    "due_date": "办结期限",
    "mediation_outcome": "调解结果",
    "supervision": "督办",
    "_deleted": "删除状态",
    "accepted_on": "受理日期",
    "reported_on": "上报日期",
    "extension_pending": "待批延期天数",
    "extension_used": "已延期",
    "extension_days": "延期天数",
    "rejection_reason": "不予受理理由",
    "escalation_reason": "上报理由",
    "extension_reason": "延期理由",
    "started_on": "开始办理日期",
    "resolved_on": "化解日期",
    "followed_up_on": "回访日期",
    "closed_on": "归档日期",
    "escalated_on": "上报上级日期",
    "supervised_on": "督办日期",
}
# Code tables of fields the workflow writes (not declared in the record schema).
_EXTRA_CODE_TABLES = {
    "status": "dispute_statuses",
    "mediation_outcome": "mediation_outcomes",
    "supervision": "supervision_levels",
}
DEADLINE_CLASSES = {"not_due": "ok", "due_soon": "warn", "overdue": "bad"}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def code_table(record_type: str, name: str) -> str | None:
    rtype = RECORD_TYPES.get(record_type)
    spec = rtype.fields.get(name) if rtype else None
    return (spec.code_table if spec else None) or _EXTRA_CODE_TABLES.get(name)


def show_value(book: CodeBook, record_type: str, name: str, value: Any) -> str:
    """A value as text: code labels, lists joined, booleans in words; '' for nothing."""
    if value is None or value == "" or value == []:
        return ""
    if name == "_deleted":
        return "已删除" if value else "未删除"
    table = code_table(record_type, name)
    if isinstance(value, list):
        return "、".join(_item(book, table, v) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return _item(book, table, value)


def _item(book: CodeBook, table: str | None, value: Any) -> str:
    if isinstance(value, dict):
        parts = [str(value.get(k)) for k in ("name", "role", "note") if value.get(k)]
        return "（".join(parts[:2]) + ("）" if len(parts) > 1 else "") if parts else str(value)
    if table and isinstance(value, str):
        return book.label(table, value)
    return str(value)


def local(value: datetime | None) -> str:
    """A UTC datetime as local (UTC+8) text."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def iso_local(text: str | None) -> str:
    """An ISO date-time string (as stored in steps) as local text; dates pass through."""
    if not text:
        return ""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    return local(value) if value.tzinfo else text.replace("T", " ")


def device_time(hlc: str | None) -> str:
    """The device's own clock reading of a write (from its HLC)."""
    try:
        wall = HLC.parse(hlc).wall
    except SyncError:
        return ""
    return local(datetime.fromtimestamp(wall / 1000, tz=UTC))


def today_local() -> date:
    return datetime.now(CST).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local calendar day as [start, end) in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=CST).astimezone(UTC)
    return start, start + timedelta(days=1)


__all__ = [
    "CST",
    "DEADLINE_CLASSES",
    "FIELD_LABELS",
    "KIND_LABELS",
    "LEVEL_LABELS",
    "OUTCOME_LABELS",
    "REVIEW_LABELS",
    "ROLE_LABELS",
    "TYPE_LABELS",
    "code_table",
    "day_bounds",
    "device_time",
    "field_label",
    "local",
    "show_value",
    "today_local",
]
