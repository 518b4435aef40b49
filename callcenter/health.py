"""GET /healthz: is the database reachable, which PBX links are up, how far
the holiday data reaches."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import text

from callcenter import __version__
from callcenter.appkeys import ENGINE, HEALTH_EXTRAS, LINK_STATUS, HealthExtra
from callcenter.clock import Clock
from callcenter.web.errors import json_response
from ivr.holidays import HolidayCalendar


def holiday_health(calendar: HolidayCalendar, clock: Clock, timezone: str) -> HealthExtra:
    """The ``holidays`` section: the last covered date and, from 30 days before
    it, a warning. "Today" is the site's date (``settings.timezone``), not UTC's:
    at 01:00 in Shanghai on 1 December it is still 30 November in UTC."""
    tz = ZoneInfo(timezone)

    async def section() -> dict[str, object]:
        today = clock.now().astimezone(tz).date()
        return {"holidays": {"covered_until": calendar.coverage_end().isoformat(),
                             "today": today.isoformat(),
                             "warning": calendar.warning(today),
                             "incomplete": calendar.data_warnings()}}

    return section


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    db = "ok"
    try:
        async with asyncio.timeout(3):
            async with app[ENGINE].connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
        db = "error"
    links = app[LINK_STATUS]() if LINK_STATUS in app else {}
    body: dict[str, object] = {
        "status": "ok",
        "db": db,
        "asterisk": links,
        "version": __version__,
    }
    errors: list[str] = []
    for extra in app.get(HEALTH_EXTRAS, []):
        try:
            body.update(await extra())
        except Exception as exc:  # a broken section must not hide the rest
            errors.append(str(exc))
    if errors:
        body["errors"] = errors
    if db != "ok" or any(v != "connected" for v in links.values()):
        body["status"] = "degraded"
    return json_response(body, status=503 if db != "ok" else 200)
