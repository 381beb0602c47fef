"""Validators for resident identity data, shared by the server and the client SDK.

ID numbers follow GB 11643-1999 (18 characters: region code, birth date, sequence, ISO 7064
MOD 11-2 check digit). Phones are mainland mobile numbers or landlines with an area code.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = [
    "id_number_birth_date",
    "id_number_check_digit",
    "id_number_valid",
    "mask_id_number",
    "mask_phone",
    "phone_valid",
]

_CHECK = "10X98765432"
_ID_RE = re.compile(r"\d{17}[\dX]", re.ASCII)
_MOBILE_RE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_LANDLINE_RE = re.compile(r"0\d{2,3}-?\d{7,8}", re.ASCII)


def id_number_check_digit(first17: str) -> str:
    """The check digit for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    return _CHECK[_weighted_sum(first17) % 11]


def _weighted_sum(digits: str) -> int:
    """A number equal, mod 11, to the weighted sum of the first 17 of ``digits`` (ASCII digits).

    The weights are 2**17 … 2**1 mod 11 (ISO 7064 MOD 11-2). Read in base 13 the digits make
    Σ digit × 13**k, and 13 ≡ 2 (mod 11), so twice that number is Σ digit × 2**(k + 1), the
    weighted sum, mod 11: one int() call instead of a loop.
    """
    return 2 * int(digits[:17], 13)


def id_number_birth_date(value: str) -> date | None:
    """The birth date encoded in an ID number, or None if it is not a real date."""
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def id_number_valid(value: object) -> bool:
    """True for an 18-character ID number with a real birth date and a correct check digit."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return False
    if id_number_birth_date(value) is None:
        return False
    return _CHECK[_weighted_sum(value) % 11] == value[17]  # the pattern says: ASCII digits


def phone_valid(value: object) -> bool:
    """True for a mainland mobile number (11 digits) or a landline with its area code."""
    return isinstance(value, str) and bool(
        _MOBILE_RE.fullmatch(value) or _LANDLINE_RE.fullmatch(value)
    )


def mask_id_number(value: str | None) -> str | None:
    """Keep the first 4 and last 4 characters: 1201**********1234."""
    if not value:
        return value
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: 138****1234."""
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
