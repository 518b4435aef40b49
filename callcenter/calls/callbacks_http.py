"""HTTP of the callback worklist (未接来电回拨), see ``callcenter.calls.callbacks``.

``GET /api/callbacks?state=&day=&limit=`` → the entries of the user's communities,
numbers masked by the rules (``callcenter.directory.masking``: an agent sees
``138****5678`` and calls back with the button, never needing the number);
``POST /api/callbacks/{id}/call`` → the agent's click-to-call of the number (the
console's ``OriginatePort``); ``POST /api/callbacks/{id}/done`` ``{"outcome", "note"}``
→ closed by hand; ``GET /callbacks`` → the page (its forms post to the same two).
Each ``callback.changed`` (this server's or, over the cluster bus, the other's) sends
open consoles a ``{"type": "callbacks"}`` WebSocket frame: the top bar's count updates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import BUS, CALLBACKS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.auth.scope import scope_codes
from callcenter.auth.throttle import client_address
from callcenter.bus import DomainEvent
from callcenter.calls.callback_models import MARK_OUTCOMES, Callback
from callcenter.calls.callbacks import CHANGED, CallbackService
from callcenter.calls.standby import on_takeover, owner_writes
from callcenter.console.audit import record_access
from callcenter.console.keys import AGENT_HUB, ORIGINATE
from callcenter.console.staff import staff_ref
from callcenter.directory.masking import sees_full_numbers, show_number
from callcenter.directory.models import Community, Person
from callcenter.errors import Conflict, InvalidInput, NotFound, Unavailable
from callcenter.web.api import ApiRoutes, Input, Output, PathId, Text
from callcenter.web.errors import json_response
from callcenter.web.pages import page
from callcenter.web.templating import render

ROLES = ("agent", "night_duty", "supervisor")
MAX_LIMIT = 500

STATE_LABELS = {"open": "待回拨", "done": "已处理"}
ENDED_LABELS = {"ivr": "在语音导航中挂机", "queue": "排队等待中挂机", "oncall": "值班无人接听",
                "ring": "振铃未接", "early": "接通前挂机"}
ROLE_LABELS = {"night_duty": "夜班值班", "engineer": "工程值班", "supervisor": "主管"}
HOW_LABELS = {"callback": "回拨接通", "marked": "手工处理", "called_again": "业主再次来电已接通"}
DIAL_LABELS = {"dialling": "正在呼叫", "answered": "已接通", "no_answer": "未接通",
               "failed": "未能呼出"}


class CallbackQuery(Input):
    state: Literal["open", "done"] | None = Field(None, description="open 待回拨 / done 已处理")
    day: date | None = Field(None, description="本地日期 / local day (YYYY-MM-DD)")
    limit: int = Field(200, ge=1, le=MAX_LIMIT)


class DialIn(Input):
    """Nothing to say: the entry names the number (the page's form sends its CSRF field)."""


class CallbackPath(Input):
    callback_id: PathId


class DoneIn(Input):
    outcome: Literal["reached", "invalid_number", "not_needed"] = Field(
        description="reached 已联系 / invalid_number 空号 / not_needed 无需回拨")
    note: Text = Field("", max_length=500)


class MissedOut(Output):
    at: str = Field(description="本地时间 / local time")
    ended_in: str
    label: str = Field(description="如「排队等待 1:05 后挂机」")
    wait_s: float | None
    ivr_path: list[str]


class DialledOut(Output):
    by: str
    at: str
    result: str
    label: str


class CallbackOut(Output):
    id: int
    community: str | None
    community_name: str
    number: str = Field(description="按角色脱敏 / masked by role")
    caller: str
    person_id: int | None
    day: str
    state: str
    state_label: str
    missed_count: int
    first_missed_at: str
    last_missed_at: str
    missed: list[MissedOut]
    dialled: list[DialledOut]
    done_at: str | None
    done_by: str
    done_how: str | None
    done_label: str
    note: str


class CallbacksOut(Output):
    callbacks: list[CallbackOut]
    count: int
    open_count: int = Field(description="待回拨条数 / open entries in the user's communities")


class DialOut(Output):
    ok: bool
    attempt: str
    message: str


def mmss(seconds: float | None) -> str:
    s = round(seconds or 0)
    return f"{s // 60}:{s % 60:02d}"


def _ended_label(item: dict[str, Any]) -> str:
    where = str(item.get("ended_in") or "")
    if where == "queue":
        return f"排队等待 {mmss(item.get('wait_s'))} 后挂机"
    if where == "oncall":
        role = ROLE_LABELS.get(str(item.get("role") or ""), "值班")
        return f"{role}无人接听"
    return ENDED_LABELS.get(where, "未接通")


def _local(at: datetime | str | None, tz: ZoneInfo, fmt: str = "%m-%d %H:%M") -> str:
    if at is None:
        return ""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return ""
    return at.astimezone(tz).strftime(fmt)


def present(entry: Callback, *, tz: ZoneInfo, full: bool, names: dict[str, str],
            people: dict[int, str]) -> dict[str, Any]:
    done_label = ""
    if entry.state == "done":
        how = HOW_LABELS.get(entry.done_how or "", "已处理")
        done_label = (f"{how}：{MARK_OUTCOMES.get(entry.done_outcome or '', '')}"
                      if entry.done_how == "marked" else how)
    caller = (people.get(entry.person_id or 0) or entry.caller_name or "未登记来电")
    return {
        "id": entry.id,
        "community": entry.community or None,
        "community_name": names.get(entry.community, entry.community and "其他小区" or ""),
        "number": show_number(entry.number, full),
        "caller": caller,
        "person_id": entry.person_id,
        "day": entry.day.isoformat(),
        "state": entry.state,
        "state_label": STATE_LABELS.get(entry.state, entry.state),
        "missed_count": entry.missed_count,
        "first_missed_at": _local(entry.first_missed_at, tz),
        "last_missed_at": _local(entry.last_missed_at, tz),
        "missed": [{"at": _local(m.get("at"), tz, "%H:%M:%S"), "ended_in": m.get("ended_in"),
                    "label": _ended_label(m), "wait_s": m.get("wait_s"),
                    "ivr_path": [str(p) for p in m.get("ivr_path") or []]}
                   for m in entry.missed or []],
        "dialled": [{"by": str(d.get("by") or ""), "at": _local(d.get("at"), tz, "%H:%M"),
                     "result": d.get("result"),
                     "label": DIAL_LABELS.get(str(d.get("result")), "")}
                    for d in entry.dialled or []],
        "done_at": _local(entry.done_at, tz) or None,
        "done_by": entry.done_by or "",
        "done_how": entry.done_how,
        "done_label": done_label,
        "note": entry.note or "",
    }


async def _listing(request: web.Request, query: CallbackQuery) -> dict[str, Any]:
    ident = current_identity(request)
    assert ident is not None
    service = request.app[CALLBACKS]
    scope = await scope_codes(request)
    rows = await service.search(scope=scope, state=query.state, day=query.day,
                                limit=query.limit)
    async with request.app[SESSIONMAKER]() as session:
        names = dict((await session.execute(select(Community.code, Community.name))).all())
        ids = sorted({r.person_id for r in rows if r.person_id})
        people = dict((await session.execute(
            select(Person.id, Person.name).where(Person.id.in_(ids)))).all()) if ids else {}
    default = request.app[SETTINGS].default_community
    if default:
        names.setdefault("", names.get(default, ""))
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    full = sees_full_numbers(ident.role, own_call=False)
    out = [present(r, tz=tz, full=full, names=names, people=people) for r in rows]
    return {"callbacks": out, "count": len(out), "open_count": await service.open_count(scope)}


routes = ApiRoutes("callbacks")


@routes.get("/api/callbacks", query=CallbackQuery, response=CallbacksOut, roles=ROLES,
            summary="未接来电回拨 / the callback worklist")
async def list_callbacks(request: web.Request, query: CallbackQuery) -> dict[str, Any]:
    """Open entries first, then done ones, newest miss first; of the user's communities."""
    return await _listing(request, query)




def _back(request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
    """The page's no-JS forms are sent back to the list."""
    if request.content_type == "application/x-www-form-urlencoded":
        raise web.HTTPFound("/callbacks")
    return json_response(payload)


@routes.post("/api/callbacks/{callback_id}/call", path_model=CallbackPath, response=DialOut,
             body=DialIn, roles=ROLES, form=True, body_required=False, errors=(409, 503),
             summary="回拨 / call the caller back")
async def call_back(request: web.Request, path: CallbackPath, body: DialIn
                    ) -> web.StreamResponse:
    """Rings the agent's extension, then the caller (the console's click-to-call). The
    entry is done once the caller answers; an unanswered attempt is noted on it."""
    ident = current_identity(request)
    assert ident is not None
    me = await staff_ref(request, ident)
    if not me.extension:
        raise InvalidInput("您没有分机号，无法外呼 / you have no extension", field="extension")
    service = request.app[CALLBACKS]
    scope = await scope_codes(request)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        entry = await service.get(session, path.callback_id, scope, lock=True)
        if entry.state != "open":
            raise Conflict("这条回拨已处理 / this callback is already done",
                           details={"callback_id": entry.id})
        number, community = entry.number, entry.community or None
        await service.dialling(session, [entry], user_id=me.user_id, by=me.display_name)
        # Calling a person is an access to their record, as the console's click-to-call.
        await record_access(session, ident, [entry.person_id] if entry.person_id else [],
                            reason="view", detail="callback", commit=False,
                            source=client_address(request,
                                                  request.app[SETTINGS].http.trusted_proxies))
    port = request.app.get(ORIGINATE)
    try:
        if port is None:
            raise Unavailable("电话系统未连接，无法外呼 / telephony is not connected")
        try:
            attempt = await port.click_to_call(me, number, community=community)
        except NotFound:  # no Asterisk link serves the community
            raise Unavailable("电话系统未连接，无法外呼 / telephony is not connected") from None
    except Exception as exc:
        await service.dial_failed([path.callback_id], type(exc).__name__)
        raise
    return _back(request, {"ok": True, "attempt": attempt,
                           "message": f"正在呼叫您的分机 {me.extension}，接起后将接通对方"})


@routes.post("/api/callbacks/{callback_id}/done", path_model=CallbackPath, body=DoneIn, form=True,
             response=CallbackOut, roles=ROLES, errors=(409,),
             summary="标记已处理 / mark a callback done")
async def mark_done(request: web.Request, path: CallbackPath, body: DoneIn
                    ) -> web.StreamResponse:
    """With an outcome (已联系 / 空号 / 无需回拨) and a note; 409 when it is done already."""
    ident = current_identity(request)
    assert ident is not None
    me = await staff_ref(request, ident)
    service = request.app[CALLBACKS]
    entry = await service.mark_done(path.callback_id, outcome=body.outcome, note=body.note,
                                    user_id=me.user_id, by=me.display_name,
                                    scope=await scope_codes(request))
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[SESSIONMAKER]() as session:
        names = dict((await session.execute(select(Community.code, Community.name))).all())
    return _back(request, present(entry, tz=tz, full=sees_full_numbers(ident.role, own_call=False),
                                  names=names, people={}))


@page(*ROLES)
async def callbacks_page(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "open")
    wanted: Literal["open", "done"] | None = (
        "open" if state == "open" else "done" if state == "done" else None)
    query = CallbackQuery(state=wanted, day=None, limit=MAX_LIMIT)
    listing = await _listing(request, query)
    return render(request, "callbacks.html", {**listing, "state": query.state or "all",
                                              "outcomes": MARK_OUTCOMES})


def _service(links: AmiLinks | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        service = CallbackService(
            app[SESSIONMAKER], tz=ZoneInfo(settings.timezone), publish=app[BUS].publish,
            default_community=settings.default_community,
            min_ivr_s=settings.callbacks.min_ivr_s, dial_match_s=settings.callbacks.dial_match_s,
            writes=owner_writes(links) if links is not None else None, now=app[CLOCK].now)
        app[CALLBACKS] = service
        unsubscribe = service.subscribe(app[BUS])
        if links is not None:
            on_takeover(links, service.take_over)

        async def tell_consoles(event: DomainEvent) -> None:
            # This server's change or the other's: open consoles re-read their count.
            hub = app.get(AGENT_HUB)
            if hub is not None:
                hub.notify_community(event.data.get("community"), {
                    "type": "callbacks", "state": event.data.get("state")}, frozenset(ROLES))

        off = app[BUS].subscribe(CHANGED, tell_consoles, remote=True)
        yield
        off()
        unsubscribe()
    return ctx


def setup_callbacks(app: web.Application, links: AmiLinks | None = None) -> None:
    """The worklist's writer and its routes. After the database cleanup context; with
    ``links`` only the calls of the links this server owns are handled (as the call log)."""
    app.cleanup_ctx.append(_service(links))
    routes.add_to(app)
    app.router.add_get("/callbacks", callbacks_page)
