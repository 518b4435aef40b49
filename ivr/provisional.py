"""Provisional public holidays for a year without official data, computed.

``chinesecalendar`` knows only the years the State Council has published, and
the notice for a year comes out late in the year before. Until a site imports
it, the statutory days of the year are computed here so the hotline still runs
its holiday menu on them:

- fixed dates: 元旦 1-1, 劳动节 5-1 and 5-2, 国庆节 10-1 to 10-3;
- lunar dates (``lunar_python``): 春节 除夕 and 正月初一 to 初三, 端午节 五月初五,
  中秋节 八月十五;
- 清明节: the day of the 清明 solar term (``lunar_python``'s 节气 table).

These are the 13 days the 《全国年节及纪念日放假办法》 (2024 revision, in force
since 2025) makes statutory: 元旦 1, 春节 4 (with 除夕), 清明 1, 劳动节 2,
端午 1, 中秋 1, 国庆 3. The longer breaks a notice announces (the 国庆 week, the
春节 week) are made by moving weekend workdays (调休); which weekends move is
the notice's decision and cannot be computed, so neither the extra days off nor
the 调休 workdays are guessed: only the statutory days are holidays, every other
day follows the weekday rule until the official file is imported.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar


def _lunar(year: int, month: int, day: int) -> date:
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _qingming(year: int) -> date:
    # The 节气 table of a lunar year around April holds that year's 清明.
    solar = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    day = date(solar.getYear(), solar.getMonth(), solar.getDay())
    if day.year != year:  # pragma: no cover - 清明 is always 4 to 6 April
        raise ValueError(f"清明 of {year} computed as {day}")
    return day


@lru_cache(maxsize=16)
def _computed(year: int) -> tuple[tuple[date, str], ...]:
    days: dict[date, str] = {date(year, 1, 1): "元旦"}
    new_year = _lunar(year, 1, 1)  # 正月初一 of the lunar year that starts in ``year``
    for offset in range(-1, 3):  # 除夕, 初一, 初二, 初三
        days[new_year + timedelta(days=offset)] = "春节"
    days[_qingming(year)] = "清明节"
    days[date(year, 5, 1)] = days[date(year, 5, 2)] = "劳动节"
    days[_lunar(year, 5, 5)] = "端午节"
    days[_lunar(year, 8, 15)] = "中秋节"
    for d in (1, 2, 3):
        days[date(year, 10, d)] = "国庆节"  # wins where 中秋 falls on one of these days
    return tuple(sorted(days.items()))


def provisional_holidays(year: int) -> dict[date, str]:
    """The statutory holidays of ``year``, computed: date → Chinese name, by date."""
    return dict(_computed(year))
