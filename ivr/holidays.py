"""Chinese public holidays and their swapped working days (调休).

The ``chinesecalendar`` package knows 2004–2026 and raises for later years;
the State Council publishes a year's holidays late in the year before. So an
operator may load a file (``callcenter holidays import FILE``). A later year
without a complete file is *provisional*: its statutory holidays are computed
(``ivr.provisional``: 元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆) and run the
holiday menu, every other day follows the weekday rule, and its 调休 workdays
are unknown until the official file is imported; a complete file for the year
replaces the computed days entirely. Never an error in the middle of a call.

File format (CSV, UTF-8, header optional): ``date,kind,name`` where kind is
``holiday`` or ``workday``::

    2027-01-01,holiday,元旦
    2027-02-07,workday,春节调休

or the same as TOML (a ``.toml`` file)::

    [holidays]
    2027-01-01 = "元旦"
    [workdays]
    2027-02-07 = "春节调休"

A year of the file counts as covered (``coverage_end``, the 30-day warning)
only when it looks complete: it names the Spring Festival (春节) and National
Day (国庆节) holidays, the two every State Council notice has; a file of only
元旦 does not cover its year. A year whose notice really lacks them can be
marked complete explicitly: a CSV line ``2027,complete`` or, in TOML,
``[coverage]`` ``complete = [2027]``.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

from ivr.errors import IvrError
from ivr.provisional import provisional_holidays

WARN_DAYS = 30
YEAR_SOURCES = {"official": "官方数据", "imported": "已导入官方安排", "provisional": "暂定（推算）"}
"""What ``HolidayCalendar.year_source`` means, as the admin pages say it."""
HOLIDAY_FILE = "holidays.csv"
COMPLETE_KINDS = ("complete", "完整", "全年")

# The holidays a year's data must name to count as complete: (zh, en, names that match).
REQUIRED_HOLIDAYS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("春节", "Spring Festival", ("春节", "spring festival", "chinese new year", "lunar new year")),
    ("国庆节", "National Day", ("国庆", "national day")),
)
"""Where ``callcenter holidays import`` keeps the operator's days, under the data directory."""


class HolidayFileError(IvrError):
    error_id = "holiday_file_invalid"


@dataclass(frozen=True, slots=True)
class DayKind:
    workday: bool
    holiday: bool
    name: str = ""
    source: str = "weekday"  # chinesecalendar | file | provisional | weekday


def _package_end_year() -> int:
    return max(chinese_calendar.holidays).year


PACKAGE_END_YEAR = _package_end_year()


def _computed(year: int) -> dict[date, str]:
    try:
        return provisional_holidays(year)
    except Exception:  # a calendar library failure must not fail a call
        return {}


Parsed = tuple[dict[date, tuple[str, str]], set[int]]  # days, years marked complete


