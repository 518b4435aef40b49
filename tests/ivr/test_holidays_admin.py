"""/admin/holidays: an admin sees a year's holidays and 调休 days with where each comes
from, adds or removes a day, imports a file and marks a year complete; each change is
in the holiday file and in force for the next call at once, a bad one is a 400 that
writes nothing, and a change redirects (a refresh does not post it again)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from callcenter.app import create_app
from callcenter.appkeys import BUS
from callcenter.bus import DomainEvent
from callcenter.clock import ManualClock
from callcenter.settings import FastAgiSettings
from ivr.admin.holidays_http import HOLIDAYS_CHANGED
from ivr.admin.menus_http import IVR_HOLIDAYS
from ivr.holidays import HOLIDAY_FILE, HolidayCalendar
from ivr.timeconditions import TimeModes
from tests.console.helpers import login, make_settings, seed_directory, serving
from tests.ivr.test_holiday_reload import HOLIDAYS_2027

SH = ZoneInfo("Asia/Shanghai")
Client = TestClient[Any, Any]


@pytest.fixture
async def admin(db_url: str, tmp_path: Path, sessionmaker: Any
                ) -> AsyncIterator[tuple[Client, str]]:
    await seed_directory(sessionmaker)
    settings = replace(make_settings(db_url, tmp_path), fastagi=FastAgiSettings(enabled=False))
    app = create_app(settings, clock=ManualClock(datetime(2026, 12, 10, 9, tzinfo=SH)),
                     transcribe=False)
    async with serving(app) as client:
        yield client, await login(client, "root")


def rows(page: str) -> dict[str, tuple[str, str]]:
    """date → (kind, source) of the page's day table."""
    return {m[0]: (m[1], m[2]) for m in re.findall(
        r'<tr data-date="([\d-]+)" data-kind="(\w+)" data-source="(\w+)">', page)}


def calendar(client: Client) -> HolidayCalendar:
    cal: HolidayCalendar = client.app[IVR_HOLIDAYS]
    return cal


async def act(client: Client, csrf: str, **form: str) -> aiohttp.ClientResponse:
    return await client.post("/admin/holidays/action", data={"csrf_token": csrf, **form},
                             allow_redirects=False)


async def test_a_year_without_official_data_shows_its_computed_days_as_provisional(
        admin: tuple[Client, str]) -> None:
    client, _ = admin
    page = await (await client.get("/admin/holidays?year=2027")).text()
    assert 'data-source="provisional">暂定（推算）' in page
    days = rows(page)
    assert days["2027-10-01"] == ("holiday", "provisional")
    assert days["2027-02-06"] == ("holiday", "provisional")  # 春节 2027, from the lunar date
    assert "10月1日（周五）" in page and "国庆节" in page
    assert not any(kind == "workday" for kind, _ in days.values())  # 调休 unknown
    # 2026 is the package's: official, its 调休 Saturdays listed as working days
    official = rows(await (await client.get("/admin/holidays")).text())
    assert official["2026-10-01"] == ("holiday", "chinesecalendar")
    assert ("workday", "chinesecalendar") in official.values()


async def test_an_added_day_is_in_the_file_and_in_force_and_removing_it_restores_the_rule(
        admin: tuple[Client, str], tmp_path: Path) -> None:
    client, csrf = admin
    r = await act(client, csrf, op="add", year="2027", date="2027-02-14", kind="workday",
                  name="春节调休")
    assert r.status == 303 and r.headers["Location"] == "/admin/holidays?year=2027&done=added"
    page = await (await client.get(r.headers["Location"])).text()
    assert "已保存这一天" in page
    assert rows(page)["2027-02-14"] == ("workday", "file")
    assert "2027-02-14,workday,春节调休" in (tmp_path / HOLIDAY_FILE).read_text("utf-8")
    # the next call on that Sunday runs the office menus
    modes = TimeModes(calendar(client), "Asia/Shanghai")
    assert modes.mode_for(None, datetime(2027, 2, 14, 10, tzinfo=SH)) == "office"

    r = await act(client, csrf, op="remove", year="2027", date="2027-02-14")
    assert r.status == 303
    assert "2027-02-14" not in rows(await (await client.get("/admin/holidays?year=2027")).text())
    assert modes.mode_for(None, datetime(2027, 2, 14, 10, tzinfo=SH)) == "weekend"
    # a day the file does not have cannot be removed
    r = await act(client, csrf, op="remove", year="2027", date="2027-10-01")
    assert r.status == 400 and "不是本站添加的日子" in await r.text()
    assert calendar(client).day(date(2027, 10, 1)).holiday


