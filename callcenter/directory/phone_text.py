"""Phone numbers inside free text: found in every spelling, masked to ``138****5678``.

Ticket descriptions, voicemail transcripts, notes, pages, CSV rows and log lines
carry numbers as people write them: ``13812345678``, ``+8613812345678``,
``008613812345678``, ``138 1234 5678``, ``138-1234-5678``, ``0755-26543210``,
``(0755)26543210``, ``+86 755 2654 3210``, full-width ``１３８…``, ``tel:`` links,
``%2B86…`` in a URL, a mobile a spreadsheet exported as a float
(``1.3812345678E10``) and, in a transcript, Chinese numerals (``幺三八…``).

What counts as a number is decided in two steps, so that ids, timestamps, dates,
amounts and extensions survive:

1. the text must have the *shape* of a number as people write one: a mobile
   (``1[3-9]`` + 9 digits, optionally after ``0``, ``86``, ``+86``, ``0086``),
   a landline with its trunk 0 or country code (``0755…``, ``86755…``; a bare
   ``2026120300`` is a date, not Guangzhou), or an international number after
   ``+``/``00``; groups may be split
   by one space or hyphen where people split them (3-4-4, area code), and the
   match may not start or end inside a longer run of digits (a 13-digit epoch in
   milliseconds holds no mobile);
2. that text must parse as a valid number (``phonenumbers``, via ``try_normalize``).

Full-width digits and Chinese numerals are mapped one character to one character
before matching, so a span found in the mapped text is the same span in the
original.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from callcenter.directory.phones import mask_phone, try_normalize

_WIDE = str.maketrans("０１２３４５６７８９＋（）－　\u00a0", "0123456789+()-  ")
# Only the Chinese numerals become digits here (ASCII digits become "#"), so a spoken
# match is made of spoken digits alone.
_SPOKEN_ONLY = str.maketrans("〇零一二三四五六七八九幺两0123456789", "0012345678912##########")
_CN_RUN = re.compile("[〇零一二三四五六七八九幺两](?: ?[〇零一二三四五六七八九幺两]){6}")
_HAS_WIDE = re.compile("[０-９＋（）－　\u00a0]")
_ANY_DIGIT = re.compile("[0-9０-９〇零一二三四五六七八九幺两]")

_S = r"[ -]?"  # one optional separator where people put one
_MOBILE = rf"1[3-9][0-9]{_S}[0-9]{{4}}{_S}[0-9]{{4}}"
_AREA_LOCAL = rf"[1-9][0-9]{{1,2}}{_S}[0-9]{{3,4}}{_S}[0-9]{{4}}"
_SHAPE = re.compile(
    # The lookahead first lets the engine skip to a digit, "+" or "(" (twice as fast).
    r"(?=[0-9+(])(?<![0-9+])(?:"
    rf"(?:\+|00) ?86{_S}(?:\(0\) ?)?(?:{_MOBILE}|{_AREA_LOCAL})"  # +86 / 0086
    rf"|\+[1-9][0-9]{{0,2}}{_S}[0-9](?:{_S}[0-9]){{5,13}}"       # any other country
    rf"|86{_S}(?:{_MOBILE}|{_AREA_LOCAL})"                          # 86 without +
    rf"|0?{_MOBILE}"                                              # national mobile
    rf"|(?:\(0[1-9][0-9]{{1,2}}\)|0[1-9][0-9]{{1,2}}){_S}[0-9]{{3,4}}{_S}[0-9]{{4}}"  # 0 + area
    r")(?![0-9])"
)
# A mobile a spreadsheet exported as a float: 1.3812345678E10 (all 11 digits kept).
_FLOAT_MOBILE = re.compile(r"(?<![0-9.])1\.([3-9][0-9]{9})[eE]\+?10(?![0-9])")
# A transcript says the digits one word at a time: "幺 三 八 一 二 …".
_SPOKEN = re.compile(r"(?<![0-9])[0-9](?: ?[0-9]){6,14}(?![0-9])")


@dataclass(frozen=True, slots=True)
class PhoneSpan:
    start: int
    end: int
    e164: str


def _spans(mapped: str, pattern: re.Pattern[str]) -> Iterator[PhoneSpan]:
    for m in pattern.finditer(mapped):
        text = m.group()
        digits = re.sub(r"[^0-9]", "", text.replace("(0)", ""))
        e164 = try_normalize("+" + digits if text.startswith("+") else digits)
        if e164 is not None:
            yield PhoneSpan(m.start(), m.end(), e164)


def find_phone_numbers(text: str) -> list[PhoneSpan]:
    """Every phone number written in ``text``: where it is and its E.164 form."""
    if not text:
        return []
    # str.translate is slow on non-ASCII text (2.6 ms for 50 kB): only when needed.
    mapped = text.translate(_WIDE) if _HAS_WIDE.search(text) else text
    found = list(_spans(mapped, _SHAPE))
    if "10" in mapped and ("E" in mapped or "e" in mapped):
        found += [PhoneSpan(m.start(), m.end(), e164) for m in _FLOAT_MOBILE.finditer(mapped)
                  if (e164 := try_normalize("1" + m.group(1))) is not None]
        found.sort(key=lambda s: s.start)
    if _CN_RUN.search(text):
        spoken = text.translate(_SPOKEN_ONLY)
        taken = [(s.start, s.end) for s in found]
        found += [s for s in _spans(spoken, _SPOKEN)
                  if not any(a < s.end and s.start < b for a, b in taken)]
        found.sort(key=lambda s: s.start)
    return found


def mask_phone_numbers(text: str, *, keep: Collection[str] = (),
                       mask: Callable[[str], str] = mask_phone) -> str:
    """``text`` with every number in it masked (``138****5678``), except the
    E.164 numbers in ``keep`` (a site's hotlines, its staff)."""
    if not text or not _ANY_DIGIT.search(text):
        return text
    spans = find_phone_numbers(text)
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for span in spans:
        if span.e164 in keep:
            continue
        out.append(text[last:span.start])
        out.append(mask(span.e164))
        last = span.end
    out.append(text[last:])
    return "".join(out)
