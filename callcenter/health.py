"""GET /healthz: is the database reachable, which PBX links are up, how far
the holiday data reaches.

Anyone gets the bare liveness answer, ``{"status": "ok" | "degraded"}`` with
the HTTP status (503 when the database is unreachable). The details (database,
each Asterisk link with its host, port and user, the version, the features'
sections and their errors) are shown only to ``health_access``: the
``[http] health_token`` or a supervisor's or admin's token or session."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import text

from callcenter import __version__
from callcenter.appkeys import ENGINE, HEALTH_EXTRAS, LINK_STATUS, HealthExtra
from callcenter.auth.middleware import health_access
from callcenter.clock import Clock
from callcenter.web.errors import json_response
from ivr.holidays import HolidayCalendar


def holiday_health(calendar: HolidayCalendar, clock: Clock, timezone: str) -> HealthExtra:
    """The ``holidays`` section: the last covered date and, from 30 days before
    it, a warning; where this year's and next year's days come from (``years``:
    ``official``, ``imported`` or ``provisional``) and, for each provisional year,
    what runs until its notice is imported. "Today" is the site's date
    (``settings.timezone``), not UTC's: at 01:00 in Shanghai on 1 December it is
    still 30 November in UTC."""
    tz = ZoneInfo(timezone)

    async def section() -> dict[str, object]:
        today = clock.now().astimezone(tz).date()
        return {"holidays": {"covered_until": calendar.coverage_end().isoformat(),
                             "today": today.isoformat(),
                             "warning": calendar.warning(today),
                             "incomplete": calendar.data_warnings(),
                             "years": {str(y): calendar.year_source(y)
                                       for y in (today.year, today.year + 1)},
                             "provisional": calendar.provisional_notes(today)}}

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
    status = "ok" if db == "ok" and all(v == "connected" for v in links.values()) \
        else "degraded"
    http_status = 503 if db != "ok" else 200
    if not health_access(request):
        return json_response({"status": status}, status=http_status)
    body: dict[str, object] = {
        "status": status,
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
    return json_response(body, status=http_status)
