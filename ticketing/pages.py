"""Server-rendered ticket pages (zh-CN): ``/tickets`` (list, 新建工单 form) and
``/tickets/{id}`` (facts, timeline, the work-order actions this person may take).

Rendered with the console's Jinja2 layout (autoescaped, same navigation and
style). Not signed in → the login page, then back here; the action forms
post the session's ``csrf_token``, which the console's CSRF middleware checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from callcenter.auth.middleware import current_identity
from callcenter.errors import DomainError, InvalidInput
from callcenter.web.api import invalid
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.categories import (
    CATEGORIES,
    COMMON_AREAS,
    COMPLAINT_GRADES,
    DEPARTMENTS,
    PRIORITIES,
    SOURCES,
)
from ticketing.departments import list_departments
from ticketing.http import (
    CREATE_ROLES,
    TICKETS,
    NewTicketIn,
    TicketsFeature,
    parse_filter,
    parse_int,
    parse_new_ticket,
    parse_when,
    scoped_filter,
    ticket_id_of,
    visible_ticket,
)
from ticketing.lifecycle import STATES
from ticketing.services import EventView, TicketFilter, TicketView
from ticketing.workflow import ACTIONS, ROLE_LABELS, Actor
from ticketing.workorders import ActionInput
from ticketing.workorders_http import form_photos

PAGE_SIZE = 30
# The next step first, then the others: the order of the ticket page's action forms.
ACTION_ORDER = ("dispatch", "accept", "arrive", "complete", "follow_up", "callback_done",
                "archive", "add_photo", "grade", "reassign", "return", "reopen", "cancel")
assert sorted(ACTION_ORDER) == sorted(ACTIONS)
LOW_CONFIDENCE = 0.6


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
            "grade": t.complaint_grade or "", "grade_label": t.complaint_grade_label,
            "location": t.location, "conflict": t.location_conflict, "caller": _caller(t),
            "summary": t.summary, "grouped": t.group_id is not None}


FORM_SOURCES = ("walk_in", "wechat", "callback", "phone", "agent")
FORM_FIELDS = ("source", "category", "summary", "description", "caller_name", "caller_number",
               "community", "place", "building", "unit", "room", "common_area", "emergency",
               "idempotency_key", "complaint_grade")


async def _list(request: web.Request, *, form_error: str = "",
                form: Mapping[str, str] | None = None, status: int = 200) -> web.Response:
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
    mine = q.get("mine") == "1" and ident.user_id is not None
    if mine:
        filters = replace(filters, assignee_id=ident.user_id)
    result = await feature.service.list(filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    keep = {k: v for k, v in q.items() if k != "page" and v}
    pages = max(1, -(-result.total // PAGE_SIZE))
    communities = await feature.service.communities(ident.communities)
    values = dict(form or {})
    if not form_error:
        values = {"idempotency_key": uuid.uuid4().hex, "place": "room", "source": "walk_in"}
    return render(request, "tickets_list.html", {
        "error": error, "q": q, "states": STATES, "priorities": PRIORITIES,
        "grades": COMPLAINT_GRADES,
        "categories": {k: c.label for k, c in CATEGORIES.items()},
        "rows": [_row(t, feature) for t in result.items], "total": result.total,
        "page_no": page_no, "pages": pages, "mine": mine,
        "prev_url": f"/tickets?{urlencode({**keep, 'page': page_no - 1})}" if page_no > 1 else "",
        "next_url": f"/tickets?{urlencode({**keep, 'page': page_no + 1})}"
        if page_no < pages else "",
        "can_create": ident.has_role(*CREATE_ROLES), "form_error": form_error, "form": values,
        "form_sources": {k: SOURCES[k] for k in FORM_SOURCES},
        "common_areas": COMMON_AREAS,
        "communities": [{"code": c[1], "name": c[2]} for c in communities],
    }, status=status)


@page()
async def tickets_page(request: web.Request) -> web.StreamResponse:
    return await _list(request)


async def _new_ticket_body(request: web.Request, form: Mapping[str, str]) -> NewTicketIn:
    """The 新建工单 form as the API's request model: the room from the directory by its
    address, or a common area; the caller linked when the directory knows the number."""
    feature = request.app[TICKETS]
    raw: dict[str, Any] = {k: form[k].strip() for k in FORM_FIELDS
                           if k in form and form[k].strip()}
    raw["emergency"] = raw.pop("emergency", "") == "1"
    place = raw.pop("place", "room")
    code = raw.get("community")
    if not code:
        raise InvalidInput("请选择小区", field="community")
    community_id = await feature.service.community_id_for(code)
    if community_id is None:
        raise InvalidInput("小区不存在", field="community")
    if place == "area":
        if "common_area" not in raw:
            raise InvalidInput("请选择公共区域", field="common_area")
        raw.pop("unit", None)
        raw.pop("room", None)
    else:
        raw.pop("common_area", None)
        if not raw.get("building") or not raw.get("room"):
            raise InvalidInput("请填写业主的楼栋和房号，或改选公共区域", field="room")
        room_id = await feature.service.room_id_for(community_id, raw["building"],
                                                    raw.get("unit"), raw["room"])
        if room_id is None:
            raise InvalidInput("住户档案里没有这个房号，请核对楼栋、单元和房号", field="room")
        raw["room_id"] = room_id
    if raw.get("caller_number"):
        person = await feature.service.person_for_phone(raw["caller_number"])
        if person is not None:
            raw["person_id"] = person
    try:
        return NewTicketIn.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc) from None


@page(*CREATE_ROLES)
async def new_ticket_form(request: web.Request) -> web.StreamResponse:
    """新建工单 from the list page (walk-ins, WeChat, callbacks). The form carries an
    idempotency key made when it was rendered: a double-click makes one ticket."""
    feature = request.app[TICKETS]
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    ident = current_identity(request)
    assert ident is not None
    try:
        body = await _new_ticket_body(request, form)
        new = await parse_new_ticket(body, ident, feature.service)
        view, _created = await feature.service.create_once(new)
    except DomainError as exc:
        if exc.http_status >= 500:
            raise
        return await _list(request, form_error=exc.message, form=form,
                           status=exc.http_status)
    raise web.HTTPSeeOther(f"/tickets/{view.id}")


def transcript_words(words: Sequence[Mapping[str, Any]],
                     threshold: float = LOW_CONFIDENCE) -> list[dict[str, Any]]:
    """The transcript's words, each marked ``low`` below ``threshold`` confidence."""
    out = []
    for w in words:
        conf = w.get("conf")
        low = isinstance(conf, int | float) and conf < threshold
        out.append({"word": str(w.get("word", "")), "conf": conf if low else None, "low": low})
    return out


