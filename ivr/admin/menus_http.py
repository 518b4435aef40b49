"""``/admin/ivr`` (page) and ``POST /api/admin/ivr/reload`` (JSON): admins only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import CLOCK, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.errors import InvalidInput
from callcenter.web.api import ApiRoutes, Output, Timestamp
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import day_label
from ivr.admin.reloader import MenuReloader
from ivr.errors import MenuError
from ivr.holidays import YEAR_SOURCES, HolidayCalendar

IVR_RELOADER = web.AppKey("ivr_reloader", MenuReloader)
IVR_HOLIDAYS = web.AppKey("ivr_holidays", HolidayCalendar)


def _who(request: web.Request) -> str:
    ident = current_identity(request)
    return ident.username if ident else "?"


class MenuOut(Output):
    name: str
    label: str
    options: int


class MenuStatusOut(Output):
    version: int
    source: str
    loaded_at: Timestamp
    loaded_by: str
    menus: list[MenuOut]
    entry: dict[str, Any]
    holidays_error: str | None
    last_reload: dict[str, Any] | None


routes = ApiRoutes("ivr")


@routes.post("/api/admin/ivr/reload", roles=("admin",), response=MenuStatusOut, errors=(400,),
             summary="重新加载 IVR 菜单 / reload the IVR menus")
async def reload_api(request: web.Request) -> dict[str, Any]:
    """Reads the menu files again; a file with an error is a 400 and the running menus
    stay as they were."""
    reloader = request.app[IVR_RELOADER]
    try:
        reloader.reload(_who(request))
    except MenuError as exc:
        raise InvalidInput(f"菜单未重新加载，仍使用原菜单 / menus not reloaded: {exc}",
                           field="menus", details={"error": str(exc)}) from None
    return reloader.status()


@page("admin")
async def ivr_page(request: web.Request) -> web.StreamResponse:
    return await _render_page(request)


@page("admin")
async def reload_form(request: web.Request) -> web.StreamResponse:
    reloader = request.app[IVR_RELOADER]
    try:
        menus = reloader.reload(_who(request))
    except MenuError as exc:
        return await _render_page(request, error=str(exc), status=400)
    return await _render_page(request, notice=f"菜单已重新加载：第 {menus.version} 版")


async def _render_page(request: web.Request, *, notice: str = "", error: str = "",
                       status: int = 200) -> web.Response:
    status_json = request.app[IVR_RELOADER].status()
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    today = request.app[CLOCK].now().astimezone(tz).date()
    holidays = request.app.get(IVR_HOLIDAYS)
    warnings = [w for w in (
        # the page shows the Chinese half of each warning: the file's error goes in it
        f"节假日文件未重新加载，仍使用原数据（{status_json['holidays_error']}）"
        if status_json.get("holidays_error") else "",
        (holidays.warning(today) or "") if holidays else "",
        *(holidays.data_warnings() if holidays else ())) if w]
    last = status_json.get("last_reload") or {}
    return render(request, "admin_ivr.html", {
        "s": status_json, "notice": notice, "error": error,
        # The site's wall clock, as every page writes times (the JSON keeps ISO).
        "loaded_at": _local(status_json["loaded_at"], tz),
        "last_reload_at": _local(last.get("at"), tz),
        "holidays_until": holidays.coverage_end().isoformat() if holidays else "",
        "holidays_warning": "；".join(warnings),
        "holiday_years": _holiday_years(holidays, today) if holidays else [],
    }, status=status)




def _holiday_years(holidays: HolidayCalendar, today: date) -> list[dict[str, Any]]:
    """This year and next for the page: where the days come from, and the
    provisional days a year runs on until its notice is imported."""
    return [{"year": year, "source": holidays.year_source(year),
             "label": YEAR_SOURCES[holidays.year_source(year)],
             "days": [{"date": day_label(d), "name": name}
                      for d, name in holidays.provisional_days(year).items()]}
            for year in (today.year, today.year + 1)]


def _local(iso: str | None, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if iso else ""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/ivr", ivr_page)
    app.router.add_post("/admin/ivr/reload", reload_form)
    routes.add_to(app)
