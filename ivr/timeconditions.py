"""Which mode the hotline is in now: office hours, night, weekend or holiday.

Evaluated in the community's time zone. Office hours apply on working days
(Monday–Friday, plus 调休 Saturdays/Sundays); a public holiday wins over office
hours; a per-community exception (a closure, special Spring Festival hours)
wins over both.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.errors import IvrError
from ivr.holidays import HolidayCalendar

HOURS_FILE = "office_hours.toml"
"""Per-community office hours, under the data directory (read at start)."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeConditionsError(IvrError):
    """An office-hours file is invalid; the message names the file, section and key."""

    error_id = "time_conditions_invalid"


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

    def mode_for(self, community: str | None, now: datetime) -> Mode:
        """The engine's entry point; one ``TimeModes`` serves every community."""
        return self.mode(now)


@dataclass
class TimeConditions:
    """Office hours per community, sharing one holiday calendar. A community
    without its own hours uses ``default``."""

    default: TimeModes = field(default_factory=TimeModes)
    communities: dict[str, TimeModes] = field(default_factory=dict)

    def for_community(self, community: str | None) -> TimeModes:
        return self.communities.get(community or "", self.default)

    def mode_for(self, community: str | None, now: datetime) -> Mode:
        return self.for_community(community).mode(now)


def _hours(value: Any, where: str) -> Hours:
    if not isinstance(value, str) or value.count("-") != 1:
        raise TimeConditionsError(f"{where}: expected \"HH:MM-HH:MM\", got {value!r}")
    start, end = value.split("-")
    try:
        hours = Hours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        raise TimeConditionsError(f"{where}: expected \"HH:MM-HH:MM\", got {value!r}") from None
    if hours.end <= hours.start:
        raise TimeConditionsError(f"{where}: the end {end.strip()} is not after the start")
    return hours


def _modes(raw: Any, where: str, base: TimeModes) -> TimeModes:
    if not isinstance(raw, dict):
        raise TimeConditionsError(f"{where}: expected a table")
    unknown = set(raw) - {"timezone", "office", "closed", "special"}
    if unknown:
        raise TimeConditionsError(f"{where}: {sorted(unknown)[0]}: unknown key")
    tz = raw.get("timezone", base.timezone)
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeConditionsError(f"{where}: timezone: unknown time zone {tz!r}") from None
    office = dict(base.office)
    office_raw = raw.get("office", {})
    if not isinstance(office_raw, dict):
        raise TimeConditionsError(f"{where}: office: expected a table like {{ mon = \"08:30-18:00\" }}")
    for day, value in office_raw.items():
        if day not in WEEKDAYS:
            raise TimeConditionsError(f"{where}: office.{day}: not a weekday ({', '.join(WEEKDAYS)})")
        office[WEEKDAYS.index(day)] = _hours(value, f"{where}: office.{day}")
    exceptions: dict[date, Hours | None] = dict(base.exceptions)
    closed = raw.get("closed", [])
    if not isinstance(closed, list):
        raise TimeConditionsError(f"{where}: closed: expected a list of dates")
    for i, d in enumerate(closed):
        day = d if isinstance(d, date) and not isinstance(d, datetime) else None
        if day is None:
            try:
                day = date.fromisoformat(str(d))
            except ValueError:
                raise TimeConditionsError(f"{where}: closed[{i}]: not a date: {d!r}") from None
        exceptions[day] = None
    special = raw.get("special", {})
    if not isinstance(special, dict):
        raise TimeConditionsError(f"{where}: special: expected a table of date = \"HH:MM-HH:MM\"")
    for key, value in special.items():
        try:
            day = date.fromisoformat(str(key))
        except ValueError:
            raise TimeConditionsError(f"{where}: special.{key}: not a date") from None
        exceptions[day] = _hours(value, f"{where}: special.{key}")
    return replace(base, timezone=str(tz), office=office, exceptions=exceptions)


def parse_time_conditions(data: dict[str, Any], source: str, holidays: HolidayCalendar,
                          timezone: str = "Asia/Shanghai") -> TimeConditions:
    """``[default]`` and ``[communities.<code>]`` tables, each with optional
    ``timezone``, ``office = { mon = "08:30-18:00", ... }``, ``closed = [dates]``
    and ``special = { "2027-02-16" = "09:00-12:00" }``. A community inherits
    the default's hours and overrides what it names."""
    unknown = set(data) - {"default", "communities"}
    if unknown:
        raise TimeConditionsError(f"{source}: {sorted(unknown)[0]}: unknown section")
    base = TimeModes(holidays, timezone)
    default = _modes(data.get("default", {}), f"{source}: [default]", base)
    communities_raw = data.get("communities", {})
    if not isinstance(communities_raw, dict):
        raise TimeConditionsError(f"{source}: communities: expected tables")
    communities = {code: _modes(raw, f"{source}: [communities.{code}]", default)
                   for code, raw in communities_raw.items()}
    return TimeConditions(default, communities)


def load_time_conditions(path: Path, holidays: HolidayCalendar,
                         timezone: str = "Asia/Shanghai") -> TimeConditions:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise TimeConditionsError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TimeConditionsError(f"{path}: not valid TOML: {exc}") from None
    return parse_time_conditions(data, str(path), holidays, timezone)
