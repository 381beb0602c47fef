"""The record types a device may sync, their fields, and the validation both sides apply.

One table of field specs drives validation on the device (before a save is acknowledged) and on
the server (before an operation is applied), so the two can never disagree. Code-valued fields
name a code table; the caller passes the known codes (code tables are data, not Python enums).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .validators import id_number_valid, phone_valid

__all__ = [
    "ARRIVAL_ORDERED",
    "RECORD_TYPES",
    "SERVER_OWNED_FIELDS",
    "FieldSpec",
    "RecordType",
    "record_type",
    "validate_fields",
]

# Collections shown in the order the server accepted their items: case steps are the
# workflow's own sequence, decided by the server, whatever the device clocks said.
ARRIVAL_ORDERED = frozenset({"steps"})
GRID_CODE_RE = re.compile(r"^\d{15}$")
MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record type. ``kind`` names the value check."""

    # text | bool | int | number | date | datetime | uuid | grid | id_number | phone |
    # code | codes | list
    kind: str
    required: bool = False
    max_len: int = 200
    code_table: str | None = None
    sensitive: bool = False
    server_only: bool = False  # written by server workflows, never by a device edit


@dataclass(frozen=True, slots=True)
class RecordType:
    """A syncable record type: its fields and its append-only collections."""

    name: str
    fields: Mapping[str, FieldSpec]
    collections: tuple[str, ...] = ()


# Fields the server owns on every record; an operation that sets one is rejected.
SERVER_OWNED_FIELDS = frozenset(
    {
        "id",
        "version",
        "author",
        "author_id",
        "created_at",
        "updated_at",
        "review_status",
        "review",
        "server_time",
        "seq",
        "deleted",
        "_deleted",
    }
)

_T = FieldSpec
RECORD_TYPES: dict[str, RecordType] = {
    "household": RecordType(
        "household",
        {
            "grid_code": _T("grid", required=True),
            "address": _T("text", required=True),
            "head_name": _T("text", max_len=50),
            "phone": _T("phone", sensitive=True),
            "tags": _T("codes", code_table="resident_tags"),
            "note": _T("text", max_len=MAX_TEXT),
        },
        collections=("notes",),
    ),
    "resident": RecordType(
        "resident",
        {
            "grid_code": _T("grid", required=True),
            "household_id": _T("uuid"),
            "name": _T("text", required=True, max_len=50),
            "gender": _T("code", code_table="genders"),
            "birth_date": _T("date"),
            "id_number": _T("id_number", sensitive=True),
            "phone": _T("phone", sensitive=True),
            "relation": _T("code", code_table="relations"),
            "tags": _T("codes", code_table="resident_tags", sensitive=True),
            "note": _T("text", max_len=MAX_TEXT),
        },
        collections=("notes",),
    ),
    "visit": RecordType(
        "visit",
        {
            "grid_code": _T("grid", required=True),
            "household_id": _T("uuid"),
            "resident_id": _T("uuid"),
            "visited_at": _T("datetime", required=True),
            "visit_type": _T("code", code_table="visit_types"),
            "findings": _T("text", max_len=MAX_TEXT),
            "service_needs": _T("codes", code_table="resident_tags"),
            "resident_name": _T("text", max_len=50),
            "resident_phone": _T("phone", sensitive=True),
            "resident_id_number": _T("id_number", sensitive=True),
            "address": _T("text"),
        },
        collections=("notes",),
    ),
    "dispute": RecordType(
        "dispute",
        {
            "grid_code": _T("grid", required=True),
            "title": _T("text", required=True, max_len=100),
            "category": _T("code", required=True, code_table="dispute_categories"),
            "source": _T("code", code_table="dispute_sources"),
            "description": _T("text", max_len=MAX_TEXT),
            "parties": _T("list", max_len=20),
            "involved_count": _T("int"),
            "involved_amount": _T("number"),
            "risk_grade": _T("code", code_table="risk_grades"),
            "occurred_on": _T("date"),
            "measures": _T("text", max_len=MAX_TEXT),
            "status": _T("code", server_only=True),
            "responsible_unit": _T("text", server_only=True),
            "responsible_person": _T("text", server_only=True),
            "due_date": _T("date", server_only=True),
            "mediation_outcome": _T("code", server_only=True),
            "supervision": _T("code", server_only=True),
            "reported_on": _T("date", server_only=True),
            "accepted_on": _T("date", server_only=True),
            "started_on": _T("date", server_only=True),
            "resolved_on": _T("date", server_only=True),
            "followed_up_on": _T("date", server_only=True),
            "closed_on": _T("date", server_only=True),
            "escalated_on": _T("date", server_only=True),
            "supervised_on": _T("date", server_only=True),
            "rejection_reason": _T("text", server_only=True, max_len=MAX_TEXT),
            "escalation_reason": _T("text", server_only=True, max_len=MAX_TEXT),
            "extension_used": _T("bool", server_only=True),
            "extension_days": _T("int", server_only=True),
            "extension_pending": _T("int", server_only=True),
            "extension_reason": _T("text", server_only=True, max_len=MAX_TEXT),
        },
        collections=("notes", "steps"),
    ),
}


