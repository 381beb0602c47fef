"""ID numbers (GB 11643), phones, and masking: tables of cases plus a property for all inputs."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.validators import (
    id_number_birth_date,
    id_number_check_digit,
    id_number_valid,
    mask_id_number,
    mask_phone,
    phone_valid,
)


def _with_check(first17: str) -> str:
    return first17 + id_number_check_digit(first17)


GOOD = _with_check("11010519491231002")  # check digit X
GOOD_DIGIT = _with_check("99010120000229001")  # 29 February in a leap year; synthetic region
WRONG_CHECK = GOOD_DIGIT[:17] + str((int(GOOD_DIGIT[17]) + 1) % 10)
FEB_30 = _with_check("11010519900230001")


def test_the_known_example_has_check_digit_x():
    assert GOOD.endswith("X")
    assert id_number_check_digit("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (GOOD, True),
        (GOOD_DIGIT, True),
        (WRONG_CHECK, False),
        (FEB_30, False),  # February 30 is not a date
        (_with_check("11010519900229001"), False),  # 1990 is not a leap year
        (_with_check("11010519901301001"), False),  # month 13
        (GOOD[:17], False),  # 17 characters
        (GOOD + "0", False),  # 19 characters
        (GOOD[:17] + "x", False),  # lowercase x
        pytest.param(  # full-width ２ in the sequence: raises ValueError instead of False
            GOOD_DIGIT[:14] + "\uff12" + GOOD_DIGIT[15:], False
        ),
        pytest.param(GOOD + "\n", False),
        ("１１０１０５１９４９１２３１００２Ｘ", False),  # all full-width
        (" " + GOOD, False),
        ("", False),
        (None, False),
        (110105194912310020, False),
    ],
)
def test_id_number_valid(value, valid):
    assert id_number_valid(value) is valid


def test_birth_date_is_read_from_the_number():
    assert id_number_birth_date(GOOD_DIGIT) == date(2000, 2, 29)
    assert id_number_birth_date(FEB_30) is None


@pytest.mark.parametrize("bad", ["1234567890123456", "123456789012345678", "1101051949123100X",
                                 "１１０１０５１９４９１２３１００２"])  # fmt: skip
def test_check_digit_needs_17_ascii_digits(bad):
    with pytest.raises(ValueError):
        id_number_check_digit(bad)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("13800138000", True),
        ("17012345678", True),
        ("19912345678", True),
        ("12012345678", False),  # no mobile range starts 12
        ("1380013800", False),  # 10 digits
        ("138001380000", False),  # 12 digits
        ("+8613800138000", False),
        ("138 0013 8000", False),
        pytest.param("138\uff10\uff10138000", False),  # full-width ０
        pytest.param("13800138000\n", False),
        ("010-12345678", True),
        ("01012345678", True),
        ("0755-1234567", True),
        ("0755-123456", False),
        ("", False),
        (None, False),
        (13800138000, False),
    ],
)
def test_phone_valid(value, valid):
    assert phone_valid(value) is valid


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("120101199001011234", "1201**********1234"),
        ("11010519491231002X", "1101**********002X"),
        ("12345678", "********"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_id_number(value, masked):
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13800138000", "138****8000"),
        ("010-12345678", "010*****5678"),
        ("1234567", "*******"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


_first17 = st.builds(
    lambda region, born, seq: f"{region:06d}{born:%Y%m%d}{seq:03d}",
    st.integers(0, 999_999),
    st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)),
    st.integers(0, 999),
)


@given(_first17)
def test_any_real_date_with_its_check_digit_is_valid(first17):
    assert id_number_valid(first17 + id_number_check_digit(first17))


@given(_first17, st.characters())
def test_any_other_last_character_is_invalid(first17, last):
    if last != id_number_check_digit(first17):
        assert not id_number_valid(first17 + last)