@dataclass
class HolidayCalendar:
    overrides: dict[date, tuple[str, str]] = field(default_factory=dict)  # date → (kind, name)
    complete_years: set[int] = field(default_factory=set)  # marked complete in a file

    def load_file(self, path: Path) -> int:
        """Add the days in ``path``; returns how many. A bad line names its number."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise HolidayFileError(f"{path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise HolidayFileError(f"{path}: not UTF-8 text") from None
        return self.load_text(text, name=str(path), toml=path.suffix.lower() == ".toml")

    def load_text(self, text: str, *, name: str, toml: bool = False) -> int:
        """Add the days of a holiday file's ``text`` (CSV, or TOML); ``name`` is what
        an error calls it ("<name>: line 3: bad date ...")."""
        where = Path(name)
        loaded, complete = self._parse_toml(where, text) if toml else self._parse_csv(where, text)
        self.overrides.update(loaded)
        self.complete_years |= complete
        return len(loaded)

    def merge(self, other: HolidayCalendar) -> None:
        """Add ``other``'s days and completeness marks (its days win)."""
        self.overrides.update(other.overrides)
        self.complete_years |= other.complete_years

    def to_csv(self) -> str:
        """The days and marks in the file format ``load_file`` reads back."""
        lines = ["date,kind,name\n"]
        lines += [f"{d.isoformat()},{kind},{name}\n" for d, (kind, name) in sorted(self.overrides.items())]
        lines += [f"{year},complete,\n" for year in sorted(self.complete_years)]
        return "".join(lines)

    @staticmethod
    def _parse_toml(path: Path, text: str) -> Parsed:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HolidayFileError(f"{path}: not valid TOML: {exc}") from None
        loaded: dict[date, tuple[str, str]] = {}
        complete: set[int] = set()
        for section in data:
            if section not in ("holidays", "workdays", "coverage"):
                raise HolidayFileError(
                    f"{path}: [{section}]: expected [holidays], [workdays] or [coverage]")
        coverage = data.get("coverage", {})
        years = coverage.get("complete", []) if isinstance(coverage, dict) else None
        if not isinstance(years, list) or not all(
                isinstance(y, int) and not isinstance(y, bool) for y in years):
            raise HolidayFileError(f"{path}: [coverage] complete: expected a list of years, "
                                   "e.g. complete = [2027]")
        complete.update(years)
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
        return loaded, complete

    @staticmethod
    def _parse_csv(path: Path, text: str) -> Parsed:
        loaded: dict[date, tuple[str, str]] = {}
        complete: set[int] = set()
        for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not "".join(row).strip() or row[0].strip().lower() in ("date", "日期"):
                continue
            if len(row) > 1 and row[1].strip().lower() in COMPLETE_KINDS:
                year = row[0].strip()[:4]
                if not year.isdigit() or row[0].strip()[4:5] not in ("", "-"):
                    raise HolidayFileError(
                        f"{path}: line {line_no}: complete needs a year, e.g. 2027,complete")
                complete.add(int(year))
                continue
            try:
                day = date.fromisoformat(row[0].strip())
            except ValueError:
                raise HolidayFileError(f"{path}: line {line_no}: bad date {row[0]!r}") from None
            kind = row[1].strip().lower() if len(row) > 1 else ""
            if kind in ("假日", "休", "放假"):
                kind = "holiday"
            if kind in ("班", "上班", "工作日", "调休"):
                kind = "workday"
            if kind not in ("holiday", "workday"):
                raise HolidayFileError(
                    f"{path}: line {line_no}: kind must be holiday or workday, not {kind!r}")
            loaded[day] = (kind, row[2].strip() if len(row) > 2 else "")
        return loaded, complete

    def reload_from(self, path: Path) -> int:
        """Swap in the days of ``path`` (none when it does not exist); returns how
        many. A bad file raises and leaves the days in force untouched."""
        fresh = HolidayCalendar()
        if path.exists():
            fresh.load_file(path)
        self.overrides, self.complete_years = fresh.overrides, fresh.complete_years
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
            if self.year_complete(d.year):
                # The year is loaded: a day not listed follows the weekday rule.
                return DayKind(workday=d.weekday() < 5, holiday=False, source="file")
            if d.year > PACKAGE_END_YEAR:
                # No official data yet: the computed statutory days, 调休 unknown.
                name = _computed(d.year).get(d, "")
                return DayKind(workday=not name and d.weekday() < 5, holiday=bool(name),
                               name=name, source="provisional")
            return DayKind(workday=d.weekday() < 5, holiday=False, source="weekday")
        # chinesecalendar marks weekends as holidays without a name; only named days count.
        return DayKind(workday=workday, holiday=bool(on_holiday and name), name=name or "",
                       source="chinesecalendar")

    def missing(self, year: int) -> list[tuple[str, str]]:
        """The required holidays (zh, en) that the file's ``year`` does not name."""
        names = [name.lower() for d, (kind, name) in self.overrides.items()
                 if d.year == year and kind == "holiday"]
        return [(zh, en) for zh, en, aliases in REQUIRED_HOLIDAYS
                if not any(alias in name for name in names for alias in aliases)]

    def year_complete(self, year: int) -> bool:
        """Whether the file's days of ``year`` look like the whole year's notice."""
        return year in self.complete_years or not self.missing(year)

    @staticmethod
    def package_end() -> date:
        return date(PACKAGE_END_YEAR, 12, 31)

    def year_source(self, year: int) -> str:
        """Where ``year``'s holidays come from: ``official`` (chinesecalendar),
        ``imported`` (a complete file) or ``provisional`` (computed, 调休 unknown)."""
        if year <= PACKAGE_END_YEAR:
            return "official"
        return "imported" if self.year_complete(year) else "provisional"

    def provisional_years(self, today: date) -> list[int]:
        """This year and next, and any year with partial file data, that run on
        computed holidays."""
        years = {today.year, today.year + 1, *self.incomplete_years()}
        return sorted(y for y in years if self.year_source(y) == "provisional")

    def provisional_days(self, year: int) -> dict[date, str]:
        """The computed holidays in force for ``year`` (a file's days win)."""
        if self.year_source(year) != "provisional":
            return {}
        return {d: name for d, name in _computed(year).items() if d not in self.overrides}

    def provisional_notes(self, today: date) -> list[str]:
        """One message per provisional year: what runs, and what to import."""
        out = []
        for year in self.provisional_years(today):
            days = self.provisional_days(year)
            names = "、".join(dict.fromkeys(days.values()))
            out.append(f"{year} 年尚无官方节假日安排，暂按推算的法定假日（{names}，共 {len(days)} 天）"
                       f"播放节假日菜单，调休上班日未知；导入国务院的 {year} 年安排后以其为准 / "
                       f"{year} is provisional: no official holiday data, {len(days)} computed "
                       f"statutory holidays run the holiday menu and swapped workdays are unknown "
                       f"until {year}'s notice is imported")
        return out

    def incomplete_years(self) -> list[int]:
        """Years after the package's that the file has days of but does not cover."""
        end = self.package_end().year
        return sorted({d.year for d in self.overrides
                       if d.year > end and not self.year_complete(d.year)})

    def data_warnings(self) -> list[str]:
        """One message per year whose data looks incomplete, naming what is missing."""
        out = []
        for year in self.incomplete_years():
            gone = self.missing(year)
            zh = "、".join(z for z, _ in gone)
            en = ", ".join(e for _, e in gone)
            out.append(f"{year} 年的节假日数据不完整（缺少{zh}），该年不算已覆盖、"
                       f"未列出的日子按推算的暂定节假日和普通周末规则；"
                       f"导入完整的 {year} 年安排，或确认完整后在文件中加一行 {year},complete / "
                       f"{year}'s holiday data looks incomplete (no {en}), so the year does not "
                       f"count as covered and days not listed follow the provisional holidays "
                       f"and the weekday rule; import the whole {year} notice, or add the line "
                       f"{year},complete if it is complete")
        return out

    def coverage_end(self) -> date:
        """The last date whose holidays are known: the package's years, then each
        following year whose file data looks complete."""
        end = self.package_end()
        while self.year_complete(end.year + 1):
            end = date(end.year + 1, 12, 31)
        return end

    def coverage(self) -> date:
        """The last covered date (the package's years, then whole years from files)."""
        return self.coverage_end()

    def warnings(self, today: date) -> list[str]:
        """What an operator must do about the holiday data: from 30 days before it
        ends, and for every year the file has only part of."""
        w = self.warning(today)
        return ([w] if w else []) + self.data_warnings()

    def warning(self, today: date) -> str | None:
        end = self.coverage_end()
        if today > end:
            return (f"节假日数据已于 {end} 到期，正按推算的暂定节假日路由（调休未知）；"
                    f"请导入 {today.year} 年的节假日 / holiday data ended {end}, running on "
                    f"provisional holidays: import {today.year}'s holidays")
        if end - today <= timedelta(days=WARN_DAYS):
            return (f"节假日数据将于 {end} 到期，之后暂按推算的节假日路由；请导入 {end.year + 1} 年的节假日 / "
                    f"holiday data ends {end}, then provisional: import {end.year + 1}'s holidays")
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
