"""Office hours, nights, weekends, holidays and 调休, and holiday data that runs out."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.holidays import HolidayCalendar, HolidayFileError
from ivr.timeconditions import Hours, Mode, TimeModes

SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(("when", "mode"), [
    (datetime(2026, 11, 23, 9, 0, tzinfo=SH), Mode.OFFICE),      # Monday morning
    (datetime(2026, 11, 23, 18, 0, tzinfo=SH), Mode.NIGHT),      # closing time
    (datetime(2026, 11, 24, 2, 10, tzinfo=SH), Mode.NIGHT),
    (datetime(2026, 11, 22, 10, 0, tzinfo=SH), Mode.WEEKEND),    # Sunday
    (datetime(2026, 10, 1, 10, 0, tzinfo=SH), Mode.HOLIDAY),     # National Day
    (datetime(2026, 2, 17, 10, 0, tzinfo=SH), Mode.HOLIDAY),     # Spring Festival
    (datetime(2026, 10, 10, 10, 0, tzinfo=SH), Mode.OFFICE),     # 调休: a working Saturday
    (datetime(2026, 10, 10, 20, 0, tzinfo=SH), Mode.NIGHT),
])
def test_modes(when: datetime, mode: Mode) -> None:
    assert TimeModes().mode(when) == mode


def test_evaluated_in_the_communitys_time_zone() -> None:
    # 01:30 UTC on Monday is 09:30 in Shanghai: office hours there.
    assert TimeModes().mode(datetime(2026, 11, 23, 1, 30, tzinfo=UTC)) == Mode.OFFICE


def test_a_closure_and_special_hours_win() -> None:
    modes = TimeModes(exceptions={date(2026, 11, 23): None,
                                  date(2026, 11, 24): Hours(time(10, 0), time(12, 0))})
    assert modes.mode(datetime(2026, 11, 23, 10, 0, tzinfo=SH)) == Mode.HOLIDAY
    assert modes.mode(datetime(2026, 11, 24, 9, 0, tzinfo=SH)) == Mode.NIGHT
    assert modes.mode(datetime(2026, 11, 24, 11, 0, tzinfo=SH)) == Mode.OFFICE


def test_a_year_the_package_does_not_know_is_provisional_and_warns() -> None:
    cal = HolidayCalendar()
    day = cal.day(date(2027, 2, 10))  # not covered by chinesecalendar 1.11; 初五, not statutory
    assert day.source == "provisional" and day.workday and not day.holiday
    assert TimeModes(cal).mode(datetime(2027, 2, 10, 10, 0, tzinfo=SH)) == Mode.OFFICE
    assert cal.coverage_end() == date(2026, 12, 31)
    assert cal.warning(date(2026, 12, 10)) is not None
    assert cal.warning(date(2026, 11, 1)) is None
    assert "2027" in (cal.warning(date(2027, 1, 3)) or "")


def test_an_imported_file_covers_the_next_year(tmp_path: Path) -> None:
    path = tmp_path / "holidays-2027.csv"
    path.write_text("date,kind,name\n2027-02-10,holiday,春节\n2027-02-20,workday,春节调休\n"
                    "2027-10-01,holiday,国庆节\n", encoding="utf-8")
    cal = HolidayCalendar()
    assert cal.load_file(path) == 3
    modes = TimeModes(cal)
    assert modes.mode(datetime(2027, 2, 10, 10, 0, tzinfo=SH)) == Mode.HOLIDAY
    assert modes.mode(datetime(2027, 2, 20, 10, 0, tzinfo=SH)) == Mode.OFFICE  # a Saturday
    assert cal.day(date(2027, 3, 1)).source == "file"
    assert cal.coverage_end() == date(2027, 12, 31)
    assert cal.data_warnings() == []


def test_a_partial_year_does_not_count_as_covered(tmp_path: Path) -> None:
    path = tmp_path / "yuandan-2027.csv"
    path.write_text("2027-01-01,holiday,元旦\n2027-02-10,workday,春节调休\n", encoding="utf-8")
    cal = HolidayCalendar()
    cal.load_file(path)
    assert cal.day(date(2027, 1, 1)).holiday  # the days it has still count
    assert cal.day(date(2027, 3, 1)).source == "provisional"  # the rest is computed
    assert cal.coverage_end() == date(2026, 12, 31)
    assert cal.warning(date(2026, 12, 10)) is not None  # the 30-day warning stays
    assert cal.missing(2027) == [("春节", "Spring Festival"), ("国庆节", "National Day")]
    [message] = cal.data_warnings()
    assert "2027 年的节假日数据不完整（缺少春节、国庆节）" in message
    assert "no Spring Festival, National Day" in message and "2027,complete" in message
    assert message in cal.warnings(date(2026, 12, 10))


@pytest.mark.parametrize(("name", "text"), [
    ("marked.csv", "2027-01-01,holiday,元旦\n2027,complete\n"),
    ("marked.toml", '[holidays]\n2027-01-01 = "元旦"\n[coverage]\ncomplete = [2027]\n'),
    ("english.csv", "2027-02-06,holiday,Spring Festival\n2027-10-01,holiday,National Day\n"),
])
def test_a_year_marked_complete_or_naming_both_festivals_is_covered(
        tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    cal = HolidayCalendar()
    cal.load_file(path)
    assert cal.coverage_end() == date(2027, 12, 31) and cal.data_warnings() == []
    # The marks survive the file the import writes.
    again = tmp_path / "again.csv"
    again.write_text(cal.to_csv(), encoding="utf-8")
    copy = HolidayCalendar()
    copy.load_file(again)
    assert copy.overrides == cal.overrides and copy.coverage_end() == date(2027, 12, 31)


@pytest.mark.parametrize(("text", "message"), [
    ("2027-13-01,holiday,x\n", "line 1: bad date"),
    ("2027-01-01,party,x\n", "line 1: kind must be holiday or workday"),
    ("2027-01-01,holiday,元旦\n20x7,complete\n", "line 2: complete needs a year"),
])
def test_a_bad_holiday_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "h.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayFileError, match=message):
        HolidayCalendar().load_file(path)


def test_cli_import_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli.main import main

    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    partial = tmp_path / "2027-yuandan.csv"
    partial.write_text("2027-01-01,holiday,元旦\n", encoding="utf-8")
    assert main(["holidays", "import", str(partial)]) == 0
    out = capsys.readouterr()
    assert "until 2026-12-31" in out.out  # one holiday does not make a year
    assert "缺少春节、国庆节" in out.err and "no Spring Festival, National Day" in out.err
    bad = tmp_path / "bad.csv"
    bad.write_text("2027-01-02,party,x\n", encoding="utf-8")
    assert main(["holidays", "import", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err
    assert main(["holidays", "status"]) == 0
    out = capsys.readouterr()
    assert "until 2026-12-31" in out.out and "缺少春节、国庆节" in out.err

    rest = tmp_path / "2027-rest.csv"
    rest.write_text("2027-02-06,holiday,春节\n2027-10-01,holiday,国庆节\n", encoding="utf-8")
    assert main(["holidays", "import", str(rest)]) == 0
    out = capsys.readouterr()
    assert "until 2027-12-31" in out.out and "warning" not in out.err
    saved = (tmp_path / "data" / "holidays.csv").read_text(encoding="utf-8")
    assert "2027-01-01,holiday,元旦" in saved and "2027-10-01,holiday,国庆节" in saved
    assert "party" not in saved
    assert main(["holidays", "status"]) == 0
    assert "until 2027-12-31" in capsys.readouterr().out


HOURS = """
[default]
office = { sat = "09:00-12:00" }

