"""Building, unit and room from a transcript (spaces already removed)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ticketing.triage.numerals import NUMERAL_CHARS, to_number

N = f"[{NUMERAL_CHARS}]"
_BUILDING = re.compile(rf"(?<![到至~\-])({N}+|[A-Za-z])(?:号楼|栋|幢|座|号院)")
_DETERMINER = "这那哪每同"  # "这 一 栋" / "同 一 栋" is "this building", not building 1
_UNIT = re.compile(rf"({N}+)单元")
_UNIT_RANGE = re.compile(rf"{N}+(?:到|至|~|-){N}+单元")
_DIGITLIKE = "零〇洞一幺二两三四五六七八九0123456789"
_ROOM = re.compile(rf"(?<![{_DIGITLIKE}十百])([{_DIGITLIKE}]{{3,4}})(?![{_DIGITLIKE}十百])(室|号|的|[^楼点次天年元块平层米岁个分]|$)")


@dataclass(frozen=True, slots=True)
class Location:
    building: str | None = None
    unit: str | None = None
    room: str | None = None


def extract_location(text: str) -> Location:
    building = unit = room = None
    spans: list[tuple[int, int]] = []
    m = next((b for b in _BUILDING.finditer(text)
              if not (b.group(1) == "一" and b.start() > 0 and text[b.start() - 1] in _DETERMINER)),
             None)
    if m:
        raw = m.group(1)
        building = raw.upper() if raw.isalpha() and raw.isascii() else to_number(raw)
        spans.append(m.span())
    if not _UNIT_RANGE.search(text):
        mu = _UNIT.search(text)
        if mu:
            unit = to_number(mu.group(1))
            spans.append(mu.span())
    # "楼上/楼下" is upstairs/downstairs, not a floor; "十二零三" is how some say 1203.
    rooms_text = text.replace("楼上", "上层").replace("楼下", "下层")
    rooms_text = re.sub(r"(?<![一二三四五六七八九])十([一二三四五六七八九])(?=零)", r"一\1", rooms_text)
    for mr in _ROOM.finditer(rooms_text):
        if any(a <= mr.start(1) < b for a, b in spans):
            continue
        candidate = to_number(mr.group(1))
        if candidate and len(candidate) >= 3 and candidate[0] != "0":
            room = candidate
            break
    return Location(building, unit, room)
