"""Small shape checks for decoding wire messages. Each raises a WireFormatError subclass."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import MissingField, OversizeValue, WrongType

MAX_STRING = 200
MAX_VALUE_BYTES = 16 * 1024


def mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WrongType(f"{what} must be an object", field=what)
    return value


def req(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise MissingField(f"{what}.{key} is required", field=f"{what}.{key}")
    return data[key]


def string(value: object, what: str, *, max_len: int = MAX_STRING, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise WrongType(f"{what} must be a string", field=what)
    if len(value) > max_len:
        raise OversizeValue(f"{what} is longer than {max_len} characters", field=what)
    if not empty and not value:
        raise WrongType(f"{what} must not be empty", field=what)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate: no valid text can hold it
            raise WrongType(f"{what} is not valid Unicode text", field=what) from None
    return value


def opt_string(value: object, what: str, *, max_len: int = MAX_STRING) -> str | None:
    return None if value is None else string(value, what, max_len=max_len, empty=True)


def integer(value: object, what: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(f"{what} must be an integer", field=what)
    if not minimum <= value <= maximum:
        raise WrongType(f"{what} must be between {minimum} and {maximum}", field=what)
    return value


_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)


def uuid_text(value: object, what: str) -> str:
    if type(value) is str and _UUID_RE.fullmatch(value):
        return value  # already the canonical form: what str(uuid.UUID(value)) gives back
    text = string(value, what, max_len=36)
    try:
        return str(uuid.UUID(text)) if len(text) == 36 else _bad_uuid(what)
    except ValueError:
        return _bad_uuid(what)


def _bad_uuid(what: str) -> str:
    raise WrongType(f"{what} must be a UUID in its 36-character form", field=what)


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
    if plain_size(value, max_bytes) is not None:
        return value  # plain JSON within the limit: what encoding it below would show
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


_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_DEPTH = 32


def plain_size(value: object, max_bytes: int) -> int | None:
    """A bound on the bytes of ``value`` as compact JSON, if it is *plain* and within ``max_bytes``.

    Plain is the JSON a device sends: None, bools, ints of at most 64 bits, valid Unicode text,
    and lists and dicts (string keys) of these, of the exact built-in types, nested at most
    32 deep. Anything else (floats, huge ints, tuples, subclasses, unpaired surrogates, a larger
    bound) answers None, so callers take their careful path; None says nothing about validity.
    The bound counts every character of text as its worst escape (``\\u0000``, 6 bytes).
    """
    size = 0
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return None
            size += 6 * len(item) + 2
        elif kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                return None
            size += 20
        elif item is None or kind is bool:
            size += 5
        elif depth >= _DEPTH:
            return None
        elif kind is list:
            size += len(item) + 2
            for child in item:
                push((child, depth + 1))
        elif kind is dict:
            size += 2 * len(item) + 2
            for key, child in item.items():
                if type(key) is not str:
                    return None
                push((key, depth))
                push((child, depth + 1))
        else:
            return None
        if size > max_bytes:
            return None
    return size


def items(value: object, what: str, *, max_items: int) -> list[Any]:
    if not isinstance(value, list):
        raise WrongType(f"{what} must be a list", field=what)
    if len(value) > max_items:
        raise OversizeValue(f"{what} has more than {max_items} items", field=what)
    return value
