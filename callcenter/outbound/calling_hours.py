"""When a campaign may ring an owner: not in the quiet hours (default 21:00–08:30
local time) and not on a public holiday, per community. Urgent calls (an outage
notice the owner must hear now) ignore both; emergency paging never comes here.

``next_open(now)`` is ``now`` when calling is allowed, else the first minute it
is again, so a job held by the quiet hours is simply due later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from callcenter.errors import InvalidInput


class Holidays(Protocol):
    """``ivr.holidays.HolidayCalendar``: ``day(d).holiday`` for a named public holiday."""

    def day(self, d: date) -> object: ...


@dataclass(frozen=True, slots=True)
class QuietHours:
    """From ``start`` to ``end`` local time nobody is called (``start > end``:
    across midnight, the usual case)."""

    start: time = time(21, 0)
    end: time = time(8, 30)

    @classmethod
    def parse(cls, text: str, *, field_name: str = "quiet_hours") -> QuietHours:
        """``"21:00-08:30"``."""
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = time.fromisoformat(a), time.fromisoformat(b)
        except ValueError:
            raise InvalidInput(f"免打扰时段格式应为 21:00-08:30 / {field_name}: HH:MM-HH:MM, "
                               f"got {text!r}", field=field_name) from None
        if start == end:
            raise InvalidInput(f"免打扰时段的起止不能相同 / {field_name}: start equals end",
                               field=field_name)
        return cls(start, end)

    def covers(self, t: time) -> bool:
        if self.start > self.end:
            return t >= self.start or t < self.end
        return self.start <= t < self.end

    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class CallingHours:
    timezone: str = "Asia/Shanghai"
    quiet: QuietHours = QuietHours()
    by_community: Mapping[str, QuietHours] = field(default_factory=dict)
    holidays: Holidays | None = None

    def local_day(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.timezone)).date()

    def quiet_for(self, community: str | None) -> QuietHours:
        return self.by_community.get(community or "", self.quiet)

    def _holiday(self, d: date) -> bool:
        return bool(self.holidays is not None and getattr(self.holidays.day(d), "holiday", False))

    def why_not(self, now: datetime, community: str | None = None) -> str | None:
        """None when a non-urgent call may go out now, else why not (Chinese)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        quiet = self.quiet_for(community)
        if quiet.covers(local.time()):
            return f"免打扰时段（{quiet.label()}）"
        if self._holiday(local.date()):
            return "法定节假日不外呼"
        return None

    def next_open(self, now: datetime, community: str | None = None, *,
                  urgent: bool = False) -> datetime:
        if urgent:
            return now
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        quiet = self.quiet_for(community)
        moved = False
        for _ in range(400):  # a year of holidays at most
            if quiet.covers(local.time()):
                day = local.date() if local.time() < quiet.end else local.date() + timedelta(1)
                local, moved = datetime.combine(day, quiet.end, tz), True
            elif self._holiday(local.date()):
                local, moved = datetime.combine(local.date() + timedelta(1), time(0), tz), True
            else:
                break
        return local.astimezone(now.tzinfo) if moved else now
