"""JSON text for what the server stores, sends and reads on its hot paths (records, snapshots,
sync requests and replies), with orjson where it gives exactly what the standard library gives.

Writing: orjson, the same JSON values as ``json.dumps(separators=(",", ":"),
ensure_ascii=False)``, about ten times faster; a value orjson cannot encode (an integer beyond
64 bits inside a free-form value) falls back to the standard library, so nothing valid is ever
refused here.

Canonical text (what digests cover): ``sync.canonical_json``'s spelling, which is the one; orjson
with sorted keys gives the same bytes for any value without floats (their spelling differs)
whose integers fit 64 bits, so :func:`canonical` uses it for those and the standard library for
the rest.

Reading: orjson too, except for a text holding a run of 19 or more digits (orjson reads an
integer beyond 64 bits as a float, which would change the value) or one orjson refuses (NaN,
a byte order mark, UTF-16, a lone surrogate, nesting beyond 1,024): the standard library then
reads or refuses it as it always did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

from sync import canonical_json

__all__ = ["JSONProvider", "canonical", "dumps", "dumps_bytes", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # after _DIGITS_AS_ZERO: 19 digits in a row


def loads(data: str | bytes | bytearray, fallback: Callable[[Any], Any] = json.loads) -> Any:
    """The JSON value of ``data``, exactly as ``fallback`` (``json.loads``, or a reader built
    on it) reads it, or its error: orjson reads what it reads alike, ``fallback`` the rest."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return fallback(data)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with request bodies read by :func:`loads`; writing is Flask's own."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s) if not kwargs else super().loads(s, **kwargs)


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``."""
    return dumps_bytes(value).decode()


def _floatless(value: Any) -> bool:
    """True if ``value`` is built of dicts, lists, str, int, bool and None only — no float and
    nothing (a tuple, a subclass) whose spelling orjson and the standard library might differ on.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return kind is str or kind is int or kind is bool or value is None
    pending = [value]
    while pending:
        container = pending.pop()
        # a dict key that is not a str: orjson refuses it, and canonical() falls back
        for v in container.values() if type(container) is dict else container:
            kind = type(v)
            if kind is str or kind is int or kind is bool or v is None:
                continue
            if kind is dict or kind is list:
                pending.append(v)
                continue
            return False
    return True


def canonical(value: Any) -> str:
    """``sync.canonical_json(value)``, the same text, faster for the values orjson spells alike."""
    if _floatless(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, a key that is not a str
            pass
    return canonical_json(value)
