"""All models, imported here so that ``db.metadata`` knows every table."""

from server.models.audit import GENESIS_HASH, AccessLog, AuditEntry
from server.models.codes import CodeEntry
from server.models.records import GridDigest, Record, Removal, SyncCounter, SyncOp, snapshot_text
from server.models.territory import AdminUnit, UnitLevel, level_of, parent_code_of
from server.models.users import (
    ADMIN_ROLES,
    Device,
    LoginAttempt,
    RefreshToken,
    Role,
    User,
    UserGrid,
)

__all__ = [
    "ADMIN_ROLES",
    "GENESIS_HASH",
    "AccessLog",
    "AdminUnit",
    "AuditEntry",
    "CodeEntry",
    "Device",
    "GridDigest",
    "LoginAttempt",
    "Record",
    "RefreshToken",
    "Removal",
    "Role",
    "SyncCounter",
    "SyncOp",
    "UnitLevel",
    "User",
    "UserGrid",
    "level_of",
    "parent_code_of",
    "snapshot_text",
]
