"""HTTP API of calls: the live view and the call log.

``GET /api/calls/live`` → ``{"calls": [...]}`` from the trackers of every AMI
link; ``GET /api/calls?from=&to=&number=&limit=`` → the log, newest first, each
call with the ``attempts`` the on-call router made to reach someone.
A bad parameter is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import AMI_LINKS, BUS, CALL_LOG, SESSIONMAKER, SETTINGS
from callcenter.auth.scope import in_scope, scope_codes
from callcenter.calls.services import CallLogService
from callcenter.calls.standby import on_takeover, owner_writes
from callcenter.directory.phones import try_normalize
from callcenter.errors import InvalidInput
from callcenter.oncall.services import attempts_by_call
from callcenter.web.api import ApiRoutes, Input, Output, Text, Timestamp, When

LIVE_ROLES = ("agent", "night_duty", "supervisor")
LOG_ROLES = ("agent", "supervisor")
MAX_LIMIT = 1000


class CallLogQuery(Input):
    from_: When | None = Field(None, alias="from", description="本地日期或时间 / local day or time")
    to: When | None = Field(None, description="含当天 / up to this day (inclusive) or time")
    number: Text | None = Field(None, max_length=40, description="来电号码 / caller number")
    limit: int = Field(200, ge=1, le=MAX_LIMIT)


class LiveCallOut(Output):
    linkedid: str
    uniqueid: str
    asterisk: str
    community: str | None
    caller_number: str | None
    caller_name: str | None
    state: str
    queue: str | None
    ringing: list[str]
    answered_by: str | None
    started_at: Timestamp
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    ivr_path: list[str]
    wait_s: float | None
    talk_s: float | None
    outcome: str | None


class LiveCallsOut(Output):
    calls: list[LiveCallOut]


class LoggedCallOut(Output):
    id: int
    linkedid: str
    asterisk: str
    community: str | None
    caller_number: str | None
    caller_name: str | None
    person_id: int | None
    did: str | None
    ivr_path: list[str]
    rung: list[dict[str, Any]]
    answered_by: str | None
    started_at: Timestamp
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    wait_s: float | None
    talk_s: float | None
    outcome: str | None
    attempts: list[dict[str, Any]] = Field(description="值班呼叫 / the on-call router's rings")


class CallLogOut(Output):
    calls: list[LoggedCallOut]
    count: int


def parse_when(value: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """``2026-11-22`` (a local day; as ``to`` it includes that whole day) or an
    ISO datetime (local time when it has no offset); validated by ``When``."""
    value = value.strip()
    if len(value) == 10:
        start = datetime.combine(date.fromisoformat(value), time(0), tzinfo=tz)
        return start + timedelta(days=1) if end else start
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=tz)


routes = ApiRoutes("calls")



@routes.get("/api/calls/live", response=LiveCallsOut, roles=LIVE_ROLES,
            summary="正在进行的通话 / calls in progress")
async def live_calls(request: web.Request) -> dict[str, Any]:
    """From the trackers of every AMI link."""
    links = request.app[AMI_LINKS]
    scope, default = await scope_codes(request), request.app[SETTINGS].default_community
    return {"calls": [c.to_json() for c in links.live_calls()
                      if in_scope(scope, c.community, default)]}


@routes.get("/api/calls", query=CallLogQuery, response=CallLogOut, roles=LOG_ROLES,
            summary="通话记录 / the call log")
async def call_log(request: web.Request, query: CallLogQuery) -> dict[str, Any]:
    """Newest first; each call with the on-call router's attempts to reach someone."""
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    start = parse_when(query.from_, tz) if query.from_ else None
    end = parse_when(query.to, tz, end=True) if query.to else None
    if start and end and end <= start:
        raise InvalidInput("to: must be after from", field="to")
    number = None
    if query.number:
        number = try_normalize(query.number)
        if number is None:
            raise InvalidInput(f"number: not a phone number: {query.number!r}", field="number")
    rows = await request.app[CALL_LOG].search(start=start, end=end, number=number,
                                              scope=await scope_codes(request),
                                              default_community=request.app[SETTINGS].default_community,
                                              limit=query.limit)
    # Each call carries the on-call router's rings of it (who, number, outcome).
    async with request.app[SESSIONMAKER]() as session:
        attempts = await attempts_by_call(session, [r.linkedid for r in rows])
    return {"calls": [{**r.to_json(), "attempts": attempts.get(r.linkedid, [])} for r in rows],
            "count": len(rows)}


CALL_LOG_SETUP: web.AppKey[bool] = web.AppKey("call_log_setup")
CALL_LOG_BATCH_S = 0.05  # events this close together are written in one transaction


def _call_log_service(links: AmiLinks | None
                      ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        service = CallLogService(app[SESSIONMAKER], batch_delay_s=CALL_LOG_BATCH_S,
                                 writes=owner_writes(links) if links is not None else None)
        app[CALL_LOG] = service
        unsubscribe = service.subscribe(app[BUS])
        if links is not None:
            on_takeover(links, service.take_over)
        yield
        unsubscribe()
        await service.close()
    return ctx


def setup_calls(app: web.Application, links: AmiLinks | None = None) -> None:
    """Routes and the call-log writer. Add after the database cleanup context
    (it needs ``SESSIONMAKER``) and after ``setup_ami`` (live view). Once per
    app: two writers of the same events race each other for every row. With
    ``links`` only the calls of the links this server owns are written."""
    if CALL_LOG_SETUP in app:
        raise RuntimeError("setup_calls: the call log is already set up on this app")
    app[CALL_LOG_SETUP] = True
    app.cleanup_ctx.append(_call_log_service(links))
    routes.add_to(app)

