"""Which mode the hotline is in now: office hours, night, weekend or holiday.

Evaluated in the community's time zone. Office hours apply on working days
(Monday–Friday, plus 调休 Saturdays/Sundays); a public holiday wins over office
hours; a per-community exception (a closure, special Spring Festival hours)
wins over both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from ivr.holidays import HolidayCalendar


class Mode(StrEnum):
    OFFICE = "office"
    NIGHT = "night"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True)
class Hours:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end


DEFAULT_OFFICE = Hours(time(8, 30), time(18, 0))


@dataclass
class TimeModes:
    holidays: HolidayCalendar = field(default_factory=HolidayCalendar)
    timezone: str = "Asia/Shanghai"
    office: dict[int, Hours] = field(
        default_factory=lambda: {d: DEFAULT_OFFICE for d in range(7)})
    """Office hours by weekday (0 = Monday); used on working days only."""
    exceptions: dict[date, Hours | None] = field(default_factory=dict)
    """A date's own hours (special hours) or None (closed all day)."""

    def mode(self, now: datetime) -> Mode:
        if now.tzinfo is None:
            raise ValueError("aware datetime required")
        local = now.astimezone(ZoneInfo(self.timezone))
        d, t = local.date(), local.time()
        if d in self.exceptions:
            hours = self.exceptions[d]
            if hours is not None and hours.contains(t):
                return Mode.OFFICE
            return Mode.NIGHT if hours is not None else Mode.HOLIDAY
        kind = self.holidays.day(d)
        if kind.holiday:
            return Mode.HOLIDAY
        if not kind.workday:
            return Mode.WEEKEND
        hours = self.office.get(local.weekday(), DEFAULT_OFFICE)
        return Mode.OFFICE if hours.contains(t) else Mode.NIGHT
