"""Building, unit and room from a transcript (spaces already removed)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ticketing.triage.numerals import NUMERAL_CHARS, to_number

N = f"[{NUMERAL_CHARS}]"
_BUILDING = re.compile(rf"(?<!{N}[到至~\-])({N}+|[A-Za-z])(?:号楼|栋|幢|座|号院)")
# "一 栋 到 五 栋": a range of buildings names none of them.
_BUILDING_RANGE = re.compile(rf"{N}+(?:号楼|栋|幢|座)?(?:到|至|~|-){N}+(?:号楼|栋|幢|座)")
# "三百 零 一" / "五百 一十 二": a room said as a number.
_ROOM_SPOKEN = re.compile(rf"(?<![{NUMERAL_CHARS}])([一二两三四五六七八九]百(?:零[一二三四五六七八九]|[一二两三四五六七八九]?十[一二三四五六七八九]?))(?![{NUMERAL_CHARS}楼层])")
# "打 幺 幺 九" is a phone number, not a room.
_DIALLED = re.compile(rf"(?:打|拨|call)[{NUMERAL_CHARS}]+")
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
    buildings_text = _BUILDING_RANGE.sub(lambda r: "_" * len(r.group(0)), text)
    m = next((b for b in _BUILDING.finditer(buildings_text)
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
    rooms_text = _DIALLED.sub(lambda d: "_" * len(d.group(0)), rooms_text)
    rooms_text = re.sub(r"(?<![一二三四五六七八九])十([一二三四五六七八九])(?=零)", r"一\1", rooms_text)
    for mr in _ROOM.finditer(rooms_text):
        if any(a <= mr.start(1) < b for a, b in spans):
            continue
        candidate = to_number(mr.group(1))
        if candidate and len(candidate) >= 3 and candidate[0] != "0":
            room = candidate
            break
    if room is None:
        spoken = _ROOM_SPOKEN.search(rooms_text)
        if spoken and not any(a <= spoken.start(1) < b for a, b in spans):
            room = to_number(spoken.group(1))
    return Location(building, unit, room)
