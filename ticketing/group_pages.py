"""Pages of group incidents (zh-CN): ``/ticket-groups`` (the list) and
``/ticket-groups/{id}`` (its reporters, its log, and the forms this person may use:
办结 and 发布停水/停电通知 (``ticketing.group_outages``) for a supervisor, 加入/移出
for the front desk). The forms post to
``/ticket-groups/{id}/action`` with the session's CSRF token."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from callcenter.appkeys import CLOCK
from callcenter.auth.middleware import current_identity
from callcenter.errors import DomainError, InvalidInput, NotFound
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.group_models import GROUP_STATES
from ticketing.group_outages import (
    DEFAULT_HOURS,
    GROUP_OUTAGES,
    KIND_LABELS,
    default_text,
    kinds_for,
    outage_note,
)
from ticketing.groups import GROUP_ACTIONS, GroupView, TicketGroups
from ticketing.http import TICKETS
from ticketing.workflow import ROLE_LABELS, SUPERVISORS, ActionRefused, Actor

PAGE_SIZE = 50


def _groups(request: web.Request) -> TicketGroups:
    groups = request.app[TICKETS].groups
    if groups is None:
        raise web.HTTPNotFound()
    return groups


def group_id_of(request: web.Request) -> int:
    raw = request.match_info["group_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) < 1:
        raise NotFound("事件不存在 / no such incident", details={"field": "group_id"})
    return int(raw)


def _fmt(request: web.Request, when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(request.app[TICKETS].timezone).strftime("%Y-%m-%d %H:%M")


@page()
async def groups_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    state = request.query.get("state", "open")
    if state not in (*GROUP_STATES, "all"):
        state = "open"
    total, items = await _groups(request).list(
        ident.communities, state=None if state == "all" else state, limit=PAGE_SIZE)
    return render(request, "groups_list.html", {
        "state": state, "states": {**GROUP_STATES, "all": "全部"}, "total": total,
        "rows": [{"id": g.id, "label": g.label, "state": g.state, "state_label": g.state_label,
                  "households": g.households, "reports": g.reports,
                  "opened_at": _fmt(request, g.opened_at),
                  "closed_at": _fmt(request, g.closed_at)} for g in items]})


async def _detail(request: web.Request, group_id: int, *, error: str = "",
                  status: int = 200) -> web.Response:
    ident = current_identity(request)
    assert ident is not None
    g = await _groups(request).get(group_id, ident.communities)
    may = {k for k, a in GROUP_ACTIONS.items() if ident.role == "admin" or ident.role in a.roles}
    if g.state != "open":
        may = set()
    numbers = {m.id: m.number for m in g.members}
    return render(request, "groups_detail.html", {
        "g": g, "error": error, "may": may, "outages": _outage_forms(request, g, ident.role),
        "opened_at": _fmt(request, g.opened_at),
        "closed_at": _fmt(request, g.closed_at),
        "members": [{"id": m.id, "number": m.number, "state": m.state,
                     "state_label": m.state_label, "location": m.location,
                     "caller": " ".join(p for p in (m.caller_name, m.caller_number) if p),
                     "summary": m.summary, "created_at": _fmt(request, m.created_at)}
                    for m in g.members],
        "events": [{"at": _fmt(request, e.at), "label": e.label,
                    "number": numbers.get(e.ticket_id or 0, (e.data or {}).get("number", "")),
                    "actor": "系统" if e.actor in ("system", "sla") else e.actor,
                    "role_label": ROLE_LABELS.get(e.actor_role, ""), "note": e.note}
                   for e in g.events],
    }, status=status)


def _outage_forms(request: web.Request, g: GroupView, role: str) -> list[dict[str, str]]:
    """发布停水通知 / 发布停电通知, prefilled, for a supervisor of an open incident."""
    if g.state != "open" or role not in SUPERVISORS or GROUP_OUTAGES not in request.app:
        return []
    tz = request.app[TICKETS].timezone
    until = request.app[CLOCK].now().astimezone(tz) + timedelta(hours=DEFAULT_HOURS)
    return [{"kind": k, "label": f"发布{KIND_LABELS[k]}通知",
             "text": default_text(g.building, k, until.strftime("%H:%M")),
             "ends_at": until.strftime("%Y-%m-%dT%H:%M")} for k in kinds_for(g.category)]


async def _post_outage(request: web.Request, groups: TicketGroups, group_id: int,
                       actor: Actor, scope: frozenset[int] | None, kind: str, text: str,
                       ends_raw: str) -> None:
    poster = request.app.get(GROUP_OUTAGES)
    if poster is None or actor.role not in SUPERVISORS:
        raise ActionRefused("只有主管可以发布停水停电通知", details={"action": "outage"})
    g = await groups.get(group_id, scope)
    if g.state != "open":
        raise InvalidInput("事件已办结", field="action")
    if kind not in kinds_for(g.category):
        raise InvalidInput("通知类型无效", field="kind")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidInput("通知内容含有无效字符", field="text")
    tz = request.app[TICKETS].timezone
    try:
        ends_at = datetime.fromisoformat(ends_raw)
    except ValueError:
        raise InvalidInput("结束时间无效", field="ends_at") from None
    if not 2000 <= ends_at.year <= 2999:
        raise InvalidInput("结束时间无效", field="ends_at")
    if ends_at.tzinfo is None:
        ends_at = ends_at.replace(tzinfo=tz)
    notice = await poster.post_for_group(
        community_id=g.community_id, building=g.building, kind=kind, text=text,
        ends_at=ends_at, group_id=g.id, username=actor.username, role=actor.role, scope=scope)
    note, data = outage_note(notice, _fmt(request, notice.ends_at))
    await groups.log_outage(g.id, actor, note, data, scope)


@page()
async def group_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, group_id_of(request))


@page()
async def group_action_form(request: web.Request) -> web.StreamResponse:
    """办结, 加入 (by the ticket's number) or 移出, from the incident's page."""
    group_id = group_id_of(request)
    groups = _groups(request)
    ident = current_identity(request)
    assert ident is not None
    await groups.get(group_id, ident.communities)  # another community's: 404
    actor = Actor(ident.user_id, ident.username, ident.role)
    form = await request.post()

    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    try:
        action = text("action")
        if action == "close":
            await groups.close(group_id, actor, text("note"), ident.communities)
        elif action == "link":
            number = text("number")
            if not number or len(number) > 32:
                raise InvalidInput("请填写工单编号", field="number")
            try:
                ticket = await request.app[TICKETS].service.get_by_number(number)
            except NotFound:
                raise InvalidInput("没有这个编号的工单", field="number") from None
            await groups.link(group_id, ticket.id, actor, text("reason"), ident.communities)
        elif action == "outage":
            await _post_outage(request, groups, group_id, actor, ident.communities,
                               text("kind"), text("text"), text("ends_at"))
        elif action == "unlink":
            raw = text("ticket_id")
            if not raw.isdigit() or len(raw) > 10:
                raise InvalidInput("工单无效", field="ticket_id")
            await groups.unlink(group_id, int(raw), actor, text("reason"), ident.communities)
        else:
            raise InvalidInput("操作无效", field="action")
    except DomainError as exc:
        if exc.http_status >= 500:
            raise
        if exc.http_status == 404 and (exc.details or {}).get("field") == "group_id":
            raise
        return await _detail(request, group_id, error=exc.message, status=exc.http_status)
    raise web.HTTPSeeOther(f"/ticket-groups/{group_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ticket-groups", groups_page)
    app.router.add_get("/ticket-groups/{group_id}", group_page)
    app.router.add_post("/ticket-groups/{group_id}/action", group_action_form)

