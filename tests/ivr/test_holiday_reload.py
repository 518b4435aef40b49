"""A holiday import takes effect on SIGHUP or the admin page's reload, and
/healthz reports the holiday data as of the site's own date."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_app, create_core_app
from callcenter.appkeys import CLOCK, HEALTH_EXTRAS
from callcenter.cli.main import main as cli_main
from callcenter.clock import ManualClock
from callcenter.console.setup import setup_console
from callcenter.health import holiday_health
from callcenter.screenpop.setup import setup_screenpop
from callcenter.settings import FastAgiSettings
from ivr.admin.menus_http import IVR_HOLIDAYS, IVR_RELOADER, add_routes
from ivr.admin.reloader import MenuReloader
from ivr.holidays import HOLIDAY_FILE, HolidayCalendar, HolidayFile
from ivr.menus import DEFAULT_MENUS, MenuStore
from tests.console.helpers import FAST_HASHER, login, make_settings, seed_directory, serving
from tests.health_access import HEALTH_HEADERS, with_health_token

SH = ZoneInfo("Asia/Shanghai")

# 2027 as the State Council might publish it: every festival, with its 调休 days.
HOLIDAYS_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-02-05,holiday,春节
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-14,workday,春节调休
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
2027-10-09,workday,国庆节调休
"""


async def health(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/healthz", headers=HEALTH_HEADERS)
    body: dict[str, Any] = (await resp.json())["holidays"]
    return body


async def test_sighup_applies_a_holiday_import_and_healthz_shows_it(
        db_url: str, tmp_path: Path) -> None:
    settings = with_health_token(replace(make_settings(db_url, tmp_path),
                                         fastagi=FastAgiSettings(enabled=False)))
    config = tmp_path / "callcenter.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n', encoding="utf-8")
    clock = ManualClock(datetime(2026, 12, 10, 9, tzinfo=SH))
    client = TestClient(TestServer(create_app(settings, clock=clock, transcribe=False)))
    await client.start_server()
    try:
        before = await health(client)
        assert before["covered_until"] == "2026-12-31"
        assert before["years"] == {"2026": "official", "2027": "provisional"}
        assert "2027 年尚无官方节假日安排" in before["provisional"][0]
        assert before["warning"] and "2027" in before["warning"]

        source = tmp_path / "2027.csv"
        source.write_text(HOLIDAYS_2027, encoding="utf-8")
        assert cli_main(["--config", str(config), "holidays", "import", str(source)]) == 0
        assert (await health(client))["covered_until"] == "2026-12-31"  # not yet applied

        os.kill(os.getpid(), signal.SIGHUP)
        after: dict[str, Any] = {}
        for _ in range(200):
            after = await health(client)
            if after["covered_until"] != "2026-12-31":
                break
            await asyncio.sleep(0.01)
        assert after == {"covered_until": "2027-12-31", "today": "2026-12-10", "warning": None,
                         "incomplete": [], "years": {"2026": "official", "2027": "imported"},
                         "provisional": []}
        # The calls see it too: 1 October 2027 is a holiday from the file.
        assert client.app[IVR_HOLIDAYS].day(date(2027, 10, 1)).name == "国庆节"
    finally:
        await client.close()


@asynccontextmanager
async def admin_app(db_url: str, tmp: Path) -> AsyncIterator[TestClient[Any, Any]]:
    menus = tmp / "menus.toml"
    shutil.copyfile(DEFAULT_MENUS, menus)
    app = create_core_app(make_settings(db_url, tmp),
                          clock=ManualClock(datetime(2026, 12, 10, 9, tzinfo=SH)))
    setup_console(app, hasher=FAST_HASHER)
    setup_screenpop(app, wall_debounce_s=0, audit_flush_s=0)
    add_routes(app)
    holidays = HolidayCalendar()
    app[IVR_HOLIDAYS] = holidays
    app[IVR_RELOADER] = MenuReloader(MenuStore(menus), app[CLOCK],
                                     holidays=HolidayFile(holidays, tmp / HOLIDAY_FILE))
    async with serving(app) as client:
        yield client


async def test_the_admin_reload_rereads_holidays_and_a_bad_file_keeps_the_old_days(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with admin_app(db_url, tmp_path) as client:
        csrf = await login(client, "root")
        page = await (await client.get("/admin/ivr")).text()
        assert "覆盖到 2026-12-31" in page and "请导入 2027 年的节假日" in page

        (tmp_path / HOLIDAY_FILE).write_text(HOLIDAYS_2027, encoding="utf-8")
        r = await client.post("/admin/ivr/reload", data={"csrf_token": csrf})
        page = await r.text()
        assert r.status == 200 and "覆盖到 2027-12-31" in page and "请导入" not in page

        (tmp_path / HOLIDAY_FILE).write_text("2027-13-01,holiday,元旦\n", encoding="utf-8")
        r = await client.post("/admin/ivr/reload", data={"csrf_token": csrf})
        page = await r.text()
        assert "节假日文件未重新加载" in page and "line 1" in page
        assert "覆盖到 2027-12-31" in page  # the days in force stay
        assert client.app[IVR_HOLIDAYS].day(date(2027, 10, 1)).name == "国庆节"
        assert client.app[IVR_RELOADER].status()["holidays_error"]


async def _section(clock: ManualClock, cal: HolidayCalendar) -> dict[str, Any]:
    body: dict[str, Any] = (await holiday_health(cal, clock, "Asia/Shanghai")())["holidays"]
    return body


async def test_healthz_warns_from_30_days_before_the_end_on_the_sites_date() -> None:
    cal = HolidayCalendar()
    # 17:00 UTC on 30 November is 01:00 on 1 December in Shanghai: 30 days left.
    clock = ManualClock(datetime(2026, 11, 30, 17, tzinfo=UTC))
    body = await _section(clock, cal)
    assert body["today"] == "2026-12-01" and body["covered_until"] == "2026-12-31"
    assert body["warning"] and "将于 2026-12-31 到期" in body["warning"]
    # 31 days before the end: no warning yet.
    clock.set(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    assert (await _section(clock, cal))["warning"] is None
    # After the end the hotline runs on the weekday rule, and says so.
    clock.set(datetime(2027, 1, 2, 1, tzinfo=SH))
    assert "已于 2026-12-31 到期" in ((await _section(clock, cal))["warning"] or "")


async def test_healthz_carries_the_holiday_section(db_url: str, tmp_path: Path) -> None:
    app = create_core_app(with_health_token(make_settings(db_url, tmp_path)),
                          clock=ManualClock(datetime(2026, 11, 30, 17, tzinfo=UTC)))
    app[HEALTH_EXTRAS].append(holiday_health(HolidayCalendar(), app[CLOCK], "Asia/Shanghai"))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        body = await health(client)
    assert body["covered_until"] == "2026-12-31" and body["today"] == "2026-12-01"
    assert body["warning"] and body["incomplete"] == []


async def test_healthz_names_a_partial_year_and_keeps_warning() -> None:
    cal = HolidayCalendar(overrides={date(2027, 1, 1): ("holiday", "元旦")})
    body = await _section(ManualClock(datetime(2026, 12, 10, 9, tzinfo=SH)), cal)
    assert body["covered_until"] == "2026-12-31" and body["warning"]
    [note] = body["incomplete"]
    assert "缺少春节、国庆节" in note and "2027,complete" in note
