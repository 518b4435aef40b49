"""HTTP API of calls: the live view and the call log.

``GET /api/calls/live`` → ``{"calls": [...]}`` from the trackers of every AMI
link; ``GET /api/calls?from=&to=&number=&limit=`` → the log, newest first, each
call with the ``attempts`` the on-call router made to reach someone.
A bad parameter is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import AMI_LINKS, BUS, CALL_LOG, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import require_role
from callcenter.calls.services import CallLogService
from callcenter.directory.phones import try_normalize
from callcenter.errors import InvalidInput
from callcenter.oncall.services import attempts_by_call
from callcenter.web.errors import json_response

LIVE_ROLES = ("agent", "night_duty", "supervisor")
LOG_ROLES = ("agent", "supervisor")
MAX_LIMIT = 1000


def parse_when(value: str, field: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """``2026-11-22`` (a local day; as ``to`` it includes that whole day) or an
    ISO datetime (local time when it has no offset)."""
    value = value.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(0), tzinfo=tz)
            return start + timedelta(days=1) if end else start
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: not a date or ISO datetime: {value!r}", field=field,
                           details={"value": value}) from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


@require_role(*LIVE_ROLES)
async def live_calls(request: web.Request) -> web.Response:
    links = request.app[AMI_LINKS]
    return json_response({"calls": [c.to_json() for c in links.live_calls()]})


@require_role(*LOG_ROLES)
async def call_log(request: web.Request) -> web.Response:
    q = request.query
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    start = parse_when(q["from"], "from", tz) if q.get("from") else None
    end = parse_when(q["to"], "to", tz, end=True) if q.get("to") else None
    if start and end and end <= start:
        raise InvalidInput("to: must be after from", field="to")
    number = None
    if q.get("number"):
        number = try_normalize(q["number"])
        if number is None:
            raise InvalidInput(f"number: not a phone number: {q['number']!r}", field="number",
                               details={"value": q["number"]})
    try:
        limit = int(q.get("limit", "200"))
    except ValueError:
        raise InvalidInput("limit: not an integer", field="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be 1..{MAX_LIMIT}", field="limit")
    rows = await request.app[CALL_LOG].search(start=start, end=end, number=number, limit=limit)
    # Each call carries the on-call router's rings of it (who, number, outcome).
    async with request.app[SESSIONMAKER]() as session:
        attempts = await attempts_by_call(session, [r.linkedid for r in rows])
    return json_response({"calls": [{**r.to_json(), "attempts": attempts.get(r.linkedid, [])}
                                    for r in rows], "count": len(rows)})


CALL_LOG_BATCH_S = 0.05  # events this close together are written in one transaction


async def _call_log_service(app: web.Application) -> AsyncIterator[None]:
    service = CallLogService(app[SESSIONMAKER], batch_delay_s=CALL_LOG_BATCH_S)
    app[CALL_LOG] = service
    unsubscribe = service.subscribe(app[BUS])
    yield
    unsubscribe()
    await service.close()


def setup_calls(app: web.Application) -> None:
    """Routes and the call-log writer. Add after the database cleanup context
    (it needs ``SESSIONMAKER``) and after ``setup_ami`` (live view). Once per
    app: two writers of the same events race each other for every row."""
    if _call_log_service in app.cleanup_ctx:
        raise RuntimeError("setup_calls: the call log is already set up on this app")
    app.cleanup_ctx.append(_call_log_service)
    app.router.add_get("/api/calls/live", live_calls)
    app.router.add_get("/api/calls", call_log)
