"""Code tables (dispute categories, sources, risk grades, tags, ...) as versioned data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db


class CodeEntry(db.Model):
    """One code of one code table in one version; ``data`` holds table-specific extras."""

    __tablename__ = "code_entry"
    __table_args__ = (UniqueConstraint("table_name", "code", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(64), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
