"""Chinese public holidays and their swapped working days (调休).

The ``chinesecalendar`` package knows 2004–2026 and raises for later years;
the State Council publishes a year's holidays late in the year before. So an
operator may load a file (``callcenter holidays import FILE``), and a date
nobody covers falls back to the plain weekday/weekend rule — never an error in
the middle of a call.

File format (CSV, UTF-8, header optional): ``date,kind,name`` where kind is
``holiday`` or ``workday``::

    2027-01-01,holiday,元旦
    2027-02-07,workday,春节调休

or the same as TOML (a ``.toml`` file)::

    [holidays]
    2027-01-01 = "元旦"
    [workdays]
    2027-02-07 = "春节调休"
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

from ivr.errors import IvrError

WARN_DAYS = 30
HOLIDAY_FILE = "holidays.csv"
"""Where ``callcenter holidays import`` keeps the operator's days, under the data directory."""


class HolidayFileError(IvrError):
    error_id = "holiday_file_invalid"


@dataclass(frozen=True, slots=True)
class DayKind:
    workday: bool
    holiday: bool
    name: str = ""
    source: str = "weekday"  # chinesecalendar | file | weekday


@dataclass
class HolidayCalendar:
    overrides: dict[date, tuple[str, str]] = field(default_factory=dict)  # date → (kind, name)

    def load_file(self, path: Path) -> int:
        """Add the days in ``path``; returns how many. A bad line names its number."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise HolidayFileError(f"{path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise HolidayFileError(f"{path}: not UTF-8 text") from None
        loaded = self._parse_toml(path, text) if path.suffix.lower() == ".toml" \
            else self._parse_csv(path, text)
        self.overrides.update(loaded)
        return len(loaded)

    @staticmethod
    def _parse_toml(path: Path, text: str) -> dict[date, tuple[str, str]]:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HolidayFileError(f"{path}: not valid TOML: {exc}") from None
        loaded: dict[date, tuple[str, str]] = {}
        for section in data:
            if section not in ("holidays", "workdays"):
                raise HolidayFileError(f"{path}: [{section}]: expected [holidays] or [workdays]")
        for section, kind in (("holidays", "holiday"), ("workdays", "workday")):
            table = data.get(section, {})
            if not isinstance(table, dict):
                raise HolidayFileError(f"{path}: {section}: expected a table of date = \"name\"")
            for key, name in table.items():
                try:
                    day = date.fromisoformat(str(key))
                except ValueError:
                    raise HolidayFileError(f"{path}: [{section}] {key}: bad date") from None
                if day in loaded:
                    raise HolidayFileError(f"{path}: {day}: both a holiday and a workday")
                loaded[day] = (kind, str(name))
        return loaded

    @staticmethod
    def _parse_csv(path: Path, text: str) -> dict[date, tuple[str, str]]:
        loaded: dict[date, tuple[str, str]] = {}
        for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not "".join(row).strip() or row[0].strip().lower() in ("date", "日期"):
                continue
            try:
                day = date.fromisoformat(row[0].strip())
            except ValueError:
                raise HolidayFileError(f"{path}: line {line_no}: bad date {row[0]!r}") from None
            kind = row[1].strip().lower() if len(row) > 1 else ""
            if kind in ("假日", "休"):
                kind = "holiday"
            if kind in ("班", "工作日", "调休"):
                kind = "workday"
            if kind not in ("holiday", "workday"):
                raise HolidayFileError(
                    f"{path}: line {line_no}: kind must be holiday or workday, not {kind!r}")
            loaded[day] = (kind, row[2].strip() if len(row) > 2 else "")
        return loaded

    def reload_from(self, path: Path) -> int:
        """Swap in the days of ``path`` (none when it does not exist); returns how
        many. A bad file raises and leaves the days in force untouched."""
        fresh = HolidayCalendar()
        if path.exists():
            fresh.load_file(path)
        self.overrides = fresh.overrides
        return len(fresh.overrides)

    def day(self, d: date) -> DayKind:
        if d in self.overrides:
            kind, name = self.overrides[d]
            return DayKind(workday=kind == "workday", holiday=kind == "holiday", name=name,
                           source="file")
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(d)
            workday = chinese_calendar.is_workday(d)
        except NotImplementedError:
            if self._file_covers_year(d.year):
                # The year is loaded: a day not listed follows the weekday rule.
                return DayKind(workday=d.weekday() < 5, holiday=False, source="file")
            return DayKind(workday=d.weekday() < 5, holiday=False, source="weekday")
        # chinesecalendar marks weekends as holidays without a name; only named days count.
        return DayKind(workday=workday, holiday=bool(on_holiday and name), name=name or "",
                       source="chinesecalendar")

    def _file_covers_year(self, year: int) -> bool:
        return any(d.year == year for d in self.overrides)

    def coverage_end(self) -> date:
        """The last date whose holidays are known."""
        package_end = date(max(chinese_calendar.holidays).year, 12, 31)
        file_years = {d.year for d in self.overrides}
        end = package_end
        while end.year + 1 in file_years:
            end = date(end.year + 1, 12, 31)
        return end

    def coverage(self) -> date:
        """The last covered date (the package's years, then whole years from files)."""
        return self.coverage_end()

    def warnings(self, today: date) -> list[str]:
        """What an operator must do about the holiday data, from 30 days before it ends."""
        w = self.warning(today)
        return [w] if w else []

    def warning(self, today: date) -> str | None:
        end = self.coverage_end()
        if today > end:
            return (f"节假日数据已于 {end} 到期，正按普通周末规则路由；请导入 {today.year} 年的节假日 / "
                    f"holiday data ended {end}: import {today.year}'s holidays")
        if end - today <= timedelta(days=WARN_DAYS):
            return (f"节假日数据将于 {end} 到期，请导入 {end.year + 1} 年的节假日 / "
                    f"holiday data ends {end}: import {end.year + 1}'s holidays")
        return None


@dataclass
class HolidayFile:
    """The operator's holiday file behind a calendar, read at start and again on
    every reload (SIGHUP, the admin page). ``error`` is the last reload's failure."""

    calendar: HolidayCalendar
    path: Path
    error: str = ""

    def reload(self) -> int:
        try:
            count = self.calendar.reload_from(self.path)
        except HolidayFileError as exc:
            self.error = str(exc)
            raise
        self.error = ""
        return count
