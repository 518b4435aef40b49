"""Pages of group incidents (zh-CN): ``/ticket-groups`` (the list) and
``/ticket-groups/{id}`` (its reporters, its log, and the forms this person may use:
办结 for a supervisor, 加入/移出 for the front desk). The forms post to
``/ticket-groups/{id}/action`` with the session's CSRF token."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from callcenter.auth.middleware import current_identity
from callcenter.errors import DomainError, InvalidInput, NotFound
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.group_models import GROUP_STATES
from ticketing.groups import GROUP_ACTIONS, TicketGroups
from ticketing.http import TICKETS
from ticketing.workflow import ROLE_LABELS, Actor

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
        "g": g, "error": error, "may": may, "opened_at": _fmt(request, g.opened_at),
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

