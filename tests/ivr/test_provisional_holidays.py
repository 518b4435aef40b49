"""A year chinesecalendar does not know runs on computed (provisional) holidays
until its official notice is imported, and says so everywhere."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lunar_python import Lunar

from callcenter.clock import ManualClock
from callcenter.health import holiday_health
from ivr.holidays import HOLIDAY_FILE, HolidayCalendar
from ivr.provisional import provisional_holidays
from ivr.timeconditions import Mode, TimeModes
from tests.console.helpers import login, seed_directory
from tests.ivr.scripted import ScriptedChannel
from tests.ivr.test_engine import OWNER, Services, _engine
from tests.ivr.test_holiday_reload import admin_app

SH = ZoneInfo("Asia/Shanghai")

# 2027 as the State Council might publish it. It leaves out 除夕 (5 February, a
# Friday) and 2 May, both provisional days, and works two Saturdays (调休).
OFFICIAL_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-20,workday,春节调休
2027-04-05,holiday,清明节
2027-05-01,holiday,劳动节
2027-06-09,holiday,端午节
2027-09-15,holiday,中秋节
2027-10-01,holiday,国庆节
2027-10-02,holiday,国庆节
2027-10-03,holiday,国庆节
2027-10-04,holiday,国庆节
2027-10-05,holiday,国庆节
2027-10-06,holiday,国庆节
2027-10-07,holiday,国庆节
2027-10-09,workday,国庆调休
"""


def _spring_festival(year: int) -> date:
    """正月初一, from the lunar calendar package (not written down anywhere)."""
    solar = Lunar.fromYmd(year, 1, 1).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=SH)


def test_the_package_puts_2027s_spring_festival_on_6_february() -> None:
    assert _spring_festival(2027) == date(2027, 2, 6)


def test_2027s_computed_days_are_the_statutory_ones() -> None:
    days = provisional_holidays(2027)
    new_year = _spring_festival(2027)
    assert days == {
        date(2027, 1, 1): "元旦",
        **{new_year + timedelta(days=i): "春节" for i in (-1, 0, 1, 2)},  # 除夕 to 初三
        date(2027, 4, 5): "清明节",  # the solar term
        date(2027, 5, 1): "劳动节", date(2027, 5, 2): "劳动节",
        date(2027, 6, 9): "端午节", date(2027, 9, 15): "中秋节",
        date(2027, 10, 1): "国庆节", date(2027, 10, 2): "国庆节", date(2027, 10, 3): "国庆节",
    }
    # 2028: 初一 in January, 清明 on 4 April, 中秋 on 3 October inside 国庆.
    later = provisional_holidays(2028)
    assert later[_spring_festival(2028)] == "春节" and _spring_festival(2028).month == 1
    assert later[date(2028, 4, 4)] == "清明节" and date(2028, 4, 5) not in later
    assert len(later) == 12  # 中秋 and 国庆 share a day


@pytest.mark.parametrize(("when", "menu"), [
    (_at(date(2027, 10, 1)), "main-holiday"),            # 国庆节, a Friday
    (_at(_spring_festival(2027) - timedelta(days=1)), "main-holiday"),  # 除夕, a Friday
    (_at(date(2027, 6, 9)), "main-holiday"),             # 端午节, a Wednesday
    (_at(date(2027, 10, 8)), "main-office"),             # the Friday after: not a holiday
    (_at(date(2027, 10, 9)), "main-weekend"),            # a Saturday: 调休 unknown, a weekend
])
async def test_the_ivr_runs_the_holiday_menu_on_computed_2027_days_without_a_file(
        when: datetime, menu: str) -> None:
    ch = ScriptedChannel(["1"])
    await _engine(Services(caller=OWNER), when).run(ch, call_id="c1")
    assert menu in ch.played()


def test_spring_festival_2027_is_a_provisional_holiday() -> None:
    cal = HolidayCalendar()
    day = cal.day(_spring_festival(2027))
    assert day.holiday and day.name == "春节" and day.source == "provisional"
    assert TimeModes(cal).mode(_at(_spring_festival(2027))) == Mode.HOLIDAY
    ordinary = cal.day(date(2027, 3, 3))  # a Wednesday
    assert ordinary.workday and not ordinary.holiday and ordinary.source == "provisional"
    assert cal.year_source(2026) == "official" and cal.year_source(2027) == "provisional"


