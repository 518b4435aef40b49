"""Server-rendered ticket pages (zh-CN): ``/tickets`` and ``/tickets/{id}``.

Rendered with the console's Jinja2 layout (autoescaped, same navigation and
style). Not signed in → the login page, then back here; the transition forms
post the session's ``csrf_token``, which the console's CSRF middleware checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from callcenter.auth.middleware import current_identity
from callcenter.errors import DomainError, InvalidInput
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.categories import CATEGORIES, DEPARTMENTS, PRIORITIES, SOURCES
from ticketing.http import (
    TICKETS,
    TRANSITION_ROLES,
    TicketsFeature,
    parse_filter,
    parse_int,
    scoped_filter,
    ticket_id_of,
    visible_ticket,
)
from ticketing.lifecycle import STATES, allowed_next
from ticketing.services import TicketFilter, TicketView

PAGE_SIZE = 30
LOW_CONFIDENCE = 0.6
TRANSITION_LABELS = {
    "dispatched": "派单", "in_progress": "开始处理", "resolved": "标记已解决",
    "followed_up": "已回访", "closed": "关闭", "reopened": "重开", "cancelled": "取消",
}


def _fmt(when: datetime | None, feature: TicketsFeature) -> str:
    if when is None:
        return ""
    return when.astimezone(feature.timezone).strftime("%Y-%m-%d %H:%M")


def _caller(t: TicketView) -> str:
    return " ".join(p for p in (t.caller_name, t.caller_number) if p)


def _row(t: TicketView, feature: TicketsFeature) -> dict[str, Any]:
    cat = CATEGORIES.get(t.category)
    return {"id": t.id, "number": t.number, "created_at": _fmt(t.created_at, feature),
            "category": cat.label if cat else t.category, "emergency": t.priority == "emergency",
            "state": t.state, "state_label": STATES.get(t.state, t.state),
            "location": t.location, "conflict": t.location_conflict, "caller": _caller(t),
            "summary": t.summary}


@page()
async def tickets_page(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    q = request.query
    error = ""
    try:
        filters = await parse_filter(q, feature.service, feature.timezone)
        page_no = parse_int(q.get("page"), "page", minimum=1, maximum=100000, default=1) or 1
    except InvalidInput as exc:
        error = exc.message
        filters, page_no = TicketFilter(), 1
    ident = current_identity(request)
    assert ident is not None  # page() ran first
    filters = scoped_filter(ident, filters)
    result = await feature.service.list(filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    keep = {k: v for k, v in q.items() if k != "page" and v}
    pages = max(1, -(-result.total // PAGE_SIZE))
    return render(request, "tickets_list.html", {
        "error": error, "q": q, "states": STATES, "priorities": PRIORITIES,
        "categories": {k: c.label for k, c in CATEGORIES.items()},
        "rows": [_row(t, feature) for t in result.items], "total": result.total,
        "page_no": page_no, "pages": pages,
        "prev_url": f"/tickets?{urlencode({**keep, 'page': page_no - 1})}" if page_no > 1 else "",
        "next_url": f"/tickets?{urlencode({**keep, 'page': page_no + 1})}"
        if page_no < pages else "",
    })


def transcript_words(words: Sequence[Mapping[str, Any]],
                     threshold: float = LOW_CONFIDENCE) -> list[dict[str, Any]]:
    """The transcript's words, each marked ``low`` below ``threshold`` confidence."""
    out = []
    for w in words:
        conf = w.get("conf")
        low = isinstance(conf, int | float) and conf < threshold
        out.append({"word": str(w.get("word", "")), "conf": conf if low else None, "low": low})
    return out


async def _detail(request: web.Request, ticket_id: int, *, error: str = "",
                  status: int = 200) -> web.Response:
    feature = request.app[TICKETS]
    t = await visible_ticket(request, ticket_id)
    info = None
    if t.recording_id is not None and feature.recordings is not None:
        info = await feature.recordings.info(t.recording_id)
    if info is None:
        transcription_status = ""
    elif info.error_id:
        transcription_status = f"留言无法识别（{info.error_id}）：{info.reason}"
    elif not info.transcript:
        transcription_status = "转写中或尚未转写"
    else:
        transcription_status = "自动转写"
    cat = CATEGORIES.get(t.category)
    said = "".join(part for part in (
        f"{t.said_building}栋" if t.said_building else "",
        f"{t.said_unit}单元" if t.said_unit else "",
        f"{t.said_room}室" if t.said_room else "") if part)
    ident = current_identity(request)
    return render(request, "tickets_detail.html", {
        "t": t, "error": error, "state_label": STATES.get(t.state, t.state),
        "category_label": cat.label if cat else t.category,
        "department_label": DEPARTMENTS.get(t.department, t.department),
        "said_location": said, "caller": _caller(t),
        "source_label": SOURCES.get(t.source, t.source),
        "created_at": _fmt(t.created_at, feature), "updated_at": _fmt(t.updated_at, feature),
        "recording": info, "transcription_status": transcription_status,
        # The "unknown: listen" decision (ticketing.listen), e.g. 转写失败，已通知夜班值班人员收听录音
        "listen_notice": t.listen_notice if t.needs_listen else "",
        "words": transcript_words(info.words) if info else [],
        "can_transition": ident is not None and ident.has_role(*TRANSITION_ROLES),
        "transitions": [(s, TRANSITION_LABELS.get(s, s)) for s in STATES
                        if s in allowed_next(t.state)],
        "events": [{"at": _fmt(e.at, feature),
                    "from_label": STATES.get(e.from_state, "") if e.from_state else "—",
                    "to_label": STATES.get(e.to_state, e.to_state), "actor": e.actor,
                    "note": e.note} for e in t.events],
    }, status=status)


@page()
async def ticket_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, ticket_id_of(request))


@page(*TRANSITION_ROLES)
async def ticket_transition_form(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    ticket_id = ticket_id_of(request)
    await visible_ticket(request, ticket_id)
    form = await request.post()
    to_state = str(form.get("to", ""))
    note = str(form.get("note", ""))
    ident = current_identity(request)
    actor = ident.username if ident else ""
    try:
        await feature.service.transition(ticket_id, to_state, actor=actor, note=note)
    except DomainError as exc:
        if exc.http_status == 404:
            raise
        return await _detail(request, ticket_id, error=exc.message, status=exc.http_status)
    raise web.HTTPSeeOther(f"/tickets/{ticket_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tickets", tickets_page)
    app.router.add_get("/tickets/{ticket_id}", ticket_page)
    app.router.add_post("/tickets/{ticket_id}/transition", ticket_transition_form)
