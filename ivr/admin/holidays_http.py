"""``/admin/holidays``: the year's public holidays and 调休 days as the hotline runs
them, and the site's own changes (admins only).

    GET  /admin/holidays?year=2027        the year: every holiday and swapped working
                                           day, where it comes from, what is provisional
    POST /admin/holidays/action            op = add | remove | complete | import
    GET  /api/admin/holidays?year=2027    the same year as JSON

A change is written to the holiday file under the data directory and the running
calendar reloads it at once (``HolidayStore``); a bad file or day is a 400 naming
what is wrong, and nothing is written. The change is announced on the bus
(``holidays.changed``): another server re-reads its own file (the same file when
the data directory is shared, docs/HA.md). After a change the page redirects (a refresh
does not post again).
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import Field

from callcenter.appkeys import BUS, CLOCK, SETTINGS
from callcenter.bus import DomainEvent, EventBus
from callcenter.errors import InvalidInput
from callcenter.web.api import ApiRoutes, Input, Output
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import day_label
from ivr.admin.holiday_store import MAX_IMPORT_BYTES, HolidayStore
from ivr.admin.menus_http import IVR_HOLIDAYS
from ivr.holidays import (
    PACKAGE_END_YEAR,
    YEAR_SOURCES,
    HolidayCalendar,
    HolidayFile,
    HolidayFileError,
)

HOLIDAY_STORE = web.AppKey("holiday_store", HolidayStore)
HOLIDAYS_CHANGED = "holidays.changed"

FIRST_YEAR = 2004  # chinesecalendar's first
YEARS_AHEAD = 5
SOURCE_ZH = {"chinesecalendar": "官方数据", "file": "本站导入或添加",
             "provisional": "暂定（推算）", "weekday": "普通周末"}
DONE_ZH = {"added": "已保存这一天", "removed": "已删除这一天，恢复为官方或推算的安排",
           "complete": "已确认该年数据完整", "imported": "已导入节假日文件"}


def _today(request: web.Request) -> date:
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return request.app[CLOCK].now().astimezone(tz).date()


def _year_of(request: web.Request, raw: str | None) -> int:
    today = _today(request)
    if raw in (None, ""):
        return today.year
    if not raw.isdigit() or not FIRST_YEAR <= int(raw) <= today.year + YEARS_AHEAD:
        raise InvalidInput(f"年份应在 {FIRST_YEAR}–{today.year + YEARS_AHEAD} 之间",
                           field="year")
    return int(raw)


def year_days(cal: HolidayCalendar, year: int) -> list[dict[str, Any]]:
    """The days of ``year`` that are not what the weekday rule says, or that the
    site's file names: each with its kind and where it comes from."""
    out = []
    day = date(year, 1, 1)
    while day.year == year:
        kind = cal.day(day)
        weekend = day.weekday() >= 5
        in_file = day in cal.overrides
        if kind.holiday or (kind.workday and weekend) or in_file:
            out.append({
                "date": day.isoformat(),
                "label": day_label(day),
                "kind": "holiday" if kind.holiday else "workday" if kind.workday else "rest",
                "kind_label": "放假" if kind.holiday else "调休上班" if kind.workday else "休息",
                "name": kind.name,
                "source": kind.source,
                "source_label": SOURCE_ZH[kind.source],
                "in_file": in_file,
            })
        day += timedelta(days=1)
    return out


def year_view(cal: HolidayCalendar, year: int, today: date) -> dict[str, Any]:
    source = cal.year_source(year)
    notes = [n.split(" / ")[0] for n in cal.provisional_notes(today) if n.startswith(f"{year} ")]
    warnings = [w.split(" / ")[0] for w in cal.data_warnings() if w.startswith(f"{year} ")]
    soon = cal.warning(today)
    return {"year": year, "source": source, "source_label": YEAR_SOURCES[source],
            "days": year_days(cal, year), "coverage_end": cal.coverage_end().isoformat(),
            "notes": notes + warnings + ([soon.split(" / ")[0]] if soon else []),
            "can_complete": year > PACKAGE_END_YEAR and source == "provisional"
            and any(d.year == year for d in cal.overrides)}


# ------------------------------------------------------------------------- JSON

class HolidayDayOut(Output):
    date: str
    kind: Literal["holiday", "workday", "rest"]
    name: str
    source: Literal["chinesecalendar", "file", "provisional", "weekday"]
    in_file: bool


class HolidayYearOut(Output):
    year: int
    source: Literal["official", "imported", "provisional"]
    coverage_end: str
    days: list[HolidayDayOut]
    notes: list[str]


class YearQuery(Input):
    year: Annotated[int | None, Field(None, ge=FIRST_YEAR, le=2100,
                                      description="公历年份，默认今年 / the year, default this one")]


routes = ApiRoutes("ivr")


