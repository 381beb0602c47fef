"""New record ids: version 7 UUIDs made with this device's clock (see ``sync.ids``).

Within one process the ids are strictly increasing even if the clock stalls or steps back:
the 12 bits after the time count on from the last id (RFC 9562 §6.2, method 1), and the time
moves on by one millisecond when they run out. The time in an id is when it was made, by the
device's clock; nothing reads it back.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable

from sync.ids import compose_uuid7

__all__ = ["record_id", "uuid7"]

_lock = threading.Lock()
_last = [0, 0]  # the last id's milliseconds and counter


def uuid7(
    now_ms: Callable[[], int] | None = None, random: Callable[[int], bytes] = secrets.token_bytes
) -> uuid.UUID:
    """A new version 7 UUID, greater than every one this process made before."""
    ms = now_ms() if now_ms is not None else time.time_ns() // 1_000_000
    tail = int.from_bytes(random(10), "big")
    with _lock:
        last_ms, counter = _last
        if ms > last_ms:
            counter = tail >> 68 & 0x7FF  # a random start, with room to count on
        else:
            ms, counter = last_ms, counter + 1
            if counter > 0xFFF:
                ms, counter = ms + 1, 0
        _last[:] = [ms, counter]
    return compose_uuid7(ms, counter, tail)


def record_id() -> str:
    """A new record id: a time-ordered UUID as text."""
    return str(uuid7())