def test_the_official_file_replaces_the_provisional_days(tmp_path: Path) -> None:
    cal = HolidayCalendar()
    modes = TimeModes(cal)
    eve = date(2027, 2, 5)  # 除夕: provisional, not in the official file
    assert modes.mode(_at(eve)) == Mode.HOLIDAY
    assert modes.mode(_at(date(2027, 5, 2))) == Mode.HOLIDAY  # a Sunday, provisional 劳动节 too
    assert cal.day(date(2027, 5, 2)).holiday

    path = tmp_path / "2027.csv"
    path.write_text(OFFICIAL_2027, encoding="utf-8")
    cal.load_file(path)
    assert cal.year_source(2027) == "imported" and cal.provisional_days(2027) == {}
    assert modes.mode(_at(eve)) == Mode.OFFICE  # no longer a holiday
    assert not cal.day(date(2027, 5, 2)).holiday
    assert modes.mode(_at(date(2027, 5, 2))) == Mode.WEEKEND  # now an ordinary Sunday
    assert modes.mode(_at(date(2027, 2, 20))) == Mode.OFFICE  # an official 调休 Saturday
    assert modes.mode(_at(date(2027, 10, 6))) == Mode.HOLIDAY  # the file's longer break
    assert modes.mode(_at(date(2027, 10, 8))) == Mode.OFFICE


def test_a_partial_file_keeps_the_computed_days_it_does_not_name(tmp_path: Path) -> None:
    path = tmp_path / "yuandan.csv"
    path.write_text("2027-01-01,holiday,元旦\n2027-02-05,workday,春节调休\n", encoding="utf-8")
    cal = HolidayCalendar()
    cal.load_file(path)
    assert cal.year_source(2027) == "provisional"
    assert cal.day(date(2027, 2, 5)).workday  # the file's day wins
    assert cal.day(date(2027, 10, 1)).holiday  # the rest stays computed
    assert date(2027, 2, 5) not in cal.provisional_days(2027)


async def test_healthz_says_2027_is_provisional_until_imported(tmp_path: Path) -> None:
    cal = HolidayCalendar()
    clock = ManualClock(datetime(2026, 12, 10, 9, tzinfo=SH))
    body: dict[str, Any] = (await holiday_health(cal, clock, "Asia/Shanghai")())["holidays"]
    assert body["years"] == {"2026": "official", "2027": "provisional"}
    (note,) = body["provisional"]
    assert "2027 年尚无官方节假日安排" in note and "共 13 天" in note and "调休上班日未知" in note
    assert "2027 is provisional" in note

    path = tmp_path / "2027.csv"
    path.write_text(OFFICIAL_2027, encoding="utf-8")
    cal.load_file(path)
    body = (await holiday_health(cal, clock, "Asia/Shanghai")())["holidays"]
    assert body["years"] == {"2026": "official", "2027": "imported"} and body["provisional"] == []


def test_holidays_status_says_provisional_until_the_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli.main import main

    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    assert main(["holidays", "status"]) == 0
    out = capsys.readouterr().out
    assert "2027: 暂定 / provisional" in out
    assert "2027-10-01 国庆节（暂定 / provisional）" in out
    assert f"{_spring_festival(2027).isoformat()} 春节（暂定 / provisional）" in out

    source = tmp_path / "2027.csv"
    source.write_text(OFFICIAL_2027, encoding="utf-8")
    assert main(["holidays", "import", str(source)]) == 0
    capsys.readouterr()
    assert main(["holidays", "status"]) == 0
    out = capsys.readouterr().out
    assert "2027: 已导入 / imported" in out and "2027-" not in out.replace("2027-12-31", "")


async def test_the_admin_page_lists_the_provisional_days_until_the_import(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with admin_app(db_url, tmp_path) as client:
        csrf = await login(client, "root")
        page = await (await client.get("/admin/ivr")).text()
        assert "2027 年节假日" in page and "暂定（推算）" in page
        assert "调休上班日未知" in page
        assert "10月1日（周五）" in page and "2月6日（周六）" in page and "中秋节" in page

        (tmp_path / HOLIDAY_FILE).write_text(OFFICIAL_2027, encoding="utf-8")
        r = await client.post("/admin/ivr/reload", data={"csrf_token": csrf})
        page = await r.text()
        assert r.status == 200 and "已导入官方安排" in page
        assert "暂定" not in page and "10月1日（周五）" not in page