@routes.get("/api/admin/holidays", roles=("admin",), query=YearQuery, response=HolidayYearOut,
            errors=(400,), summary="某年的节假日与调休 / a year's holidays and swapped workdays")
async def year_api(request: web.Request, query: YearQuery) -> dict[str, Any]:
    """Every day of the year that the hotline runs off the weekday rule, with its source
    (``chinesecalendar`` the package's official data, ``file`` the site's holiday file,
    ``provisional`` computed while no official data exists: 调休 unknown)."""
    year = _year_of(request, None if query.year is None else str(query.year))  # ≤ +5 years
    view = year_view(request.app[IVR_HOLIDAYS], year, _today(request))
    keys = ("date", "kind", "name", "source", "in_file")
    return {**{k: view[k] for k in ("year", "source", "coverage_end", "notes")},
            "days": [{k: d[k] for k in keys} for d in view["days"]]}


# ------------------------------------------------------------------------- page

@page("admin")
async def holidays_page(request: web.Request) -> web.StreamResponse:
    try:
        year = _year_of(request, request.query.get("year"))
    except InvalidInput as exc:
        return await _render(request, _today(request).year, error=exc.message, status=400)
    done = DONE_ZH.get(request.query.get("done", ""), "")
    return await _render(request, year, notice=done)


async def _render(request: web.Request, year: int, *, notice: str = "", error: str = "",
                  status: int = 200) -> web.Response:
    today = _today(request)
    view = year_view(request.app[IVR_HOLIDAYS], year, today)
    first, last = FIRST_YEAR, today.year + YEARS_AHEAD
    return render(request, "admin_holidays.html", {
        "v": view, "notice": notice, "error": error,
        "prev_year": year - 1 if year > first else None,
        "next_year": year + 1 if year < last else None,
        "years": list(range(max(first, today.year - 2), last + 1)),
        "max_kb": MAX_IMPORT_BYTES // 1024,
    }, status=status)


@page("admin")
async def holidays_action(request: web.Request) -> web.StreamResponse:
    store = request.app[HOLIDAY_STORE]
    try:
        form = await request.post()
    except ValueError:
        return await _render(request, _today(request).year, error="表单无效", status=400)
    raw_year = form.get("year")
    try:
        year = _year_of(request, raw_year if isinstance(raw_year, str) else None)
    except InvalidInput as exc:
        return await _render(request, _today(request).year, error=exc.message, status=400)
    op = form.get("op")
    try:
        if op == "import":
            upload = form.get("file")
            if not isinstance(upload, FileField) or not upload.filename:
                raise HolidayFileError("请选择要导入的文件（CSV 或 TOML）")
            data = upload.file.read(MAX_IMPORT_BYTES + 1)
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise HolidayFileError("文件不是 UTF-8 文本") from None
            suffix = ".toml" if upload.filename.lower().endswith(".toml") else ".csv"
            store.import_text(text, name=upload.filename, suffix=suffix)
        elif op in ("add", "remove"):
            day = _form_date(request, form.get("date"))
            if op == "add":
                kind = form.get("kind")
                store.set_day(day, kind if isinstance(kind, str) else "",
                              str(form.get("name") or ""))
            elif not store.remove_day(day):
                raise HolidayFileError(f"{day.month}月{day.day}日不是本站添加的日子，无法删除")
            year = day.year
        elif op == "complete":
            store.mark_complete(year)
        else:
            raise HolidayFileError("未知的操作")
    except HolidayFileError as exc:
        return await _render(request, year, error=f"未保存：{exc}", status=400)
    done = {"import": "imported", "add": "added", "remove": "removed"}.get(str(op), "complete")
    bus = request.app.get(BUS)
    if bus is not None:
        bus.publish(DomainEvent(HOLIDAYS_CHANGED, {"year": year, "change": done},
                                at=request.app[CLOCK].now()))
    raise web.HTTPSeeOther(f"/admin/holidays?year={year}&done={done}")


def _form_date(request: web.Request, raw: object) -> date:
    try:
        day = date.fromisoformat(str(raw or "").strip())
    except ValueError:
        raise HolidayFileError("日期无效，请按 2027-10-01 的格式填写") from None
    last = _today(request).year + YEARS_AHEAD
    if not FIRST_YEAR <= day.year <= last:
        raise HolidayFileError(f"日期应在 {FIRST_YEAR}–{last} 年之间")
    return day


def follow_other_servers(bus: EventBus, running: HolidayFile) -> None:
    """Re-read the holiday file when another server changed its holidays."""
    async def changed(event: DomainEvent) -> None:
        if event.origin:
            with contextlib.suppress(HolidayFileError):  # kept as the file's error
                running.reload()

    bus.subscribe(HOLIDAYS_CHANGED, changed, remote=True)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/holidays", holidays_page)
    app.router.add_post("/admin/holidays/action", holidays_action)
    routes.add_to(app)