async def test_an_imported_file_replaces_the_provisional_year(
        admin: tuple[Client, str], tmp_path: Path) -> None:
    client, csrf = admin
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("op", "import")
    form.add_field("year", "2027")
    form.add_field("file", HOLIDAYS_2027.encode("utf-8"), filename="2027年节假日.csv",
                   content_type="text/csv")
    r = await client.post("/admin/holidays/action", data=form, allow_redirects=False)
    assert r.status == 303
    page = await (await client.get(r.headers["Location"])).text()
    assert "已导入节假日文件" in page and 'data-source="imported"' in page
    days = rows(page)
    assert days["2027-10-09"] == ("workday", "file")
    assert days["2027-10-01"] == ("holiday", "file")
    assert calendar(client).coverage_end() == date(2027, 12, 31)
    body = await (await client.get("/api/admin/holidays", params={"year": "2027"})).json()
    assert body["source"] == "imported" and body["coverage_end"] == "2027-12-31"
    assert {"date": "2027-10-09", "kind": "workday", "name": "国庆节调休", "source": "file",
            "in_file": True} in body["days"]


async def test_a_bad_file_or_day_is_a_400_naming_it_and_writes_nothing(
        admin: tuple[Client, str], tmp_path: Path) -> None:
    client, csrf = admin
    await act(client, csrf, op="add", year="2027", date="2027-10-08", kind="holiday",
              name="本站加休")
    before = (tmp_path / HOLIDAY_FILE).read_bytes()
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("op", "import")
    form.add_field("file", "2027-01-01,放假,元旦\n2027-02-30,放假,x\n".encode(),
                   filename="bad.csv", content_type="text/csv")
    r = await client.post("/admin/holidays/action", data=form, allow_redirects=False)
    text = await r.text()
    assert r.status == 400 and "未保存" in text and "line 2" in text and "2027-02-30" in text
    assert str(tmp_path) not in text  # no server paths in the message
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("op", "import")
    form.add_field("file", b"\xff\xfe\x00garbage", filename="x.csv")
    r = await client.post("/admin/holidays/action", data=form, allow_redirects=False)
    assert r.status == 400 and "UTF-8" in await r.text()
    for bad in ({"date": "2027-13-01", "kind": "holiday"}, {"date": "", "kind": "holiday"},
                {"date": "2027-10-10", "kind": "vacation"},
                {"date": "2027-10-10", "kind": "holiday", "name": "国庆,加休"},
                {"date": "1999-10-01", "kind": "holiday"}):
        r = await act(client, csrf, op="add", year="2027", **bad)
        assert r.status == 400, bad
        assert "未保存" in await r.text()
    assert (tmp_path / HOLIDAY_FILE).read_bytes() == before
    assert calendar(client).day(date(2027, 10, 8)).name == "本站加休"
    r = await client.get("/admin/holidays?year=1800")
    assert r.status == 400 and "年份应在" in await r.text()
    r = await client.get("/api/admin/holidays", params={"year": "1800"})
    assert r.status == 400 and (await r.json())["details"]["field"] == "year"


async def test_marking_a_partial_year_complete_ends_its_computed_days(
        admin: tuple[Client, str]) -> None:
    client, csrf = admin
    await act(client, csrf, op="add", year="2027", date="2027-01-01", kind="holiday",
              name="元旦")
    page = await (await client.get("/admin/holidays?year=2027")).text()
    assert "数据不完整" in page and 'id="mark-complete"' in page
    r = await act(client, csrf, op="complete", year="2027")
    assert r.status == 303
    page = await (await client.get("/admin/holidays?year=2027")).text()
    assert 'data-source="imported"' in page and 'id="mark-complete"' not in page
    assert set(rows(page)) == {"2027-01-01"}  # no computed days any more
    assert not calendar(client).day(date(2027, 10, 1)).holiday


async def test_a_change_made_on_the_other_server_is_re_read_from_the_file(
        admin: tuple[Client, str], tmp_path: Path) -> None:
    client, csrf = admin
    bus = client.app[BUS]
    heard: list[DomainEvent] = []

    async def hear(event: DomainEvent) -> None:
        heard.append(event)

    bus.subscribe(HOLIDAYS_CHANGED, hear)
    await act(client, csrf, op="add", year="2027", date="2027-10-08", kind="holiday", name="加休")
    await bus.drain()
    assert [e.data for e in heard] == [{"year": 2027, "change": "added"}]  # what B hears
    # server B wrote the shared file, and says so over the bus
    (tmp_path / HOLIDAY_FILE).write_text(HOLIDAYS_2027, encoding="utf-8")
    bus.publish(DomainEvent(HOLIDAYS_CHANGED, {"year": 2027}, origin="server-b"))
    await bus.drain()
    assert calendar(client).day(date(2027, 10, 9)).workday
    assert calendar(client).coverage_end() == date(2027, 12, 31)


def test_the_cli_import_names_the_file_and_line_of_a_bad_day_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callcenter.cli.main import main

    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "2027.csv"
    source.write_text("2027-01-01,放假,元旦\n2027-02-30,放假,春节\n", encoding="utf-8")
    assert main(["holidays", "import", str(source)]) == 2
    err = capsys.readouterr().err
    assert f"未导入 / not imported: {source}: line 2: bad date '2027-02-30'" in err
    assert not (tmp_path / "data" / HOLIDAY_FILE).exists()
