"""Password hashing with Argon2id at OWASP's minimum parameters (m=19 MiB, t=2, p=1)."""

from __future__ import annotations

import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB, OWASP_TIME_COST = 19456, 2


def _hasher_from_environment() -> PasswordHasher:
    """OWASP's minimum unless raised by LINLI_ARGON2_MEMORY_KIB / LINLI_ARGON2_TIME_COST.

    Values below the minimum are refused, except with LINLI_ARGON2_WEAK_FOR_TESTS=1: the test
    suite creates thousands of accounts and sets it (tests/conftest.py). Hashes carry their own
    parameters, so a weak hash is still verified and is rehashed at the next login.
    """
    memory = int(os.environ.get("LINLI_ARGON2_MEMORY_KIB", OWASP_MEMORY_KIB))
    time_cost = int(os.environ.get("LINLI_ARGON2_TIME_COST", OWASP_TIME_COST))
    weak = memory < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST
    if weak and os.environ.get("LINLI_ARGON2_WEAK_FOR_TESTS") != "1":
        raise RuntimeError("Argon2 parameters below OWASP's minimum (m=19456 KiB, t=2)")
    return PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=1)


_hasher = _hasher_from_environment()

# Verified against when the account does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("linli-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing or malformed hash is a mismatch (same cost)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


__all__ = ["hash_password", "needs_rehash", "verify_password"]
