"""The decoding and validation code as it was before its fast paths: the oracle the fast code
is compared with (tests/sync/test_fast_paths.py). Copied verbatim; do not "improve" it."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sync import _check as c
from sync.clock import HLC
from sync.errors import OversizeValue, UnknownRecordType, WrongType
from sync.operation import MAX_FIELDS, Operation, OpKind
from sync.schema import GRID_CODE_RE, RECORD_TYPES, SERVER_OWNED_FIELDS, FieldSpec
from sync.validators import id_number_birth_date, phone_valid

MAX_VALUE_BYTES = c.MAX_VALUE_BYTES
_NAME_MAX = 64
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID_RE = re.compile(r"\d{17}[\dX]", re.ASCII)


def json_value(value: object, what: str, *, max_bytes: int = MAX_VALUE_BYTES) -> Any:
    """A JSON value (no NaN, no non-string keys, valid Unicode) of at most ``max_bytes``.

    Scalars, the common case, are checked without encoding the value as JSON.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if type(value) is str and len(value) * 3 + 2 <= max_bytes and value.isascii():
        return value  # valid Unicode and within the limit without encoding it
    if isinstance(value, str):
        try:
            size = len(value.encode("utf-8")) + 2
        except UnicodeEncodeError:
            raise WrongType(f"{what} is not valid Unicode text", field=what) from None
        if size > max_bytes:
            raise OversizeValue(f"{what} is larger than {max_bytes} bytes", field=what)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise WrongType(f"{what} is not a JSON value: NaN or infinity", field=what)
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        raise WrongType(f"{what} is not valid Unicode text", field=what) from None
    except (TypeError, ValueError) as exc:
        raise WrongType(f"{what} is not a JSON value: {exc}", field=what) from None
    except RecursionError:
        raise OversizeValue(f"{what} is nested too deeply", field=what) from None
    if size > max_bytes:
        raise OversizeValue(f"{what} is larger than {max_bytes} bytes", field=what)
    return value


def _made_hlc(value: object) -> str:
    text = c.string(value, "operation.made_hlc", max_len=90)
    HLC.parse(text)
    return text


def _nonce(value: object) -> str:
    text = c.string(value, "operation.nonce", max_len=32)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", text, re.ASCII):
        raise WrongType("operation.nonce must be 1-32 of A-Z a-z 0-9 _ -", field="operation.nonce")
    return text


def from_dict(data: object) -> Operation:
    """Decode and check the shape of one operation; raise a WireFormatError subclass."""
    d = c.mapping(data, "operation")
    kind_text = c.string(c.req(d, "kind", "operation"), "operation.kind", max_len=16)
    try:
        kind = OpKind(kind_text)
    except ValueError:
        raise WrongType(f"unknown operation kind {kind_text!r}", field="operation.kind") from None
    rtype = c.string(c.req(d, "record_type", "operation"), "operation.record_type", max_len=32)
    if rtype not in RECORD_TYPES:
        raise UnknownRecordType(f"unknown record type {rtype!r}", record_type=rtype)
    hlc = c.string(c.req(d, "hlc", "operation"), "operation.hlc", max_len=90)
    HLC.parse(hlc)
    fields: dict[str, Any] = {}
    collection = item = None
    if kind in (OpKind.CREATE, OpKind.UPDATE, OpKind.RESOLVE):
        raw = c.mapping(c.req(d, "fields", "operation"), "operation.fields")
        if len(raw) > MAX_FIELDS:
            raise WrongType(f"at most {MAX_FIELDS} fields per operation", field="fields")
        if not raw and kind is not OpKind.CREATE:
            raise WrongType("an update needs at least one field", field="operation.fields")
        for name, value in raw.items():
            c.string(name, "operation.fields key", max_len=_NAME_MAX)
            fields[name] = json_value(value, f"operation.fields.{name}")
    elif kind is OpKind.APPEND:
        collection = c.string(
            c.req(d, "collection", "operation"), "operation.collection", max_len=_NAME_MAX
        )
        if collection not in RECORD_TYPES[rtype].collections:
            raise WrongType(
                f"{rtype} has no collection {collection!r}", field="operation.collection"
            )
        item = dict(c.mapping(c.req(d, "item", "operation"), "operation.item"))
        item["id"] = c.uuid_text(c.req(item, "id", "operation.item"), "operation.item.id")
        json_value(item, "operation.item", max_bytes=8 * 1024)
    return Operation(
        device_id=c.string(c.req(d, "device_id", "operation"), "operation.device_id", max_len=64),
        seq=c.integer(c.req(d, "seq", "operation"), "operation.seq", minimum=1),
        kind=kind,
        record_type=rtype,
        record_id=c.uuid_text(c.req(d, "record_id", "operation"), "operation.record_id"),
        base_version=c.integer(c.req(d, "base_version", "operation"), "operation.base_version"),
        hlc=hlc,
        author=c.string(d.get("author", ""), "operation.author", max_len=64, empty=True),
        fields=fields,
        collection=collection,
        item=item,
        reason=c.opt_string(d.get("reason"), "operation.reason", max_len=1000),
        made_seq=(
            None
            if d.get("made_seq") is None
            else c.integer(d["made_seq"], "operation.made_seq", minimum=1)
        ),
        made_hlc=None if d.get("made_hlc") is None else _made_hlc(d["made_hlc"]),
        nonce=None if d.get("nonce") is None else _nonce(d["nonce"]),
    )


def id_number_check_digit(first17: str) -> str:
    """The check digit for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def id_number_valid(value: object) -> bool:
    """True for an 18-character ID number with a real birth date and a correct check digit."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return False
    if id_number_birth_date(value) is None:
        return False
    return id_number_check_digit(value[:17]) == value[17]


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
