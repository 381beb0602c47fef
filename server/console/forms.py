"""Small helpers to read HTML form and query values (no marshmallow for pages)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import request
from werkzeug.datastructures import MultiDict

MIN_REASON = 4


class FormError(ValueError):
    """A form value is missing or malformed; the message is shown to the user (Chinese)."""


def text(
    name: str,
    *,
    required: bool = False,
    max_len: int = 2000,
    source: MultiDict[str, str] | None = None,
    label: str | None = None,
) -> str:
    value = ((source if source is not None else request.form).get(name) or "").strip()
    if required and not value:
        raise FormError(f"请填写{label or name}。")
    if len(value) > max_len:
        raise FormError(f"{label or name}不能超过 {max_len} 个字符。")
    return value


def reason(name: str = "reason", label: str = "理由") -> str:
    value = text(name, label=label, max_len=500)
    if len(value) < MIN_REASON:
        raise FormError(f"请填写{label}（至少 {MIN_REASON} 个字）。")
    return value


def integer(name: str, *, label: str, minimum: int = 1) -> int:
    raw = text(name, required=True, label=label)
    try:
        value = int(raw)
    except ValueError:
        raise FormError(f"{label}必须是整数。") from None
    if value < minimum:
        raise FormError(f"{label}不能小于 {minimum}。")
    return value


def arg_date(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def arg_int(name: str, default: int, *, minimum: int = 1, maximum: int = 10**6) -> int:
    try:
        value = int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(value, minimum), maximum)


def parse_value(kind: str, raw: str) -> Any:
    """A value typed in the console for a field of ``kind`` (as sync.schema names kinds)."""
    raw = raw.strip()
    if raw == "":
        return None
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise FormError("请输入整数。") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise FormError("请输入数字。") from None
    if kind in ("codes", "list"):
        return [part.strip() for part in raw.replace("，", ",").split(",") if part.strip()]
    return raw


__all__ = [
    "MIN_REASON",
    "FormError",
    "arg_date",
    "arg_int",
    "integer",
    "parse_value",
    "reason",
    "text",
]
