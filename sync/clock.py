"""Hybrid logical clocks (Kulkarni et al., 2014).

A timestamp is (wall milliseconds, counter, node). It never goes backwards on one node, even when
the physical clock does, and it moves past every timestamp the node has observed. The string form
sorts in the same order as the timestamps. Clocks only break ties between concurrent edits; they
never decide what is concurrent (base versions do) or the order of a pull (server sequences do).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ClockDriftError, WrongType

__all__ = ["DEFAULT_MAX_DRIFT_MS", "HLC", "HybridClock", "wall_clock_ms"]

DEFAULT_MAX_DRIFT_MS = 5 * 60 * 1000
_MAX_COUNTER = 99_999
_HLC_RE = re.compile(r"(\d{13}):(\d{5}):([A-Za-z0-9_.\-]{1,64})", re.ASCII)


def wall_clock_ms() -> int:
    """Physical time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, order=True)
class HLC:
    """One hybrid logical timestamp. Ordered by (wall, counter, node)."""

    wall: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall:013d}:{self.counter:05d}:{self.node}"

    @classmethod
    def parse(cls, text: object) -> HLC:
        """Parse the string form; raise WrongType for anything else."""
        if not isinstance(text, str):
            raise WrongType("hlc must be a string", value_type=type(text).__name__)
        match = _HLC_RE.fullmatch(text)
        if not match:
            raise WrongType("hlc must look like 1700000000000:00000:node", value=text[:80])
        return cls(int(match[1]), int(match[2]), match[3])


class HybridClock:
    """The clock of one node.

    >>> clock = HybridClock("dev-1", now=lambda: 1_000)
    >>> str(clock.now())
    '0000000001000:00000:dev-1'
    """

    def __init__(
        self,
        node: str,
        *,
        now: Callable[[], int] = wall_clock_ms,
        max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
        last: HLC | None = None,
    ) -> None:
        if not _HLC_RE.fullmatch(f"{0:013d}:{0:05d}:{node}"):
            raise WrongType("node must be 1-64 characters of A-Z a-z 0-9 _ . -", node=node)
        self.node = node
        self._physical = now
        self.max_drift_ms = max_drift_ms
        self._wall = last.wall if last else 0
        self._counter = last.counter if last else 0

    @property
    def last(self) -> HLC:
        """The latest timestamp issued or observed."""
        return HLC(self._wall, self._counter, self.node)

    def _advance(self, wall: int, counter: int) -> HLC:
        if counter > _MAX_COUNTER:  # more than 100k events in one millisecond: borrow the next
            wall, counter = wall + 1, 0
        self._wall, self._counter = wall, counter
        return HLC(wall, counter, self.node)

    def now(self) -> HLC:
        """A timestamp for a local event (an edit), later than every earlier one."""
        physical = self._physical()
        if physical > self._wall:
            return self._advance(physical, 0)
        return self._advance(self._wall, self._counter + 1)

    def observe(self, remote: HLC) -> HLC:
        """Merge a timestamp received from another node and return the new local timestamp.

        Raises ClockDriftError when ``remote`` is further ahead of our physical clock than
        ``max_drift_ms``: such a clock would otherwise win every tie from then on.
        """
        physical = self._physical()
        if remote.wall - physical > self.max_drift_ms:
            raise ClockDriftError(
                "remote clock is too far ahead",
                ahead_ms=remote.wall - physical,
                max_drift_ms=self.max_drift_ms,
            )
        wall = max(self._wall, remote.wall, physical)
        if wall == self._wall == remote.wall:
            counter = max(self._counter, remote.counter) + 1
        elif wall == self._wall:
            counter = self._counter + 1
        elif wall == remote.wall:
            counter = remote.counter + 1
        else:
            counter = 0
        return self._advance(wall, counter)
