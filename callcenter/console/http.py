"""The console's pages and its small JSON API.

Pages: ``/login``, ``/logout``, ``/`` (to the role's home), ``/agent``,
``/search``, ``/history``, ``/supervisor``, ``/admin/audit`` (+ ``.csv``).
API (session cookie + ``X-CSRF-Token``, or a bearer token):
``POST /api/console/status``, ``GET /api/console/search``,
``POST /api/console/call``, ``POST /api/console/unknown-caller``,
``GET /api/console/wall``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from callcenter.ami.errors import AmiActionError
from callcenter.appkeys import CALLBACKS, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity, require_role
from callcenter.auth.passwords import HashingBusy
from callcenter.auth.redirects import safe_next
from callcenter.auth.scope import in_scope, scope_codes
from callcenter.auth.sessions import SESSION_COOKIE, csrf_ok, session_key
from callcenter.auth.throttle import TooManyAttempts, client_address
from callcenter.console.audit import AuditQuery, audit_csv, read_audit, record_access
from callcenter.console.config import CONSOLE_CONFIG
from callcenter.console.history import recent_history
from callcenter.console.keys import (
    AGENT_HUB,
    AGENT_STATUS,
    LOGIN_THROTTLE,
    ORIGINATE,
    SESSION_STORE,
    SESSION_WATCH,
)
from callcenter.console.ports import AGENT_STATES, NOT_READY, PAUSE_REASONS, StaffRef
from callcenter.console.services import lives_in, person_phone, record_unknown_caller
from callcenter.console.staff import staff_ref
from callcenter.directory.masking import present_people, show_number
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import search_people
from callcenter.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from callcenter.screenpop.builder import local_time, outcome_label
from callcenter.web.api import ApiRoutes, Code, Id, Input, OneOf, Output, Text
from callcenter.web.errors import json_response
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.categories import CATEGORIES
from ticketing.sla_timers import red_tickets

LOGIN_CSRF_COOKIE = "cc_login_csrf"
AGENT_ROLES = ("agent", "night_duty", "supervisor")

HOME_BY_ROLE = {"agent": "/agent", "night_duty": "/duty", "engineer": "/tickets?mine=1",
                "supervisor": "/supervisor", "admin": "/admin/ivr"}
"""Where each role lands: night duty on who is on call and the open emergencies, an
engineer on the tickets assigned to them (接单/到场/完工, on a phone), an admin on
the settings pages; not on queue controls they cannot use."""
STATE_LABELS = {"not_ready": "未就绪", "ready": "就绪", "paused": "小休", "wrap_up": "话后处理",
                "offline": "离线"}


def _remote(request: web.Request) -> str:
    """The client's address (``X-Forwarded-For`` only from ``[http] trusted_proxies``)."""
    return client_address(request, request.app[SETTINGS].http.trusted_proxies)


# ---------------------------------------------------------------------------- sign-in


async def login_page(request: web.Request, *, error: str = "", status: int = 200,
                     username: str = "") -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp = render(request, "login.html", {
        "login_csrf": token, "error": error, "username": username,
        "next": safe_next(request.query.get("next")) or "",
    }, status=status)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                    secure=request.app[SETTINGS].http.cookie_secure)
    return resp