def record_type(name: str) -> RecordType | None:
    """The record type called ``name``, or None."""
    return RECORD_TYPES.get(name)


def _check(spec: FieldSpec, value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
    """Return an error message for ``value``, or None when it is valid. ``None`` clears a field."""
    if value is None:
        return "required" if spec.required else None
    kind = spec.kind
    if kind == "text":
        if not isinstance(value, str):
            return "must be a string"
        if spec.required and not value.strip():
            return "required"
        if len(value) > spec.max_len:
            return f"longer than {spec.max_len} characters"
    elif kind == "bool":
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**53) < value < 2**53:
            return "must be an integer"
        if value < 0:
            return "must not be negative"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return "must be a number"
        if value < 0 or value > 1e15:
            return "out of range"
    elif kind == "date":
        if not isinstance(value, str) or len(value) != 10:
            return "must be a date YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "must be a date YYYY-MM-DD"
    elif kind == "datetime":
        if not isinstance(value, str) or len(value) > 40:
            return "must be an ISO 8601 date-time"
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "must be an ISO 8601 date-time"
    elif kind == "uuid":
        if not isinstance(value, str):
            return "must be a UUID"
        try:
            uuid.UUID(value)
        except ValueError:
            return "must be a UUID"
    elif kind == "grid":
        if not isinstance(value, str) or not GRID_CODE_RE.match(value):
            return "must be a 15-digit grid code"
    elif kind == "id_number":
        if not id_number_valid(value):
            return "not a valid ID number (length, birth date or check digit)"
    elif kind == "phone":
        if not phone_valid(value):
            return "not a valid phone number"
    elif kind in ("code", "codes"):
        items = value if kind == "codes" else [value]
        if kind == "codes" and not isinstance(value, list):
            return "must be a list of codes"
        if len(items) > 50 or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in items):
            return "must be a code string" if kind == "code" else "must be a list of code strings"
        known = codes.get(spec.code_table) if codes and spec.code_table else None
        if known is not None:
            unknown = [i for i in items if i not in known]
            if unknown:
                return f"unknown code {unknown[0]!r} in {spec.code_table}"
    elif kind == "list":
        if not isinstance(value, list) or len(value) > spec.max_len:
            return f"must be a list of at most {spec.max_len} items"
        if not all(isinstance(i, dict | str) for i in value):
            return "items must be objects or strings"
    return None


def validate_fields(
    type_name: str,
    fields: Mapping[str, Any],
    *,
    partial: bool,
    codes: Mapping[str, set[str]] | None = None,
    allow_server_only: bool = False,
) -> dict[str, str]:
    """Validate ``fields`` of a record of ``type_name``; return {field: message} for every error.

    ``partial`` is True for an update (only the given fields are checked) and False for a create
    (required fields must be present). ``codes`` maps a code table name to its known codes; a
    table missing from it is not checked. Server-only fields are refused unless the caller is a
    server workflow (``allow_server_only``).
    """
    rtype = RECORD_TYPES.get(type_name)
    if rtype is None:
        return {"record_type": f"unknown record type {type_name!r}"}
    errors: dict[str, str] = {}
    for name, value in fields.items():
        spec = rtype.fields.get(name)
        if name in SERVER_OWNED_FIELDS or (
            spec is not None and spec.server_only and not allow_server_only
        ):
            errors[name] = "set by the server; a device cannot write it"
        elif spec is None:
            errors[name] = "unknown field"
        else:
            message = _check(spec, value, codes)
            if message:
                errors[name] = message
    if not partial:
        for name, spec in rtype.fields.items():
            if spec.required and name not in fields and name not in errors:
                errors[name] = "required"
    return errors
