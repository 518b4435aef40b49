"""A spreadsheet phone cell read by what parses as a valid number: spaces inside
one number, spaces between two, floats, labels, and what cannot be read surely."""

from __future__ import annotations

import pytest

from callcenter.directory.phones import read_phone_cell


@pytest.mark.parametrize(("cell", "number"), [
    ("+86 137 0000 1111", "+8613700001111"),
    ("138 1234 5678", "+8613812345678"),
    ("0755 8888 1234", "+8675588881234"),
    ("(0755) 2654 3210", "+8675526543210"),
    ("400 812 3123", "+864008123123"),
    ("１３８　１２３４　５６７８", "+8613812345678"),  # full-width digits and spaces
    ("13812345678.0", "+8613812345678"),  # a float saved as text
    ("1.3812345678E10", "+8613812345678"),
    ("1.3812345678E+10", "+8613812345678"),
])
def test_digit_groups_with_spaces_are_one_number(cell: str, number: str) -> None:
    found = read_phone_cell(cell)
    assert found.numbers == (number,) and not found.invalid and not found.doubts


@pytest.mark.parametrize(("cell", "numbers"), [
    ("13812345678 13987654321", ("+8613812345678", "+8613987654321")),
    ("138 1234 5678 139 8765 4321", ("+8613812345678", "+8613987654321")),
    ("0755 8888 1234 13812345678", ("+8675588881234", "+8613812345678")),
    ("13812345678（本人） 13987654321（妻）", ("+8613812345678", "+8613987654321")),
    ("13812345678，13987654321", ("+8613812345678", "+8613987654321")),  # full-width comma
    ("13812345678／13987654321", ("+8613812345678", "+8613987654321")),
    ("13812345678.0 13987654321.0", ("+8613812345678", "+8613987654321")),
])
def test_two_numbers_in_one_cell_stay_two(cell: str, numbers: tuple[str, ...]) -> None:
    found = read_phone_cell(cell)
    assert found.numbers == numbers and not found.invalid and not found.doubts


def test_digits_that_belong_to_no_number_are_a_doubt_not_a_guess() -> None:
    found = read_phone_cell("13812345678 1234")
    assert found.numbers == ("+8613812345678",) and not found.invalid
    (doubt,) = found.doubts
    assert "「1234」不是完整的号码" in doubt
    # Two landlines sharing an area code: the second is not read as a guess.
    shared = read_phone_cell("0755-26543210 26543211")
    assert shared.numbers == ("+8675526543210",) and "26543211" in shared.doubts[0]


def test_a_cell_read_two_ways_keeps_only_what_both_readings_share() -> None:
    found = read_phone_cell("0755 1234 0086 138 1234 5678")
    assert found.numbers == ("+8613812345678",)
    (doubt,) = found.doubts
    assert "不止一种读法" in doubt and "13812345678" in doubt and "+86" not in doubt


def test_excels_rounded_scientific_form_is_invalid_with_the_reason() -> None:
    found = read_phone_cell("1.38123E+10")
    assert found.numbers == () and "科学计数法" in found.invalid[0][1]


@pytest.mark.parametrize(("cell", "invalid"), [
    ("", False), ("无", False), ("暂无", False), ("-", False),
    ("abc", True), ("12345", True), ("138 1234 567", True),
])
def test_empty_words_and_non_numbers(cell: str, invalid: bool) -> None:
    found = read_phone_cell(cell)
    assert found.numbers == () and bool(found.invalid) is invalid
