"""The administrative territory: 区 (district) → 街道 (street) → 社区 (community) → 网格 (grid).

Codes follow the statistical division code pattern: a unit's code starts with its parent's code,
so a subtree is a code prefix (6 digits district, 9 street, 12 community, 15 grid).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db


class UnitLevel(StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


CODE_LENGTHS: dict[UnitLevel, int] = {
    UnitLevel.DISTRICT: 6,
    UnitLevel.STREET: 9,
    UnitLevel.COMMUNITY: 12,
    UnitLevel.GRID: 15,
}
_LEVEL_BY_LENGTH = {length: level for level, length in CODE_LENGTHS.items()}


def level_of(code: str) -> UnitLevel:
    """The level a code's length denotes; ValueError for a malformed code."""
    if not code.isdigit() or len(code) not in _LEVEL_BY_LENGTH:
        raise ValueError(f"not a unit code: {code!r}")
    return _LEVEL_BY_LENGTH[len(code)]


def parent_code_of(code: str) -> str | None:
    """The parent's code (a shorter prefix), or None for a district."""
    level = level_of(code)
    if level is UnitLevel.DISTRICT:
        return None
    shorter = max(length for length in CODE_LENGTHS.values() if length < len(code))
    return code[:shorter]


class AdminUnit(db.Model):
    __tablename__ = "admin_unit"

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("admin_unit.code"), index=True, default=None
    )

    def __repr__(self) -> str:
        return f"<AdminUnit {self.code} {self.level} {self.name}>"