def _local(when: datetime | None, tz: Any) -> str:
    return when.astimezone(tz).strftime("%m-%d %H:%M") if when else ""


def event_text(e: EventView, tz: Any) -> str:
    """What a timeline row says besides its note, in Chinese, times local."""
    d = e.data or {}
    if e.action in ("dispatch", "reassign"):
        text = f"派给{d.get('department_name', '')} {d.get('assignee', '')}"
        if d.get("on_call"):
            text += "（部门当前值班）"
        if d.get("appointment_at"):
            text += "，预约上门 " + _local(datetime.fromisoformat(d["appointment_at"]), tz)
        return text
    if e.action == "complete":
        parts = []
        if d.get("materials"):
            parts.append(f"材料：{d['materials']}")
        if d.get("cost"):
            parts.append(f"费用：{d['cost']} 元")
        if d.get("photo_ids"):
            parts.append(f"照片 {len(d['photo_ids'])} 张")
        return "；".join(parts)
    if e.action == "add_photo":
        return f"照片 {len(d.get('photo_ids', []))} 张"
    if e.action == "sla_breach":
        due = d.get("due_at")
        return f"时限 {_local(datetime.fromisoformat(due), tz)}" if due else ""
    if e.action == "grade":
        return (f"{COMPLAINT_GRADES.get(d.get('previous_grade', ''), '')} → "
                f"{COMPLAINT_GRADES.get(d.get('grade', ''), '')}")
    if e.action == "create" and d.get("grade"):
        return COMPLAINT_GRADES.get(d["grade"], "")
    if e.action == "follow_up":
        text = f"满意度 {d.get('score')} 分，{'已解决' if d.get('resolved') else '未解决'}"
        if d.get("callback_id"):
            text += "；已生成主管回访任务"
        return text
    return ""


