"""Phone numbers as trunks and spreadsheets write them, normalised to E.164.

The same caller arrives as ``13812345678``, ``+8613812345678``,
``008613812345678``, ``8613812345678`` or ``013812345678``; landlines as
``075526543210``, ``0755-26543210`` or ``(0755)26543210``. All forms of one
number normalise to one string (``+8613812345678``), which is what the
directory stores and indexes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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
    """The numbers in a spreadsheet cell, each as written without its spaces
    (see ``read_phone_cell``); a cell that cannot be read that way gives its parts."""
    found = read_phone_cell(cell)
    if found.invalid or found.doubts:
        return [p for p in SPLIT_CELL.split(_cell_form(cell)) if p]
    return ["".join(w.split()) for w in found.written]


@dataclass(frozen=True, slots=True)
class PhoneCell:
    """A spreadsheet cell read as phone numbers.

    ``numbers`` (E.164) with ``written`` (each as the cell writes it): what the
    cell surely holds. ``invalid``: (text, Chinese reason) for a part that holds
    no number at all (the importer rejects the row). ``doubts``: Chinese
    sentences for what could not be read with certainty (the importer imports
    ``numbers`` and reports the doubt instead of guessing)."""

    numbers: tuple[str, ...] = ()
    written: tuple[str, ...] = ()
    invalid: tuple[tuple[str, str], ...] = ()
    doubts: tuple[str, ...] = ()


# A number a spreadsheet stored as a float: 13812345678.0, 1.3812345678E10.
_FLOAT_ZERO = re.compile(r"(\d+)\.0+")
_SCIENTIFIC = re.compile(r"(\d)(?:\.(\d+))?[eE]\+?(\d{1,2})")
_ONE_TOKEN = re.compile(r"[0-9+()\-.eE]+")
_HARD_SPLIT = re.compile(r"[/、,;|\n]+")
_NO_NUMBER = frozenset({"无", "暂无", "没有", "空", "未知", "不详", "none", "n/a", "na"})
"""What offices write in a phone cell for "no number"."""
_MAX_GROUP = 6  # tokens of one number: "+86 137 0000 1111" is four
_MAX_READINGS = 8


def _cell_form(cell: str) -> str:
    if cell.isascii():
        return cell.strip()
    return unicodedata.normalize("NFKC", cell).translate(_FULLWIDTH).strip()


def _number(text: str) -> str | None:
    """``try_normalize`` without its cache: an import's 100,000 numbers, each
    seen once, would only push out the callers the cache is for."""
    try:
        return normalize_phone(text)
    except InvalidPhone:
        return None


def float_digits(token: str) -> tuple[str | None, str]:
    """``13812345678.0`` and ``1.3812345678E10`` → the digits; ``(None, reason)``
    for a float that lost digits (Excel's ``1.38123E+10``); other text unchanged."""
    m = _FLOAT_ZERO.fullmatch(token)
    if m:
        return m.group(1), ""
    m = _SCIENTIFIC.fullmatch(token)
    if not m:
        return token, ""
    mantissa = m.group(1) + (m.group(2) or "")
    exponent = int(m.group(3))
    if len(mantissa) > exponent + 1:
        return token, ""  # a fraction: not a whole number written as a float
    if len(mantissa) < exponent + 1:
        return None, "以科学计数法保存，末尾的数字已丢失（请把该列设为文本后重新填写）"
    return mantissa, ""


# One way to read a run of tokens: groups that are numbers (E.164, as written),
# and the tokens left over because no valid number contains them.
_Reading = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


def _readings(tokens: list[str]) -> list[_Reading]:
    """The ways to cut ``tokens`` into consecutive valid numbers that leave the
    fewest tokens over (at most ``_MAX_READINGS`` of them)."""
    best: dict[int, tuple[int, list[_Reading]]] = {len(tokens): (0, [((), ())])}
    for i in range(len(tokens) - 1, -1, -1):
        options: list[tuple[int, _Reading]] = []
        for j in range(i + 1, min(len(tokens), i + _MAX_GROUP) + 1):
            written = " ".join(tokens[i:j])
            number = _number(written)
            if number is not None:
                cost, rest = best[j]
                options += [(cost, (((number, written), *groups), left)) for groups, left in rest]
        cost, rest = best[i + 1]  # or leave token i over
        options += [(cost + 1, (groups, (tokens[i], *left))) for groups, left in rest]
        low = min(c for c, _ in options)
        best[i] = (low, [r for c, r in options if c == low][:_MAX_READINGS])
    return best[0][1]


def _show(e164: str) -> str:
    return national_display(e164)


def read_phone_cell(cell: str) -> PhoneCell:
    """Read a cell as phone numbers, deciding by what parses as a valid number.

    ``/``, ``、``, ``,`` and ``;`` always separate numbers; a space may sit
    between digit groups of one number (``+86 137 0000 1111``, ``138 1234
    5678``, ``0755 8888 1234``) or between two numbers (``13812345678
    13987654321``): the cell is cut where every piece is a valid number. Words
    without digits beside numbers (``本人``, ``王先生``) are labels and skipped, a
    cell of only ``无``/``暂无`` is empty and one of other words is invalid; floats
    (``13812345678.0``, ``1.3812345678E10``) are read as their digits.

    When it cannot be cut that way with certainty (digits left over that belong
    to no valid number, or two different cuts), the numbers every best reading
    shares are kept and the rest is a doubt; a part with no number at all is
    invalid."""
    text = _cell_form(cell)
    if _ONE_TOKEN.fullmatch(text):  # the common cell, 13812345678: no cutting to do
        token, _ = float_digits(text)
        if token is not None and (number := _number(token)) is not None:
            return PhoneCell((number,), (token,))
    if not any(c.isdigit() for c in text):
        words = text.strip(" -—/.、,;").lower()
        if words and words not in _NO_NUMBER:
            return PhoneCell(invalid=((text, "不是电话号码"),))
        return PhoneCell()
    numbers: list[str] = []
    written: list[str] = []
    invalid: list[tuple[str, str]] = []
    doubts: list[str] = []
    for chunk in _HARD_SPLIT.split(text):
        tokens: list[str] = []
        for raw in chunk.split():
            if not any(c.isdigit() for c in raw):
                continue
            token, reason = float_digits(raw)
            if token is None:
                invalid.append((raw, reason))
            else:
                tokens.append(token)
        if not tokens:
            continue
        found = _readings(tokens)
        if not any(groups for groups, _ in found):
            invalid.append((" ".join(tokens), "不是有效的电话号码"))
            continue
        sure = set.intersection(*({n for n, _ in groups} for groups, _ in found))
        for e164, as_written in found[0][0]:
            if e164 in sure:
                numbers.append(e164)
                written.append(as_written)
        if len(found) > 1:
            ways = "；或 ".join("、".join(_show(n) for n, _ in groups) for groups, _ in found)
            doubts.append(f"「{chunk.strip()}」有不止一种读法（{ways}），只导入了都有的号码")
        elif found[0][1]:
            left = " ".join(found[0][1])
            doubts.append(f"「{chunk.strip()}」中的「{left}」不是完整的号码，未导入这部分")
    seen = dict.fromkeys(numbers)
    kept = tuple(written[numbers.index(n)] for n in seen)
    return PhoneCell(tuple(seen), kept, tuple(invalid), tuple(doubts))


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
