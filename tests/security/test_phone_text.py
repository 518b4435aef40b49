"""Numbers found in text in every spelling, and what is not a number left alone."""

from __future__ import annotations

import json

import pytest

from callcenter.directory.masking import mask_json, mask_text, masked_number, present_pop
from callcenter.directory.phone_text import find_phone_numbers
from callcenter.web.masking import mask_body

MOBILE = "+8613812345678"
SPELLINGS = [
    "13812345678", "+8613812345678", "008613812345678", "8613812345678", "013812345678",
    "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+86-138-1234-5678",
    "0086 138 1234 5678", "１３８１２３４５６７８", "＋８６ １３８ １２３４ ５６７８",
    "tel:+8613812345678", "%2B8613812345678", "幺三八一二三四五六七八", "幺 三 八 一 二 三 四 五 六 七 八",
    "1.3812345678E10", "1.3812345678e+10",  # a spreadsheet's float, in an import's CSV line
]
LANDLINE = "+8675526543210"
LANDLINE_SPELLINGS = ["075526543210", "0755-26543210", "(0755)26543210", "（０７５５）２６５４３２１０",
                      "0755 2654 3210", "+86 755 2654 3210", "+86 (0)755 2654 3210", "8675526543210"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_mobile_is_found_and_masked(spelling: str) -> None:
    text = f"业主来电（{spelling}）请回电。"
    [span] = find_phone_numbers(text)
    assert span.e164 == MOBILE and spelling.strip().endswith(text[span.start:span.end].strip())
    masked = mask_text(text)
    assert masked == f"业主来电（{spelling[:len(spelling) - (span.end - span.start)]}138****5678）请回电。"
    assert not find_phone_numbers(masked)


@pytest.mark.parametrize("spelling", LANDLINE_SPELLINGS)
def test_every_spelling_of_a_landline_is_found_and_masked(spelling: str) -> None:
    [span] = find_phone_numbers(f"座机 {spelling}。")
    assert span.e164 == LANDLINE
    assert mask_text(f"座机 {spelling}。") == "座机 075*****3210。"


@pytest.mark.parametrize("text", [
    "BX20261203-0001",            # a ticket number
    "1764748800000",              # epoch milliseconds
    "1764748800.123",             # an Asterisk uniqueid
    "1.38123E+10", "2.5E10",      # floats that are no whole number
    "2026-12-03 10:20:30",        # a date
    "2026120300",                 # a date and hour (would parse as Guangzhou without its 0)
    "欠费 1200.50 元", "12345678.90",  # amounts
    "分机 8001", "8001-8009",     # extensions
    "4008001234", "400-800-1234",  # a 400 hotline as sites print it
    "3-1-1201", "13812345678901",  # a room; an id longer than a mobile
    "一二三四五六七", "第一二三期",  # ordinary Chinese numerals
])
def test_what_is_not_a_phone_number_stays_as_it_is(text: str) -> None:
    assert find_phone_numbers(text) == []
    assert mask_text(text) == text


def test_kept_numbers_survive_and_the_rest_are_masked() -> None:
    text = "热线 0755-88886666，业主 13812345678"
    assert mask_text(text, keep={"+8675588886666"}) == "热线 0755-88886666，业主 138****5678"


def test_masked_forms_keep_the_trunk_zero_of_a_landline() -> None:
    assert masked_number("+8613812345678") == "138****5678"
    assert masked_number("+861012345678") == "010****5678"
    assert masked_number("+8675526543210") == "075*****3210"


def test_json_strings_keys_and_integers_are_masked_and_the_rest_kept() -> None:
    data = {"id": 42, "at_ms": 1764748800000, "amount": "1200.50", "caller": 13812345678,
            "+8613700002222": ["note 138 1234 5678"], "ok": True, "ratio": 0.5}
    masked, changed = mask_json(data)
    assert changed
    assert masked == {"id": 42, "at_ms": 1764748800000, "amount": "1200.50", "caller": "138****5678",
                      "137****2222": ["note 138****5678"], "ok": True, "ratio": 0.5}
    same, changed = mask_json({"id": 1, "text": "无号码"})
    assert not changed


def test_a_json_body_with_escaped_full_width_digits_is_masked() -> None:
    body = json.dumps({"description": "回电１３８１２３４５６７８"}).encode()  # \uff11... escapes
    assert b"\\uff11" in body
    out = mask_body(body, "application/json", "utf-8", frozenset())
    assert out is not None and json.loads(out) == {"description": "回电138****5678"}


def test_a_page_is_masked_in_text_and_attributes_alike() -> None:
    page = '<a href="tel:+8613812345678" data-phone="138-1234-5678">１３８１２３４５６７８</a> 8001'
    out = mask_body(page.encode(), "text/html", "utf-8", frozenset())
    assert out is not None
    assert out.decode() == ('<a href="tel:138****5678" data-phone="138****5678">138****5678</a>'
                            ' 8001')
    assert mask_body(b"\x89PNG 13812345678", "image/png", None, frozenset()) is None


def test_a_pop_for_a_viewer_without_full_numbers_masks_its_ticket_titles_too() -> None:
    pop = {"caller": {"e164": MOBILE, "display": ""}, "title": "张伟",
           "rooms": [{"open_tickets": [{"title": "请回电 13700002222"}]}],
           "people": [{"phones": [MOBILE]}]}
    masked = present_pop(pop, "engineer", own_call=True)
    assert masked["caller"]["display"] == "138****5678"
    assert masked["rooms"][0]["open_tickets"][0]["title"] == "请回电 137****2222"
    full = present_pop(pop, "agent", own_call=True)
    assert full["rooms"][0]["open_tickets"][0]["title"] == "请回电 13700002222"
    assert full["caller"]["display"] == "13812345678"
