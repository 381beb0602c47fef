"""The record types a device may sync, their fields, and the validation both sides apply.

One table of field specs drives validation on the device (before a save is acknowledged) and on
the server (before an operation is applied), so the two can never disagree. Code-valued fields
name a code table; the caller passes the known codes (code tables are data, not Python enums).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
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


# --- field checks ---------------------------------------------------------------------------------
# Each kind of field has a check builder: given the spec, it returns a function of (value, codes)
# giving an error message for a value other than None, or None when the value is valid;
# :func:`_field_check` adds what ``None`` means (it clears a field). The checks are built once per
# field, so validating a value does no dispatch on the kind.

Check = Callable[[Any, "Mapping[str, set[str]] | None"], "str | None"]
_UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def _text(spec: FieldSpec) -> Check:
    required, max_len = spec.required, spec.max_len

    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if required and not value.strip():
            return "required"
        if len(value) > max_len:
            return f"longer than {max_len} characters"
        return None

    return check


def _simple(test: Callable[[Any], bool], message: str) -> Callable[[FieldSpec], Check]:
    """A builder for a kind whose only check is ``test`` (True: valid)."""

    def build(spec: FieldSpec) -> Check:
        def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
            return None if test(value) else message

        return check

    return build


def _int(spec: FieldSpec) -> Check:
    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**53) < value < 2**53:
            return "must be an integer"
        if value < 0:
            return "must not be negative"
        return None

    return check


def _number(spec: FieldSpec) -> Check:
    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return "must be a number"
        if value < 0 or value > 1e15:
            return "out of range"
        return None

    return check


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if _UUID_FORM.fullmatch(value):
        return True  # the canonical form, which uuid.UUID always accepts
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_grid(value: Any) -> bool:
    return isinstance(value, str) and GRID_CODE_RE.match(value) is not None


def _code(spec: FieldSpec) -> Check:
    table = spec.code_table

    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            return "must be a code string"
        known = codes.get(table) if codes and table else None
        if known is not None and value not in known:
            return f"unknown code {value!r} in {table}"
        return None

    return check


def _codes(spec: FieldSpec) -> Check:
    table = spec.code_table

    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if not isinstance(value, list):
            return "must be a list of codes"
        if len(value) > 50:
            return "must be a list of code strings"
        for item in value:
            if not isinstance(item, str) or not 0 < len(item) <= 64:
                return "must be a list of code strings"
        known = codes.get(table) if codes and table else None
        if known is not None:
            for item in value:
                if item not in known:
                    return f"unknown code {item!r} in {table}"
        return None

    return check


def _list(spec: FieldSpec) -> Check:
    max_len = spec.max_len

    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if not isinstance(value, list) or len(value) > max_len:
            return f"must be a list of at most {max_len} items"
        if not all(isinstance(i, dict | str) for i in value):
            return "items must be objects or strings"
        return None

    return check


def _any(spec: FieldSpec) -> Check:
    """A kind with no value check: only ``required`` applies."""
    return _simple(lambda value: True, "")(spec)


def _field_check(spec: FieldSpec) -> Check:
    """The check of one field: ``None`` clears it (refused if required), any other value goes
    to the check of its kind."""
    required, of_kind = spec.required, _BUILDERS.get(spec.kind, _any)(spec)

    def check(value: Any, codes: Mapping[str, set[str]] | None) -> str | None:
        if value is None:
            return "required" if required else None
        return of_kind(value, codes)

    return check


_BUILDERS: dict[str, Callable[[FieldSpec], Check]] = {
    "text": _text,
    "bool": _simple(lambda value: isinstance(value, bool), "must be true or false"),
    "int": _int,
    "number": _number,
    "date": _simple(_is_date, "must be a date YYYY-MM-DD"),
    "datetime": _simple(_is_datetime, "must be an ISO 8601 date-time"),
    "uuid": _simple(_is_uuid, "must be a UUID"),
    "grid": _simple(_is_grid, "must be a 15-digit grid code"),
    "id_number": _simple(
        id_number_valid, "not a valid ID number (length, birth date or check digit)"
    ),
    "phone": _simple(phone_valid, "not a valid phone number"),
    "code": _code,
    "codes": _codes,
    "list": _list,
}


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A record type's checks, built once: what :func:`validate_fields` runs."""

    rtype: RecordType
    device: Mapping[str, Check]  # fields a device may write
    server_only: Mapping[str, Check]  # fields only a server workflow may write
    required: tuple[str, ...]


def _compile(rtype: RecordType) -> _Compiled:
    device: dict[str, Check] = {}
    server_only: dict[str, Check] = {}
    for name, spec in rtype.fields.items():
        if name not in SERVER_OWNED_FIELDS:
            (server_only if spec.server_only else device)[name] = _field_check(spec)
    required = tuple(name for name, spec in rtype.fields.items() if spec.required)
    return _Compiled(rtype, device, server_only, required)


_COMPILED: dict[str, _Compiled] = {name: _compile(t) for name, t in RECORD_TYPES.items()}


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
    compiled = _COMPILED.get(type_name)
    if compiled is None or compiled.rtype is not rtype:  # a type added or replaced at run time
        compiled = _COMPILED[type_name] = _compile(rtype)
    device = compiled.device
    errors: dict[str, str] = {}
    for name, value in fields.items():
        check = device.get(name)
        if check is None and allow_server_only:
            check = compiled.server_only.get(name)
        if check is not None:
            message = check(value, codes)
            if message:
                errors[name] = message
        elif name in SERVER_OWNED_FIELDS or name in compiled.server_only:
            errors[name] = "set by the server; a device cannot write it"
        else:
            errors[name] = "unknown field"
    if not partial:
        for name in compiled.required:
            if name not in fields and name not in errors:
                errors[name] = "required"
    return errors
