"""A user's jurisdiction as a set of territory code prefixes.

Grid workers see their assigned grids; everyone else sees their home unit's subtree. Because a
unit's code starts with its parent's code, "in scope" is "starts with one of the prefixes".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from server.models import Role, User
from server.models.territory import CODE_LENGTHS, UnitLevel

_GRID_LENGTH = CODE_LENGTHS[UnitLevel.GRID]


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
        return cls.of(user.role, user.unit_code, user.grid_codes)

    @classmethod
    def of(cls, role: str, unit_code: str, grid_codes: Iterable[str]) -> Scope:
        """A grid worker's scope is their grids; anyone else's is their unit."""
        if role == Role.GRID_WORKER:
            return cls(tuple(sorted(set(grid_codes))))
        return cls((unit_code,))

    def contains(self, code: str | None) -> bool:
        return bool(code) and any(code.startswith(p) for p in self.prefixes)  # type: ignore[union-attr]

    def filter(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        """A WHERE condition on a grid code ``column``: within one of the prefixes.

        A whole grid code is matched by equality, a shorter prefix by its range: both use the
        indexes, but only equality is planned well without statistics (PostgreSQL guesses a
        range holds a handful of rows, and right after a bulk load it planned a pull page as a
        scan and sort of every record in the change range).
        """
        grids = [p for p in self.prefixes if len(p) == _GRID_LENGTH]
        conditions = [column.in_(grids) if len(grids) > 1 else column == grids[0]] if grids else []
        for prefix in self.prefixes:
            if len(prefix) == _GRID_LENGTH:
                continue
            upper = _successor(prefix)
            lower = column >= prefix
            conditions.append(lower if upper is None else and_(lower, column < upper))
        return or_(*conditions) if conditions else false()

    @property
    def token(self) -> str:
        """A short stable hash of the prefixes; devices compare it to notice a scope change."""
        digest = hashlib.sha256("\n".join(sorted(self.prefixes)).encode()).hexdigest()
        return digest[:16]

    def as_dict(self) -> dict[str, object]:
        return {"prefixes": list(self.prefixes), "token": self.token}


__all__ = ["Scope"]
