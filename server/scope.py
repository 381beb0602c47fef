"""A user's jurisdiction as a set of territory code prefixes.

Grid workers see their assigned grids; everyone else sees their home unit's subtree. Because a
unit's code starts with its parent's code, "in scope" is "starts with one of the prefixes".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from server.models import Role, User


def _successor(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix``.

    For digit codes this is the decimal increment ("110101009" → "110101010"), which orders the
    same under any collation; ``prefix + '\\uffff'`` does not (glibc/ICU collations may ignore
    that code point). None when there is no such string of the same length (all nines).
    """
    if prefix.isdigit():
        if set(prefix) == {"9"}:
            return None
        return str(int(prefix) + 1).zfill(len(prefix))
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True, slots=True)
class Scope:
    prefixes: tuple[str, ...]

    @classmethod
    def for_user(cls, user: User) -> Scope:
        if user.role == Role.GRID_WORKER:
            return cls(tuple(sorted(user.grid_codes)))
        return cls((user.unit_code,))

    def contains(self, code: str | None) -> bool:
        return bool(code) and any(code.startswith(p) for p in self.prefixes)  # type: ignore[union-attr]

    def filter(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        """A WHERE condition: ``column`` within one of the prefixes (index-friendly ranges)."""
        ranges = []
        for prefix in self.prefixes:
            upper = _successor(prefix)
            lower = column >= prefix
            ranges.append(lower if upper is None else and_(lower, column < upper))
        return or_(*ranges) if ranges else false()

    @property
    def token(self) -> str:
        """A short stable hash of the prefixes; devices compare it to notice a scope change."""
        digest = hashlib.sha256("\n".join(sorted(self.prefixes)).encode()).hexdigest()
        return digest[:16]

    def as_dict(self) -> dict[str, object]:
        return {"prefixes": list(self.prefixes), "token": self.token}


__all__ = ["Scope"]
