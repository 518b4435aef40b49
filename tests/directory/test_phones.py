"""Every form a trunk or a spreadsheet writes a number in normalises to one key."""

from __future__ import annotations

import pytest

from callcenter.directory.phones import (
    InvalidPhone,
    mask_phone,
    national_display,
    normalize_phone,
    split_phone_cell,
)

MOBILE_FORMS = [
    "13812345678",
    "+8613812345678",
    "008613812345678",
    "8613812345678",
    "013812345678",
    "138 1234 5678",
    "138-1234-5678",
    "１３８１２３４５６７８",
]
LANDLINE_FORMS = ["075526543210", "0755-26543210", "(0755)26543210", "（0755）26543210", "+86 755 2654 3210"]


@pytest.mark.parametrize("raw", MOBILE_FORMS)
def test_mobile_forms_normalise_to_one_key(raw: str) -> None:
    assert normalize_phone(raw) == "+8613812345678"


@pytest.mark.parametrize("raw", LANDLINE_FORMS)
def test_landline_forms_normalise_to_one_key(raw: str) -> None:
    assert normalize_phone(raw) == "+8675526543210"


@pytest.mark.parametrize("raw", ["", "  ", "abc", "123", "1381234567", "138123456789", "00000000000"])
def test_invalid_numbers_are_rejected_with_the_value(raw: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw)
    assert info.value.error_id == "invalid_phone"


def test_a_cell_with_two_numbers_is_split() -> None:
    assert split_phone_cell("13812345678/13912345678") == ["13812345678", "13912345678"]
    assert split_phone_cell("13812345678、13912345678") == ["13812345678", "13912345678"]
    assert split_phone_cell("13812345678，13912345678") == ["13812345678", "13912345678"]
    assert split_phone_cell("13812345678 13912345678") == ["13812345678", "13912345678"]
    assert split_phone_cell("0755 26543210") == ["075526543210"]
    assert split_phone_cell("") == []


def test_display_and_masking() -> None:
    assert national_display("+8613812345678") == "13812345678"
    assert national_display("+8675526543210") == "0755-26543210"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "138****5678"
