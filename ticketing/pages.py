"""Server-rendered ticket pages (zh-CN): ``/tickets`` and ``/tickets/{id}``.

Pages need a signed-in person (``require_role``); the transition forms post
``csrf_token`` from the session, which the console's CSRF middleware checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from callcenter.auth.middleware import current_identity, require_role
from callcenter.errors import DomainError, InvalidInput
from callcenter.web.render import Safe, esc, join, page, render
from ticketing.categories import CATEGORIES, DEPARTMENTS, PRIORITIES, SOURCES
from ticketing.http import (
    TICKETS,
    TRANSITION_ROLES,
    RecordingDetails,
    TicketsFeature,
    parse_filter,
    parse_int,
    ticket_id_of,
)
from ticketing.lifecycle import STATES, allowed_next
from ticketing.services import TicketFilter, TicketView

PAGE_SIZE = 30
LOW_CONFIDENCE = 0.6
TRANSITION_LABELS = {
    "dispatched": "派单", "in_progress": "开始处理", "resolved": "标记已解决",
    "followed_up": "已回访", "closed": "关闭", "reopened": "重开", "cancelled": "取消",
}


def _user(request: web.Request) -> str:
    ident = current_identity(request)
    if ident is None:
        return ""
    return ident.display_name or ident.username


def _fmt(when: datetime | None, feature: TicketsFeature) -> str:
    if when is None:
        return ""
    return when.astimezone(feature.timezone).strftime("%Y-%m-%d %H:%M")


def _options(choices: Mapping[str, str], selected: str | None) -> Safe:
    parts = ['<option value="">全部</option>']
    for key, label in choices.items():
        sel = " selected" if key == selected else ""
        parts.append(f'<option value="{esc(key)}"{sel}>{esc(label)}</option>')
    return Safe("".join(parts))


def _priority_badge(priority: str) -> Safe:
    if priority == "emergency":
        return Safe('<span class="badge emergency">紧急</span>')
    return Safe('<span class="badge">普通</span>')


def _row(t: TicketView, feature: TicketsFeature) -> Safe:
    cat = CATEGORIES.get(t.category)
    caller = " ".join(p for p in (t.caller_name, t.caller_number) if p)
    warn = " ⚠" if t.location_conflict else ""
    return Safe(
        "<tr>"
        f'<td class="nowrap"><a href="/tickets/{t.id}">{esc(t.number)}</a></td>'
        f'<td class="nowrap">{esc(_fmt(t.created_at, feature))}</td>'
        f'<td class="nowrap">{esc(cat.label if cat else t.category)}</td>'
        f"<td>{_priority_badge(t.priority)}</td>"
        f'<td><span class="badge state-{esc(t.state)}">{esc(STATES.get(t.state, t.state))}</span></td>'
        f"<td>{esc(t.location or '—')}{esc(warn)}</td>"
        f"<td>{esc(caller or '—')}</td>"
        f"<td>{esc(t.summary)}</td>"
        "</tr>"
    )


@require_role()
async def tickets_page(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    q = request.query
    error = Safe("")
    try:
        filters = await parse_filter(q, feature.service, feature.timezone)
        page_no = parse_int(q.get("page"), "page", minimum=1, maximum=100000, default=1) or 1
    except InvalidInput as exc:
        error = Safe(f'<p class="warn">筛选条件有误：{esc(exc.message)}</p>')
        filters, page_no = TicketFilter(), 1
    result = await feature.service.list(filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    rows = join(_row(t, feature) for t in result.items) if result.items else Safe(
        '<tr><td colspan="8" class="muted">没有符合条件的工单</td></tr>')
    keep = {k: v for k, v in q.items() if k != "page" and v}
    pager = []
    if page_no > 1:
        pager.append(f'<a href="/tickets?{esc(urlencode({**keep, "page": page_no - 1}))}">上一页</a>')
    pages = max(1, -(-result.total // PAGE_SIZE))
    pager.append(f'<span class="muted">第 {page_no} / {pages} 页</span>')
    if page_no < pages:
        pager.append(f'<a href="/tickets?{esc(urlencode({**keep, "page": page_no + 1}))}">下一页</a>')
    return page(
        "tickets_list.html", title="工单", user=_user(request), error=error,
        state_options=_options(STATES, q.get("state")),
        category_options=_options({k: c.label for k, c in CATEGORIES.items()}, q.get("category")),
        priority_options=_options(PRIORITIES, q.get("priority")),
        since=q.get("since", ""), until=q.get("until", ""), q=q.get("q", ""),
        total=result.total, rows=rows, pager=Safe(" ".join(pager)),
    )


def transcript_html(words: Sequence[Mapping[str, Any]], text: str,
                    threshold: float = LOW_CONFIDENCE) -> Safe:
    """The transcript, each word below ``threshold`` confidence in ``<mark class="lowconf">``."""
    if not words:
        return esc(text)
    parts = []
    for w in words:
        word = str(w.get("word", ""))
        conf = w.get("conf")
        if isinstance(conf, int | float) and conf < threshold:
            parts.append(f'<mark class="lowconf" title="置信度 {conf:.2f}">{esc(word)}</mark>')
        else:
            parts.append(str(esc(word)))
    return Safe(" ".join(parts))


def _recording_html(info: RecordingDetails | None) -> Safe:
    if info is None:
        return Safe("")
    if info.purged:
        player = Safe('<p class="muted">录音已超过保存期限并已删除。</p>')
    else:
        player = Safe(f'<audio controls preload="none" src="{esc(info.url)}"></audio>')
    if info.error_id:
        status = f"留言无法识别（{info.error_id}）：{info.reason}"
    elif not info.transcript:
        status = "转写中或尚未转写"
    else:
        status = "自动转写"
    return render("tickets_recording.html", player=player, transcription_status=status,
                  transcript=transcript_html(info.words, info.transcript))


def _transitions_html(request: web.Request, t: TicketView) -> Safe:
    ident = current_identity(request)
    if ident is None or not ident.has_role(*TRANSITION_ROLES):
        return Safe('<p class="muted">无处理权限</p>')
    nexts = [s for s in STATES if s in allowed_next(t.state)]
    if not nexts:
        return Safe('<p class="muted">工单已结束</p>')
    forms = []
    for state in nexts:
        forms.append(
            f'<form method="post" action="/tickets/{t.id}/transition">'
            f'<input type="hidden" name="csrf_token" value="{esc(ident.csrf_token)}">'
            f'<input type="hidden" name="to" value="{esc(state)}">'
            '<input type="text" name="note" placeholder="备注（可选）" maxlength="1000">'
            f"<button type=\"submit\">{esc(TRANSITION_LABELS.get(state, state))}</button>"
            "</form>"
        )
    return Safe("".join(forms))


async def _detail(request: web.Request, ticket_id: int, *, error: str = "",
                  status: int = 200) -> web.Response:
    feature = request.app[TICKETS]
    t = await feature.service.get(ticket_id)
    info = None
    if t.recording_id is not None and feature.recordings is not None:
        info = await feature.recordings.info(t.recording_id)
    cat = CATEGORIES.get(t.category)
    said = "".join(part for part in (
        f"{t.said_building}栋" if t.said_building else "",
        f"{t.said_unit}单元" if t.said_unit else "",
        f"{t.said_room}室" if t.said_room else "") if part)
    conflict = Safe("")
    if t.location_conflict:
        conflict = Safe('<p class="warn">位置存疑：来电人登记的房号与留言中所说的位置不一致，请回电核实。</p>')
    events = join(
        Safe(f"<tr><td>{esc(_fmt(e.at, feature))}</td>"
             f"<td>{esc(STATES.get(e.from_state, '') if e.from_state else '—')}</td>"
             f"<td>{esc(STATES.get(e.to_state, e.to_state))}</td>"
             f"<td>{esc(e.actor)}</td><td>{esc(e.note)}</td></tr>")
        for e in t.events
    )
    return page(
        "tickets_detail.html", title=f"工单 {t.number}", user=_user(request), status=status,
        number=t.number, state=t.state, state_label=STATES.get(t.state, t.state),
        priority_badge=_priority_badge(t.priority),
        error=Safe(f'<p class="warn">{esc(error)}</p>') if error else "",
        conflict=conflict, summary=t.summary,
        category_label=cat.label if cat else t.category,
        department_label=DEPARTMENTS.get(t.department, t.department),
        location=t.location or "未知", said_location=said or "—",
        caller=" ".join(p for p in (t.caller_name, t.caller_number) if p) or "—",
        source_label=SOURCES.get(t.source, t.source),
        created_at=_fmt(t.created_at, feature), created_by=t.created_by,
        updated_at=_fmt(t.updated_at, feature),
        recording=_recording_html(info), transitions=_transitions_html(request, t), events=events,
    )


@require_role()
async def ticket_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, ticket_id_of(request))


@require_role(*TRANSITION_ROLES)
async def ticket_transition_form(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    ticket_id = ticket_id_of(request)
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