[communities.lakeside]
office = { mon = "08:00-17:30" }
closed = ["2026-11-25"]
special = { "2026-11-26" = "10:00-12:00" }

[communities.hilltop]
timezone = "Asia/Urumqi"
"""


def test_office_hours_per_community_from_a_file(tmp_path: Path) -> None:
    from ivr.timeconditions import load_time_conditions

    path = tmp_path / "hours.toml"
    path.write_text(HOURS, encoding="utf-8")
    tc = load_time_conditions(path, HolidayCalendar())
    monday_1745 = datetime(2026, 11, 23, 17, 45, tzinfo=SH)
    assert tc.mode_for("lakeside", monday_1745) == Mode.NIGHT     # closes at 17:30 there
    assert tc.mode_for("other", monday_1745) == Mode.OFFICE       # the default: 18:00
    assert tc.mode_for(None, monday_1745) == Mode.OFFICE
    assert tc.mode_for("lakeside", datetime(2026, 11, 25, 10, 0, tzinfo=SH)) == Mode.HOLIDAY
    assert tc.mode_for("lakeside", datetime(2026, 11, 26, 9, 0, tzinfo=SH)) == Mode.NIGHT
    assert tc.mode_for("lakeside", datetime(2026, 11, 26, 11, 0, tzinfo=SH)) == Mode.OFFICE
    # A 调休 Saturday uses the default's Saturday hours, inherited by every community.
    assert tc.mode_for("lakeside", datetime(2026, 10, 10, 11, 0, tzinfo=SH)) == Mode.OFFICE
    assert tc.mode_for("lakeside", datetime(2026, 10, 10, 13, 0, tzinfo=SH)) == Mode.NIGHT
    # 08:45 in Shanghai is 06:45 in Urumqi's clock: not yet open there.
    assert tc.mode_for("hilltop", datetime(2026, 11, 23, 8, 45, tzinfo=SH)) == Mode.NIGHT


@pytest.mark.parametrize(("text", "message"), [
    ('[default]\noffice = { mon = "18:00-08:00" }\n', r"\[default\]: office.mon: the end 08:00 is not after"),
    ('[default]\noffice = { monday = "08:00-18:00" }\n', r"\[default\]: office.monday: not a weekday"),
    ('[communities.x]\noffice = { tue = "8点" }\n', r"\[communities.x\]: office.tue: expected"),
    ('[communities.x]\nclosed = ["2026-02-30"]\n', r"\[communities.x\]: closed\[0\]: not a date"),
    ('[communities.x]\ntimezone = "Mars/Olympus"\n', r"\[communities.x\]: timezone: unknown time zone"),
    ('[communities.x]\nspecial = { "soon" = "09:00-10:00" }\n', r"special.soon: not a date"),
    ('[weekdays]\n', r"weekdays: unknown section"),
    ('[default\n', r"not valid TOML"),
])
def test_a_bad_hours_file_names_the_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    from ivr.timeconditions import TimeConditionsError, load_time_conditions

    path = tmp_path / "hours.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TimeConditionsError, match=message) as info:
        load_time_conditions(path, HolidayCalendar())
    assert str(path) in str(info.value)


def test_a_holiday_file_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "2027.toml"
    path.write_text('[holidays]\n2027-02-06 = "春节"\n2027-10-01 = "国庆节"\n'
                    '[workdays]\n2027-09-26 = "国庆调休"\n', encoding="utf-8")
    cal = HolidayCalendar()
    assert cal.load_file(path) == 3
    assert cal.day(date(2027, 10, 1)).holiday and cal.day(date(2027, 10, 1)).name == "国庆节"
    assert cal.day(date(2027, 9, 26)).workday  # a Sunday, worked
    assert cal.coverage() == date(2027, 12, 31) and cal.warnings(date(2027, 6, 1)) == []
    assert cal.warnings(date(2027, 12, 15))  # 16 days before the end


@pytest.mark.parametrize(("text", "message"), [
    ('[holidays]\n"2027-02-30" = "x"\n', r"\[holidays\] 2027-02-30: bad date"),
    ('[holidays]\n2027-01-01 = "元旦"\n[workdays]\n2027-01-01 = "x"\n', "both a holiday and a workday"),
    ('[vacations]\n', r"\[vacations\]: expected \[holidays\], \[workdays\] or \[coverage\]"),
    ('[coverage]\ncomplete = "2027"\n', r"\[coverage\] complete: expected a list of years"),
])
def test_a_bad_toml_holiday_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "h.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayFileError, match=message):
        HolidayCalendar().load_file(path)
