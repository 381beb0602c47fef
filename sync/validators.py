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

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID_RE = re.compile(r"\d{17}[\dX]", re.ASCII)
_MOBILE_RE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_LANDLINE_RE = re.compile(r"0\d{2,3}-?\d{7,8}", re.ASCII)


def id_number_check_digit(first17: str) -> str:
    """The check digit for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


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
    return id_number_check_digit(value[:17]) == value[17]


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
