"""Phone numbers as trunks and spreadsheets write them, normalised to E.164.

The same caller arrives as ``13812345678``, ``+8613812345678``,
``008613812345678``, ``8613812345678`` or ``013812345678``; landlines as
``075526543210``, ``0755-26543210`` or ``(0755)26543210``. All forms of one
number normalise to one string (``+8613812345678``), which is what the
directory stores and indexes.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from callcenter.errors import InvalidInput

_FULLWIDTH = str.maketrans("０１２３４５６７８９＋（）－　", "0123456789+()- ")
_KEEP = re.compile(r"[^\d+]")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
SPLIT_CELL = re.compile(r"[/、,，;；\s]+")


class InvalidPhone(InvalidInput):
    error_id = "invalid_phone"


def _prepare(raw: str) -> str:
    text = raw.translate(_FULLWIDTH).strip()
    digits = _KEEP.sub("", text)
    if digits.startswith("+"):
        return "+" + digits[1:].replace("+", "")
    digits = digits.replace("+", "")
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("86") and len(digits) == 13 and _CN_MOBILE.fullmatch(digits[2:]):
        return "+" + digits
    if digits.startswith("0") and _CN_MOBILE.fullmatch(digits[1:]):
        # Some trunks put the national trunk prefix in front of a mobile number.
        return digits[1:]
    return digits


def normalize_phone(raw: str, region: str = "CN") -> str:
    """Return the E.164 form (``+8613812345678``) or raise ``InvalidPhone``."""
    if not raw or not raw.strip():
        raise InvalidPhone("empty phone number", details={"value": raw})
    prepared = _prepare(raw)
    if not prepared.lstrip("+"):
        raise InvalidPhone(f"no digits in phone number {raw!r}", details={"value": raw})
    try:
        parsed = phonenumbers.parse(prepared, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"not a phone number: {raw!r}", details={"value": raw}) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(f"not a valid phone number: {raw!r}", details={"value": raw})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=8192)
def try_normalize(raw: str, region: str = "CN") -> str | None:
    """``normalize_phone``, or None for what is not a valid number. Remembered: every
    AMI event of a call carries its caller's number, and each parse costs ~60 µs."""
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None


def phone_kind(e164: str) -> str:
    parsed = phonenumbers.parse(e164)
    t = phonenumbers.number_type(parsed)
    return "mobile" if t == phonenumbers.PhoneNumberType.MOBILE else "landline"


def split_phone_cell(cell: str) -> list[str]:
    """A spreadsheet cell may hold two numbers: ``138.../139...``, ``、``, ``,`` or a space.

    A landline written with a space after its area code (``0755 26543210``)
    stays one number."""
    text = cell.translate(_FULLWIDTH).strip()
    if not text:
        return []
    parts = [p for p in SPLIT_CELL.split(text) if p]
    merged: list[str] = []
    for part in parts:
        if merged and re.fullmatch(r"\(?0\d{2,3}\)?", merged[-1]) and re.fullmatch(r"\d{7,8}", part):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return merged


@lru_cache(maxsize=8192)
def national_display(e164: str) -> str:
    """``+8613812345678`` → ``13812345678``; ``+8675526543210`` → ``0755-26543210``.
    Remembered: every pop frame shows its numbers this way."""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    if parsed.country_code != 86:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return text.replace(" ", "") if phone_kind(e164) == "mobile" else text.replace(" ", "-", 1).replace(" ", "")


def mask_phone(number: str) -> str:
    """``13812345678`` → ``138****5678``; keeps the first 3 and last 4 digits."""
    digits = number.lstrip("+")
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) <= 7:
        return digits[:1] + "*" * max(0, len(digits) - 3) + digits[-2:] if len(digits) > 3 else "***"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
