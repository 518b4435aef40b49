"""The console's pages and its small JSON API.

Pages: ``/login``, ``/logout``, ``/`` (to the role's home), ``/agent``,
``/search``, ``/history``, ``/supervisor``, ``/admin/audit`` (+ ``.csv``).
API (session cookie + ``X-CSRF-Token``, or a bearer token):
``POST /api/console/status``, ``GET /api/console/search``,
``POST /api/console/call``, ``POST /api/console/unknown-caller``,
``GET /api/console/wall``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity, require_role
from callcenter.auth.sessions import SESSION_COOKIE, TooManyAttempts, csrf_ok, session_key
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
from callcenter.console.services import person_phone, record_unknown_caller
from callcenter.directory.masking import present_people, show_number
from callcenter.directory.models import StaffUser
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import search_people
from callcenter.errors import InvalidInput, NotFound, Unavailable
from callcenter.screenpop.builder import local_time, outcome_label
from callcenter.web.errors import json_response, read_json_object
from callcenter.web.templating import render
from ticketing.categories import CATEGORIES

LOGIN_CSRF_COOKIE = "cc_login_csrf"
AGENT_ROLES = ("agent", "night_duty", "supervisor")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOME_BY_ROLE = {"agent": "/agent", "night_duty": "/agent", "engineer": "/agent",
                "supervisor": "/supervisor", "admin": "/supervisor"}
STATE_LABELS = {"not_ready": "未就绪", "ready": "就绪", "paused": "小休", "wrap_up": "话后处理",
                "offline": "离线"}


def page(*roles: str) -> Callable[[Handler], Handler]:
    """Like ``require_role`` for pages: not signed in → the login page; wrong role → 403 page."""

    def deco(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            ident = current_identity(request)
            if ident is None:
                raise web.HTTPFound(f"/login?next={request.path_qs}"
                                    if request.path != "/" else "/login")
            if roles and not ident.has_role(*roles):
                return render(request, "error.html", {
                    "title": "无权访问", "message": "您的角色不能打开这个页面。"}, status=403)
            return await fn(request)

        return wrapper

    return deco


def _remote(request: web.Request) -> str:
    return request.remote or ""


def _safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


# ---------------------------------------------------------------------------- sign-in


async def login_page(request: web.Request, *, error: str = "", status: int = 200,
                     username: str = "") -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp = render(request, "login.html", {
        "login_csrf": token, "error": error, "username": username,
        "next": _safe_next(request.query.get("next")) or "",
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
    throttle = request.app[LOGIN_THROTTLE]
    try:
        throttle.check(username, _remote(request))
    except TooManyAttempts as exc:
        return await login_page(request, error=exc.message.split(" / ")[0], status=429,
                                username=username)
    store = request.app[SESSION_STORE]
    user = await store.authenticate(username, password) if username and password else None
    if user is None:
        throttle.failed(username, _remote(request))
        return await login_page(request, error="用户名或密码错误。", status=401, username=username)
    throttle.succeeded(username)
    new = await store.create(user, remote=_remote(request),
                             user_agent=request.headers.get("User-Agent", ""))
    target = _safe_next(str(form.get("next", ""))) or HOME_BY_ROLE.get(user.role, "/agent")
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


async def _staff_ref(request: web.Request, ident: Identity) -> StaffRef:
    if ident.user_id is None:
        raise InvalidInput("此操作需要以坐席身份登录 / sign in as a person", field="identity")
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(StaffUser, ident.user_id)
    if user is None:
        raise NotFound("用户不存在 / no such user", details={"user_id": ident.user_id})
    return StaffRef(user.id, user.username, user.display_name or user.username, user.role,
                    user.extension, user.mobile)


@page("agent", "night_duty", "engineer", "supervisor")
async def agent_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None and ident.user_id is not None
    hub = request.app[AGENT_HUB]
    st = hub.agent_states.get(ident.user_id)
    me = await _staff_ref(request, ident)
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
        "title": h["title"], "outcome": outcome_label(h["outcome"]),
        "agent": h["agent"], "wait_s": h["wait_s"],
        "ivr": " › ".join(h["ivr_path"]),
    } for h in items]


@page("agent", "night_duty", "engineer", "supervisor")
async def history_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    everyone = ident.has_role("supervisor") and request.query.get("all") == "1"
    me = None if everyone else await _staff_ref(request, ident)
    rows = _history_rows(await _history(request, me), ident, request)
    return render(request, "history.html", {"rows": rows, "all": everyone})


async def _history(request: web.Request, me: StaffRef | None) -> list[dict[str, Any]]:
    """The call log when it has rows for this view, else the hub's memory of calls
    since the server started (the call log is written by ``setup_calls``)."""
    async with request.app[SESSIONMAKER]() as session:
        rows = await recent_history(session, me)
    if rows:
        return rows
    return request.app[AGENT_HUB].history_for(me.user_id if me else None)


@require_role(*AGENT_ROLES)
async def status_api(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    if request.content_type == "application/json":
        body = await read_json_object(request)
    else:
        body = dict(await request.post())
    state = str(body.get("state", ""))
    reason = str(body.get("reason", "")).strip()[:40]
    if state not in AGENT_STATES:
        raise InvalidInput(f"状态应为 {'/'.join(AGENT_STATES)}", field="state")
    if state == "paused" and not reason:
        reason = PAUSE_REASONS[0]
    if state != "paused":
        reason = "话后处理" if state == "wrap_up" else ""
    me = await _staff_ref(request, ident)
    port = request.app.get(AGENT_STATUS)
    if port is not None:
        await port.set_status(me, state, reason)
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
    async with request.app[SESSIONMAKER]() as session:
        people = await search_people(session, query, limit=20)
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


@require_role(*AGENT_ROLES, "engineer")
async def search_api(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    if not query:
        raise InvalidInput("请输入姓名、电话或房号 / q is required", field="q")
    return json_response({"results": await _search(request, query)})


@require_role(*AGENT_ROLES)
async def call_api(request: web.Request) -> web.StreamResponse:
    """Click-to-call: ``{"person_id", "phone": index}`` or ``{"call_id"}`` (call back)."""
    ident = current_identity(request)
    assert ident is not None
    body = await read_json_object(request)
    me = await _staff_ref(request, ident)
    if not me.extension:
        raise InvalidInput("您没有分机号，无法外呼 / you have no extension", field="extension")
    community: str | None = None
    async with request.app[SESSIONMAKER]() as session:
        if body.get("call_id"):
            found = request.app[AGENT_HUB].caller_of_call(str(body["call_id"]))
            if found is None or not try_normalize(found[0]):
                raise NotFound("找不到这通来电的号码 / no number for this call",
                               details={"call_id": body["call_id"]})
            number, community = try_normalize(found[0]) or "", found[1]
            person_ids: list[int] = []
        elif isinstance(body.get("person_id"), int):
            index = body.get("phone", 0)
            if not isinstance(index, int):
                raise InvalidInput("phone 应为整数 / phone must be an index", field="phone")
            number = await person_phone(session, body["person_id"], index)
            person_ids = [body["person_id"]]
        else:
            raise InvalidInput("需要 person_id 或 call_id / person_id or call_id required",
                               field="person_id")
        await record_access(session, ident, person_ids, reason="view",
                            source=_remote(request), detail="click-to-call")
    port = request.app.get(ORIGINATE)
    if port is None:
        raise Unavailable("电话系统未连接，无法外呼 / telephony is not connected")
    attempt = await port.click_to_call(me, number, community=community)
    return json_response({"ok": True, "attempt": attempt,
                          "message": f"正在呼叫您的分机 {me.extension}，接起后将接通对方"})


@require_role(*AGENT_ROLES)
async def unknown_caller_api(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    body = await read_json_object(request)
    hub = request.app[AGENT_HUB]
    call_id = str(body.get("call_id", ""))
    number = str(body.get("number", ""))
    community = body.get("community") if isinstance(body.get("community"), str) else None
    if call_id and not number:
        found = hub.caller_of_call(call_id)
        if found is None:
            raise NotFound("找不到这通来电 / no such call", details={"call_id": call_id})
        number, community = found[0], community or found[1]
    if not number:
        raise InvalidInput("需要来电号码 / number is required", field="number")
    async with request.app[SESSIONMAKER]() as session:
        person_id = await record_unknown_caller(
            session, name=str(body.get("name", "")), number=number,
            room=str(body.get("room", "")), role=str(body.get("role", "owner")),
            note=str(body.get("note", "")), community_code=community)
        await record_access(session, ident, [person_id], reason="create",
                            source=_remote(request), detail=f"call {call_id}")
    if call_id:
        await hub.refresh_pop(call_id)
    return json_response({"person_id": person_id}, status=201)


# ---------------------------------------------------------------------------- supervisor


@page("supervisor")
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    wall = await request.app[AGENT_HUB].wall()
    return render(request, "supervisor.html", {"wall": wall, "state_labels": STATE_LABELS})


@require_role("supervisor")
async def wall_api(request: web.Request) -> web.StreamResponse:
    return json_response(await request.app[AGENT_HUB].wall())


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
    return AuditQuery(username=q.get("username", "").strip(),
                      person_id=int(person) if person else None,
                      reason=reason, since=day("since"),
                      until=until + timedelta(days=1) if until else None,
                      limit=200 if "csv" not in request.path else 100000)


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
    r.add_post("/api/console/status", status_api)
    r.add_get("/api/console/search", search_api)
    r.add_post("/api/console/call", call_api)
    r.add_post("/api/console/unknown-caller", unknown_caller_api)
    r.add_get("/api/console/wall", wall_api)