async def _detail(request: web.Request, ticket_id: int, *, error: str = "",
                  status: int = 200) -> web.Response:
    feature = request.app[TICKETS]
    t = await visible_ticket(request, ticket_id)
    ident = current_identity(request)
    assert ident is not None
    tz = feature.timezone
    actions: list[str] = []
    choices: list[dict[str, str]] = []
    if feature.workorders is not None:
        actions = sorted(await feature.workorders.may_do(
            t.id, Actor(ident.user_id, ident.username, ident.role)), key=ACTION_ORDER.index)
    if {"dispatch", "reassign"} & set(actions) and t.community_id is not None:
        async with feature.service.sessionmaker() as session:
            depts = await list_departments(session, t.community_id)
            await session.commit()
        for d in depts:
            if not d.active:
                continue
            if d.oncall_role:
                choices.append({"value": f"{d.code}:oncall", "label": f"{d.name} · 当前值班人员"})
            for m in d.members:
                head = "（负责人）" if m.head else ""
                choices.append({"value": f"{d.code}:{m.user_id}", "label": f"{d.name} · {m.name}{head}"})
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
    group = (await feature.groups.of_ticket(t.id)
             if feature.groups is not None and t.group_id is not None else None)
    cat = CATEGORIES.get(t.category)
    said = "".join(part for part in (
        f"{t.said_building}栋" if t.said_building else "",
        f"{t.said_unit}单元" if t.said_unit else "",
        f"{t.said_room}室" if t.said_room else "") if part)
    return render(request, "tickets_detail.html", {
        "t": t, "error": error, "state_label": STATES.get(t.state, t.state),
        "group": group,  # 群发事件: 属于事件：… （N 户报告）
        "category_label": cat.label if cat else t.category,
        "grade_label": t.complaint_grade_label, "grades": COMPLAINT_GRADES,
        "department_label": DEPARTMENTS.get(t.department, t.department),
        "said_location": said, "caller": _caller(t),
        "source_label": SOURCES.get(t.source, t.source),
        "created_at": _fmt(t.created_at, feature), "updated_at": _fmt(t.updated_at, feature),
        "recording": info, "transcription_status": transcription_status,
        # The "unknown: listen" decision (ticketing.listen), e.g. 转写失败，已通知夜班值班人员收听录音
        "listen_notice": t.listen_notice if t.needs_listen else "",
        "words": transcript_words(info.words) if info else [],
        "actions": actions, "action_labels": {k: a.label for k, a in ACTIONS.items()},
        "assignee_choices": choices,
        "appointment_at": _fmt(t.appointment_at, feature),
        "open_callbacks": t.open_callbacks,
        # SLA clocks that ran out and still stand (ticketing.sla_timers): the 超时 badge
        "breaches": [{"kind": b.kind, "text": b.text, "due_at": _fmt(b.due_at, feature)}
                     for b in t.breaches],
        "callbacks": [{"reason": c.reason, "created_at": _fmt(c.created_at, feature),
                       "done_at": _fmt(c.done_at, feature), "done_by": c.done_by,
                       "note": c.note} for c in t.callbacks],
        "photos": [p.to_json(t.id) for p in t.photos],
        "events": [{"at": _fmt(e.at, feature), "label": e.label,
                    "from_label": STATES.get(e.from_state, "") if e.from_state else "—",
                    "to_label": STATES.get(e.to_state, e.to_state), "actor": e.actor,
                    "role_label": ROLE_LABELS.get(e.actor_role, ""),
                    "text": event_text(e, tz), "note": e.note} for e in t.events],
    }, status=status)


@page()
async def ticket_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, ticket_id_of(request))


def _form_input(form: Mapping[str, Any], tz: Any) -> ActionInput:
    """The action form's fields as the service's input (a 400 naming a bad one)."""
    def text(name: str) -> str:
        value = form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    department, assignee_id, on_call = None, None, False
    if text("assignee"):
        code, _, who = text("assignee").partition(":")
        department = code or None
        if who == "oncall":
            on_call = True
        elif who.isdigit() and len(who) < 10:
            assignee_id = int(who)
        else:
            raise InvalidInput("处理人无效", field="assignee_id")
    score: int | None = None
    if text("score"):
        if not text("score").isdigit() or len(text("score")) > 1:
            raise InvalidInput("满意度须是 1 到 5 分", field="score")
        score = int(text("score"))
    resolved = {"yes": True, "no": False}.get(text("resolved"))
    try:
        appointment = parse_when(text("appointment_at") or None, "appointment_at", tz)
    except ValueError:
        raise InvalidInput("预约时间无效", field="appointment_at") from None
    return ActionInput(note=text("note"), reason=text("reason"), department=department,
                       assignee_id=assignee_id, on_call=on_call, appointment_at=appointment,
                       score=score, resolved=resolved, comment=text("comment"),
                       materials=text("materials"), cost=text("cost") or None,
                       photos=form_photos(form), complaint_grade=text("complaint_grade") or None)


@page()
async def ticket_action_form(request: web.Request) -> web.StreamResponse:
    """One action from the ticket page's forms (``ticketing.workflow`` decides who may)."""
    feature = request.app[TICKETS]
    ticket_id = ticket_id_of(request)
    await visible_ticket(request, ticket_id)
    ident = current_identity(request)
    assert ident is not None
    if feature.workorders is None:
        raise web.HTTPNotFound()
    try:
        form = await request.post()
        action = form.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise InvalidInput("操作无效", field="action")
        await feature.workorders.act(ticket_id, action,
                                     Actor(ident.user_id, ident.username, ident.role),
                                     _form_input(form, feature.timezone))
    except DomainError as exc:
        if exc.http_status == 404 or exc.http_status >= 500:
            raise
        return await _detail(request, ticket_id, error=exc.message, status=exc.http_status)
    raise web.HTTPSeeOther(f"/tickets/{ticket_id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tickets", tickets_page)
    app.router.add_post("/tickets", new_ticket_form)
    app.router.add_get("/tickets/{ticket_id}", ticket_page)
    app.router.add_post("/tickets/{ticket_id}/action", ticket_action_form)
