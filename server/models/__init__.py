"""All models, imported here so that ``db.metadata`` knows every table.

The lead adds ``from server.models.records import ...`` below when records exist.
"""

from server.models.audit import GENESIS_HASH, AccessLog, AuditEntry
from server.models.codes import CodeEntry
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
    "LoginAttempt",
    "RefreshToken",
    "Role",
    "UnitLevel",
    "User",
    "UserGrid",
    "level_of",
    "parent_code_of",
]
