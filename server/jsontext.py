"""JSON text for what the server stores and sends on its hot paths (records, snapshots, sync
replies), encoded with orjson: the same JSON values as ``json.dumps(separators=(",", ":"),
ensure_ascii=False)``, about ten times faster.

Digests do not use this module: their one spelling is ``sync.canonical_json`` (stdlib only).
A value orjson cannot encode (an integer beyond 64 bits inside a free-form value) falls back to
the standard library, so nothing valid is ever refused here. Reading stays with the standard
library: orjson turns an integer beyond 64 bits into a float, which would change a value.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "loads"]

_OPTIONS = orjson.OPT_NON_STR_KEYS
loads = json.loads  # exact for every integer (see above)


def dumps_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``."""
    return dumps_bytes(value).decode()