async def login_get(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    if ident is not None and request.query.get("switch") != "1":
        raise web.HTTPFound(HOME_BY_ROLE.get(ident.role, "/agent"))
    return await login_page(request)


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    signed_in = current_identity(request)
    # A signed-in browser's POST was already checked against its session's token.
    if (signed_in is None or signed_in.via != "session") and not csrf_ok(
            request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf_token", ""))):
        return await login_page(request, error="页面已过期，请重新登录。", status=403,
                                username=username)
    store = request.app[SESSION_STORE]
    address = _remote(request)
    try:
        with request.app[LOGIN_THROTTLE].attempt(username, address) as attempt:
            user = (await store.authenticate(username, password)
                    if username and password else None)
            if user is None:
                attempt.failed()
            else:
                attempt.succeeded()
    except (TooManyAttempts, HashingBusy) as exc:
        # Both say when to come back; a busy server counts no failure against anyone.
        refused = await login_page(request, error=exc.message.split(" / ")[0],
                                   status=exc.http_status, username=username)
        refused.headers["Retry-After"] = str(exc.retry_after_s)
        return refused
    if user is None:
        return await login_page(request, error="用户名或密码错误。", status=401, username=username)
    new = await store.create(user, remote=address,
                             user_agent=request.headers.get("User-Agent", ""))
    watch = request.app.get(SESSION_WATCH)
    if watch is not None:
        for key in new.ended:  # over the per-user cap: the oldest's sockets close now
            await watch.session_ended(user.id, key)
    target = safe_next(str(form.get("next", ""))) or HOME_BY_ROLE.get(user.role, "/agent")
    resp = web.HTTPFound(target)
    settings = request.app[SETTINGS]
    resp.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="Lax", path="/",
                    max_age=settings.http.session_max_age_s, secure=settings.http.cookie_secure)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    raise resp


async def logout_post(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        await request.app[SESSION_STORE].end(token)
        ident = current_identity(request)
        watch = request.app.get(SESSION_WATCH)
        if ident is not None and ident.user_id is not None and watch is not None:
            # Its WebSockets close now; the user's last session also leaves the queue.
            await watch.session_ended(ident.user_id, session_key(token))
    resp = web.HTTPFound("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


@page()
async def home(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    raise web.HTTPFound(HOME_BY_ROLE.get(ident.role, "/agent"))


# ---------------------------------------------------------------------------- agent


@page("agent", "night_duty", "engineer", "supervisor")
async def agent_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    if ident.user_id is None:  # a service token (a CRM's): no person, no desk
        return render(request, "error.html", {
            "title": "需要个人账号", "message": "坐席页面需要以个人账号登录（此令牌不属于任何员工）。"},
            status=400)
    hub = request.app[AGENT_HUB]
    st = hub.agent_states.get(ident.user_id)
    me = await staff_ref(request, ident)
    history = await _history(request, me)
    return render(request, "agent.html", {
        "me": me, "state": st.state if st else NOT_READY, "reason": st.reason if st else "",
        "states": AGENT_STATES, "state_labels": STATE_LABELS, "reasons": PAUSE_REASONS,
        "history": _history_rows(history[:10], ident, request),
        "tickets_api": request.app[CONSOLE_CONFIG].tickets_api,
        "incidents_api": request.app[CONSOLE_CONFIG].incidents_api,
        "tickets_page": request.app[CONSOLE_CONFIG].tickets_page,
        "categories": [(c.key, c.label) for c in CATEGORIES.values()],
    })


def _history_rows(items: list[dict[str, Any]], ident: Identity, request: web.Request
                  ) -> list[dict[str, Any]]:
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    full = ident.has_role("supervisor")
    return [{
        "call_id": h["call_id"],
        "at": local_time(h["at"], tz, "%m-%d %H:%M") if isinstance(h["at"], datetime)
        else str(h["at"]),
        "caller": show_number(try_normalize(h["caller"]) or "", full) or h["caller"] or "未显示号码",
        "title": h["title"],
        "outcome": (("呼出（已接通）" if h["outcome"] in ("answered", "ivr_only") else "呼出（未接通）")
                    if h.get("direction") == "out" else outcome_label(h["outcome"])),
        "agent": h["agent"], "wait_s": h["wait_s"],
        "ivr": " › ".join(h["ivr_path"]),
    } for h in items]


@page("agent", "night_duty", "engineer", "supervisor")
async def history_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    everyone = ident.has_role("supervisor") and request.query.get("all") == "1"
    me = None if everyone else await staff_ref(request, ident)
    rows = _history_rows(await _history(request, me), ident, request)
    return render(request, "history.html", {"rows": rows, "all": everyone})


async def _history(request: web.Request, me: StaffRef | None) -> list[dict[str, Any]]:
    """The call log when it has rows for this view, else the hub's memory of calls
    since the server started (the call log is written by ``setup_calls``)."""
    scope = await scope_codes(request)
    async with request.app[SESSIONMAKER]() as session:
        rows = await recent_history(session, me, scope=scope,
                                    default_community=request.app[SETTINGS].default_community)
    if rows or scope is not None:  # the hub's memory is not split by community
        return rows
    return request.app[AGENT_HUB].history_for(me.user_id if me else None)


class StatusIn(Input):
    state: Annotated[str, OneOf(AGENT_STATES)]
    reason: Text = Field("", max_length=200, description="小休原因（前 40 字）/ pause reason")


class StatusOut(Output):
    state: str
    reason: str
    label: str


class SearchQuery(Input):
    q: Text = Field(min_length=1, max_length=50, description="姓名、电话或房号 / name, phone or room",
                    examples=["张", "13812345678", "3-1-1201"])


class RoomOut(Output):
    room_id: int
    label: str
    role: str
    arrears: str
    in_arrears: bool


class PersonOut(Output):
    person_id: int
    name: str
    role: str
    tags: list[str]
    rooms: list[RoomOut]


class SearchOut(Output):
    results: list[PersonOut]


class CallIn(Input):
    person_id: Id | None = None
    phone: int = Field(0, ge=0, le=100, strict=True, description="号码序号 / which of the numbers")
    call_id: Text | None = Field(None, max_length=64, description="回拨这通来电 / call back")


class CallOut(Output):
    ok: bool
    attempt: str
    message: str


class UnknownCallerIn(Input):
    call_id: Text = Field("", max_length=64)
    number: Text = Field("", max_length=32)
    community: Code | None = None
    name: Text = Field("", max_length=100)
    room: Text = Field("", max_length=64, examples=["3-1-1201"])
    role: Literal["owner", "tenant", "family"] = "owner"
    note: Text = Field("", max_length=500)


class CreatedPersonOut(Output):
    person_id: int


class WallCallOut(Output):
    call_id: str
    caller: str
    title: str
    queue: str | None
    state: str
    state_label: str
    wait_s: float


class WallAgentOut(Output):
    user_id: int
    name: str
    extension: str | None
    online: bool
    on_call: bool
    state: str
    reason: str


class WallRedTicketOut(Output):
    ticket_id: int
    number: str
    summary: str
    location: str
    breaches: list[str] = Field(description="超时说明，如「2小时未接单」")
    since: str = Field(description="最早超时的本地时间 / local time of the first breach")
    url: str


class WallSlaOut(Output):
    red: int = Field(description="超时未处理完的工单数 / open tickets with a standing breach")
    tickets: list[WallRedTicketOut]


class WallOut(Output):
    waiting: list[WallCallOut]
    talking: list[WallCallOut]
    agents: list[WallAgentOut]
    today: dict[str, Any]
    sla: WallSlaOut


routes = ApiRoutes("console")


@routes.post("/api/console/status", body=StatusIn, form=True, response=StatusOut,
             roles=AGENT_ROLES, errors=(409, 503), summary="坐席状态 / set the agent's state")
async def status_api(request: web.Request, body: StatusIn) -> web.StreamResponse:
    """Pauses or unpauses the agent in the front-desk queue. The page's no-JS form posts
    the same fields and is sent back to ``/agent``."""
    ident = current_identity(request)
    assert ident is not None
    state = body.state
    reason = body.reason.strip()[:40]
    if state == "paused" and not reason:
        reason = PAUSE_REASONS[0]
    if state != "paused":
        reason = "话后处理" if state == "wrap_up" else ""
    me = await staff_ref(request, ident)
    port = request.app.get(AGENT_STATUS)
    if port is not None:
        try:
            await port.set_status(me, state, reason)
        except NotFound:  # no Asterisk link serves the agent
            raise Unavailable("电话系统未连接，无法切换状态 / telephony is not connected") from None
        except AmiActionError as exc:  # e.g. pausing before 就绪: not in the queue
            raise Conflict(f"电话系统拒绝切换状态：{exc.response_message} / "
                           "the PBX refused the change", details={"state": state}) from None
    st = request.app[AGENT_HUB].set_agent_state(me.user_id, state, reason)
    if request.content_type != "application/json":
        raise web.HTTPFound("/agent")
    return json_response({"state": st.state, "reason": st.reason,
                          "label": STATE_LABELS.get(st.state, st.state)})


async def _search(request: web.Request, query: str) -> list[dict[str, Any]]:
    ident = current_identity(request)
    assert ident is not None
    if len(query) > 50:
        raise InvalidInput("搜索词太长 / query too long", field="q")
    scope = await scope_codes(request)
    async with request.app[SESSIONMAKER]() as session:
        people = await search_people(session, query, limit=20, scope=scope)
        await record_access(session, ident, [p.person_id for p in people], reason="search",
                            source=_remote(request), detail=f"q={query}")
    rows = []
    for p in people:
        data = p.to_json()
        data["rooms"] = [{"room_id": u.room_id, "label": u.label, "role": u.role,
                          "arrears": f"{u.arrears:.2f}", "in_arrears": u.arrears > 0}
                         for u in p.units]
        del data["units"]
        rows.append(data)
    return present_people(rows, ident.role)


@page("agent", "night_duty", "engineer", "supervisor")
async def search_page(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    results = await _search(request, query) if query else []
    return render(request, "search.html", {"q": query, "results": results})


@routes.get("/api/console/search", query=SearchQuery, response=SearchOut,
            roles=(*AGENT_ROLES, "engineer"), summary="查找业主 / search people")
async def search_api(request: web.Request, query: SearchQuery) -> dict[str, Any]:
    """By name (contains), phone (any form, or its last digits) or room; numbers are
    masked for the caller's role; every search is audited."""
    q = query.q.strip()
    if not q:
        raise InvalidInput("请输入姓名、电话或房号 / q is required", field="q")
    return {"results": await _search(request, q)}


@routes.post("/api/console/call", body=CallIn, response=CallOut, roles=AGENT_ROLES,
             errors=(404, 503), summary="点击外呼 / click-to-call")
async def call_api(request: web.Request, body: CallIn) -> web.StreamResponse:
    """Click-to-call: ``{"person_id", "phone": index}`` or ``{"call_id"}`` (call back).
    Rings the agent's extension first, then the number; 503 when telephony is down."""
    ident = current_identity(request)
    assert ident is not None
    me = await staff_ref(request, ident)
    if not me.extension:
        raise InvalidInput("您没有分机号，无法外呼 / you have no extension", field="extension")
    community: str | None = None
    scope, default = await scope_codes(request), request.app[SETTINGS].default_community
    async with request.app[SESSIONMAKER]() as session:
        if body.call_id:
            found = request.app[AGENT_HUB].caller_of_call(body.call_id)
            if found is not None and not in_scope(scope, found[1], default):
                found = None  # another community's call: as if there were none
            if found is None or not try_normalize(found[0]):
                raise NotFound("找不到这通来电的号码 / no number for this call",
                               details={"call_id": body.call_id})
            number, community = try_normalize(found[0]) or "", found[1]
            person_ids: list[int] = []
        elif body.person_id is not None:
            if scope is not None and not await lives_in(session, body.person_id, scope):
                raise NotFound("没有这个人 / no such person", details={"field": "person_id"})
            number = await person_phone(session, body.person_id, body.phone)
            person_ids = [body.person_id]
        else:
            raise InvalidInput("需要 person_id 或 call_id / person_id or call_id required",
                               field="person_id")
        await record_access(session, ident, person_ids, reason="view",
                            source=_remote(request), detail="click-to-call")
    port = request.app.get(ORIGINATE)
    if port is None:
        raise Unavailable("电话系统未连接，无法外呼 / telephony is not connected")
    # Calling back someone on the 未接来电 list: the answer clears their entry.
    pending = await _callbacks_dialling(request, number, scope, me)
    try:
        attempt = await port.click_to_call(me, number, community=community)
    except NotFound:  # no Asterisk link serves the community
        await _callbacks_failed(request, pending, "NotFound")
        raise Unavailable("电话系统未连接，无法外呼 / telephony is not connected") from None
    except Exception as exc:
        await _callbacks_failed(request, pending, type(exc).__name__)
        raise
    return json_response({"ok": True, "attempt": attempt,
                          "message": f"正在呼叫您的分机 {me.extension}，接起后将接通对方"})


async def _callbacks_dialling(request: web.Request, number: str, scope: frozenset[str] | None,
                              me: StaffRef) -> list[int]:
    """The open callback entries of ``number`` the agent now calls (their ids)."""
    service = request.app.get(CALLBACKS)
    if service is None:
        return []
    async with request.app[SESSIONMAKER]() as session, session.begin():
        entries = await service.open_for_number(session, number, scope)
        await service.dialling(session, entries, user_id=me.user_id, by=me.display_name)
        return [e.id for e in entries]


async def _callbacks_failed(request: web.Request, ids: list[int], reason: str) -> None:
    service = request.app.get(CALLBACKS)
    if service is not None and ids:
        await service.dial_failed(ids, reason)


@routes.post("/api/console/unknown-caller", body=UnknownCallerIn, response=CreatedPersonOut,
             status=201, roles=AGENT_ROLES, errors=(404,), summary="登记陌生来电 / add an unknown caller")
async def unknown_caller_api(request: web.Request, body: UnknownCallerIn) -> dict[str, Any]:
    """The person behind a number the directory did not know (the pop's quick form);
    ``call_id`` alone takes the number from that call. The pop is rebuilt."""
    ident = current_identity(request)
    assert ident is not None
    hub = request.app[AGENT_HUB]
    call_id, number, community = body.call_id, body.number, body.community
    if call_id and not number:
        found = hub.caller_of_call(call_id)
        if found is None:
            raise NotFound("找不到这通来电 / no such call", details={"call_id": call_id})
        number, community = found[0], community or found[1]
    if not number:
        raise InvalidInput("需要来电号码 / number is required", field="number")
    scope = await scope_codes(request)
    if scope is not None:
        community = community or (next(iter(scope)) if len(scope) == 1 else None)
        if not in_scope(scope, community, request.app[SETTINGS].default_community):
            raise Forbidden("不能为其他小区登记 / not your community",
                            details={"field": "community"})
    async with request.app[SESSIONMAKER]() as session:
        person_id = await record_unknown_caller(
            session, name=body.name, number=number, room=body.room, role=body.role,
            note=body.note, community_code=community)
        await record_access(session, ident, [person_id], reason="create",
                            source=_remote(request), detail=f"call {call_id}")
    if call_id:
        await hub.refresh_pop(call_id)
    return {"person_id": person_id}


# ---------------------------------------------------------------------------- supervisor


WALL_RED_TICKETS = 20


async def sla_wall(request: web.Request) -> dict[str, Any]:
    """The red tickets of the signed-in person's communities (``ticketing.sla_timers``)."""
    ident = current_identity(request)
    scope = ident.communities if ident is not None else frozenset()
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[SESSIONMAKER]() as session:
        count, rows = await red_tickets(session, scope, limit=WALL_RED_TICKETS)
    return {"red": count, "tickets": [{
        "ticket_id": r.ticket_id, "number": r.number, "summary": r.summary,
        "location": r.location, "breaches": [b.text for b in r.breaches],
        "since": min(b.fired_at for b in r.breaches).astimezone(tz).strftime("%m-%d %H:%M")
        if r.breaches else "", "url": f"/tickets/{r.ticket_id}"} for r in rows]}


@page("supervisor")
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    wall = await request.app[AGENT_HUB].wall(await scope_codes(request))
    wall = {**wall, "sla": await sla_wall(request)}
    return render(request, "supervisor.html", {"wall": wall, "state_labels": STATE_LABELS})


@routes.get("/api/console/wall", response=WallOut, roles=("supervisor",),
            summary="主管墙 / the supervisor's wall")
async def wall_api(request: web.Request) -> dict[str, Any]:
    """Calls waiting and talking, every agent's state, today's figures, the red tickets
    (SLA breaches still standing)."""
    wall = await request.app[AGENT_HUB].wall(await scope_codes(request))
    return {**wall, "sla": await sla_wall(request)}


def _audit_query(request: web.Request) -> AuditQuery:
    q = request.query
    tz = ZoneInfo(request.app[SETTINGS].timezone)

    def day(name: str) -> datetime | None:
        value = q.get(name, "").strip()
        if not value:
            return None
        try:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=tz)
        except ValueError:
            raise InvalidInput(f"日期格式应为 YYYY-MM-DD / {name} must be YYYY-MM-DD",
                               field=name) from None

    person = q.get("person_id", "").strip()
    if person and not person.isdigit():
        raise InvalidInput("person_id 应为数字 / person_id must be a number", field="person_id")
    until = day("until")
    reason = q.get("reason", "").strip()
    ident = current_identity(request)
    return AuditQuery(username=q.get("username", "").strip(),
                      person_id=int(person) if person else None,
                      reason=reason, since=day("since"),
                      until=until + timedelta(days=1) if until else None,
                      limit=200 if "csv" not in request.path else 100000,
                      scope=ident.communities if ident is not None else frozenset())


@page("admin")
async def audit_page(request: web.Request) -> web.StreamResponse:
    query = _audit_query(request)
    async with request.app[SESSIONMAKER]() as session:
        rows = await read_audit(session, query)
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    return render(request, "audit.html", {
        "rows": [{"at": r.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), "username": r.username,
                  "person_id": r.person_id, "reason": r.reason, "source": r.source,
                  "detail": r.detail} for r in rows],
        "q": dict(request.query), "csv_query": request.query_string,
    })


@require_role("admin")
async def audit_csv_view(request: web.Request) -> web.StreamResponse:
    async with request.app[SESSIONMAKER]() as session:
        rows = await read_audit(session, _audit_query(request))
    resp = web.Response(text=audit_csv(rows), content_type="text/csv", charset="utf-8")
    resp.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return resp


# ---------------------------------------------------------------------------- wiring

def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", home)
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout_post)
    r.add_get("/agent", agent_page)
    r.add_get("/history", history_page)
    r.add_get("/search", search_page)
    r.add_get("/supervisor", supervisor_page)
    r.add_get("/admin/audit", audit_page)
    r.add_get("/admin/audit.csv", audit_csv_view)
    routes.add_to(app)
