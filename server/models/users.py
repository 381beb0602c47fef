"""People and their devices: users, grid assignments, registered devices, refresh tokens and
login attempts (kept in the database so rate limits hold across worker processes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import UTCDateTime, utcnow
from server.extensions import db


class Role(StrEnum):
    GRID_WORKER = "grid_worker"
    COMMUNITY_HEAD = "community_head"
    STREET_ADMIN = "street_admin"
    DISTRICT_ADMIN = "district_admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


ADMIN_ROLES = (Role.STREET_ADMIN, Role.DISTRICT_ADMIN)


class User(db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    unit_code: Mapped[str] = mapped_column(ForeignKey("admin_unit.code"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    grids: Mapped[list[UserGrid]] = relationship(
        cascade="all, delete-orphan", order_by="UserGrid.grid_code", lazy="selectin"
    )

    @property
    def grid_codes(self) -> list[str]:
        return [grid.grid_code for grid in self.grids]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"


class UserGrid(db.Model):
    """A grid assigned to a grid worker; a worker may have several."""

    __tablename__ = "user_grid"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    grid_code: Mapped[str] = mapped_column(ForeignKey("admin_unit.code"), primary_key=True)


class Device(db.Model):
    """A tablet, identified by a UUID it generated itself, bound to one user."""

    __tablename__ = "device"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    clock_skew_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)

    user: Mapped[User] = relationship(lazy="joined")

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    # How fresh the bookkeeping below is kept: a device syncing every few seconds would otherwise
    # write its own row at every request (a statement, and on a handshake a commit).
    SYNC_MARK_S = 60
    SKEW_MARK_MS = 1000

    def sync_mark_due(self, now: datetime) -> bool:
        """Whether ``last_sync_at`` is older than a minute (or unset) at ``now``."""
        last = self.last_sync_at
        return last is None or (now - last).total_seconds() > self.SYNC_MARK_S

    def skew_mark_due(self, skew_ms: int) -> bool:
        """Whether ``skew_ms`` differs from the recorded clock skew by a second or more."""
        known = self.clock_skew_ms
        return known is None or abs(skew_ms - known) >= self.SKEW_MARK_MS


class RefreshToken(db.Model):
    """Server half of a refresh token. Rotation keeps the family; reuse revokes the family."""

    __tablename__ = "refresh_token"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("device.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class LoginAttempt(db.Model):
    """One login attempt, counted per key: ``user:<name>`` and ``ip:<address>``."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
