"""HTTP: open, read and acknowledge incidents; the console's incident page."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ConfigDict, Field

from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.middleware import current_identity
from callcenter.errors import NotFound
from callcenter.oncall.services import community_in_scope
from callcenter.paging.errors import IncidentClosed
from callcenter.paging.services import PagingService, incident_request_from_json
from callcenter.web.api import (
    MAX_ID,
    ApiRoutes,
    CommunityRef,
    Count,
    Id,
    Input,
    Output,
    PathId,
    Text,
    Timestamp,
)
from callcenter.web.errors import json_response
from callcenter.web.pages import page
from callcenter.web.templating import setup_templates, static_url

PAGING_SERVICE = web.AppKey("paging_service", PagingService)

STATE_NAMES = {"open": "处理中（呼叫中）", "acknowledged": "已接警", "resolved": "已解决"}
OUTCOME_NAMES = {
    "accepted": "接警", "passed": "转下一位（按2）", "answered": "已接听", "no_answer": "无人接听",
    "busy": "忙", "failed": "失败", "sent": "已发送", "hung_up": "播报中挂断",
    "no_input": "未按键", "unknown_digit": "按键无效", "interrupted": "服务中断", None: "进行中",
}
CHANNEL_NAMES = {"phone": "电话", "wecom": "企业微信", "dingtalk": "钉钉", "webhook": "Webhook",
                 "email": "邮件"}
SOURCE_NAMES = {"ivr": "热线紧急选项", "voicemail": "紧急留言", "agent": "坐席呼叫",
                "api": "接口"}


class IncidentPath(Input):
    incident_id: PathId


class IncidentIn(Input):
    category: Text = Field(min_length=1, max_length=32, examples=["plumbing"])
    community: CommunityRef | None = Field(None, description="小区编码 / community code")
    community_id: Id | None = None
    source: Literal["api", "agent"] = "api"
    building: Text | None = Field(None, max_length=32)
    unit: Text | None = Field(None, max_length=32)
    room: Text | None = Field(None, max_length=32)
    summary: Text | None = Field(None, max_length=1000)
    caller_number: Text | None = Field(None, max_length=32)
    caller: Text | None = Field(None, max_length=32, description="= caller_number")
    call_id: Text | None = Field(None, max_length=64)
    reference: Text | None = Field(None, max_length=64, description="工单号等 / a ticket number")
    number: Text | None = Field(None, max_length=64, description="= reference")
    ticket_id: Id | Annotated[Text, Field(max_length=64)] | None = Field(
        None, description="= reference")


class ResolveIn(Input):
    note: Text = Field("", max_length=1000)


class StepIn(Input):
    model_config = ConfigDict(extra="forbid", frozen=True)
    target: Literal["oncall", "backup", "supervisor", "user", "manager"]
    role: Text | None = Field(None, max_length=16)
    user_id: Id | None = None
    ring_timeout_s: Count | None = None
    retries: Count | None = None
    retry_wait_s: Count | None = None
    wait_s: Count | None = None
    channels: list[Literal["phone", "wecom", "dingtalk", "webhook", "email"]] | None = None


class PolicyIn(Input):
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    max_rounds: int = Field(3, ge=0, le=100, strict=True)
    restart_wait_s: int = Field(60, ge=0, le=86400, strict=True)
    name: Text = Field("", max_length=100)


class PolicyPath(Input):
    community: CommunityRef
    category: Text = Field(max_length=32)


class OpenedOut(Output):
    incident_id: int
    created: bool = Field(description="false：并入已有事件，不再呼叫 / joined an open incident")
    report_id: int


class ReportOut(Output):
    id: int
    received_at: Timestamp | None
    source: str
    caller_number: str
    call_id: str
    note: str
    duplicate: bool
    reference: str


class AttemptOut(Output):
    id: int
    round: int
    step: int
    try_: int = Field(alias="try")
    user_id: int | None
    person: str
    channel: str
    target: str
    started_at: Timestamp | None
    ended_at: Timestamp | None
    outcome: str | None
    error_code: str | None
    detail: str


class NextStepOut(Output):
    due_at: Timestamp | None
    round: int
    step: int
    try_: int = Field(alias="try")


class TimelineOut(Output):
    id: int
    community: str | None
    community_name: str | None
    building: str
    unit: str
    room: str
    category: str
    category_name: str
    summary: str
    source: str
    state: Literal["open", "acknowledged", "resolved"]
    callers: list[str]
    opened_at: Timestamp | None
    acked_by: str | None
    acked_by_user_id: int | None
    acked_via: str | None
    acked_at: Timestamp | None
    resolved_at: Timestamp | None
    stop_reason: str | None
    policy: dict[str, Any] | None = Field(description="呼叫策略快照 / the policy as copied")
    reports: list[ReportOut]
    attempts: list[AttemptOut]
    next_step: list[NextStepOut]


class PolicyOut(Output):
    id: int
    name: str
    steps: list[dict[str, Any]]
    max_rounds: int
    restart_wait_s: int


def _incident_id(request: web.Request) -> int:
    raw = request.match_info["incident_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise NotFound("紧急事件不存在 / no such incident", details={"field": "incident_id"})
    return int(raw)


routes = ApiRoutes("incidents")


async def _visible(request: web.Request, incident_id: int) -> dict[str, Any]:
    """The incident's timeline, if the person's community scope covers it; else a 404."""
    ident = current_identity(request)
    assert ident is not None  # the role check ran first
    # Another community's incident is not found, exactly as one that does not exist.
    return await request.app[PAGING_SERVICE].timeline(incident_id, scope=ident.communities)


@routes.post("/api/incidents", body=IncidentIn, response=OpenedOut, status=201,
             extra_statuses={200: OpenedOut}, errors=(404,), summary="报告紧急事件 / report an emergency")
async def post_incident(request: web.Request, body: IncidentIn) -> web.Response:
    """201 and paging starts; 200 when it joins an open incident of the same community,
    building and category (the caller is added, nobody is paged again)."""
    req = incident_request_from_json(body.model_dump(exclude_none=True), source=body.source)
    ident = current_identity(request)
    if ident is not None and ident.scoped:
        async with request.app[SESSIONMAKER]() as session:
            comm = await community_in_scope(session, ident, req.community)
        req = replace(req, community=comm.id)
    result = await request.app[PAGING_SERVICE].open_incident(req)
    return json_response({"incident_id": result.incident_id, "created": result.created,
                          "report_id": result.report_id},
                         status=201 if result.created else 200)


@routes.get("/api/incidents/{incident_id}", path_model=IncidentPath, response=TimelineOut,
            summary="紧急事件时间线 / an incident's timeline")
async def get_incident(request: web.Request, path: IncidentPath) -> dict[str, Any]:
    """The incident, its reports and every page attempt, oldest first."""
    return await _visible(request, path.incident_id)


@routes.post("/api/incidents/{incident_id}/ack", path_model=IncidentPath, response=TimelineOut,
             errors=(409,), summary="确认接警 / acknowledge")
async def ack_incident(request: web.Request, path: IncidentPath) -> dict[str, Any]:
    """Stops the paging; 409 when the incident is already acknowledged or resolved."""
    ident = current_identity(request)
    assert ident is not None
    await _visible(request, path.incident_id)
    service = request.app[PAGING_SERVICE]
    await service.acknowledge(path.incident_id, user_id=ident.user_id,
                              name=ident.display_name or ident.username,
                              via="console" if ident.via == "session" else "api")
    return await service.timeline(path.incident_id)


@routes.post("/api/incidents/{incident_id}/resolve", path_model=IncidentPath, body=ResolveIn,
             body_required=False, response=TimelineOut, errors=(409,),
             summary="标记已解决 / resolve")
async def resolve_incident(request: web.Request, path: IncidentPath,
                           body: ResolveIn) -> dict[str, Any]:
    ident = current_identity(request)
    assert ident is not None
    await _visible(request, path.incident_id)
    service = request.app[PAGING_SERVICE]
    await service.resolve(path.incident_id, user_id=ident.user_id, note=body.note)
    return await service.timeline(path.incident_id)


def _fmt(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(tz).strftime("%m-%d %H:%M:%S")


@page()
async def incident_page(request: web.Request) -> web.Response:
    tl = await _visible(request, _incident_id(request))
    tz = ZoneInfo("Asia/Shanghai")
    e = html.escape
    place = "".join(x for x in (
        f"{tl['building']}栋" if tl["building"] else "", f"{tl['unit']}单元" if tl["unit"] else "",
        f"{tl['room']}室" if tl["room"] else "")) or "未知"
    rows: list[tuple[str, str]] = [(r["received_at"], (
        f"{'重复报警' if r['duplicate'] else '报警'}（{e(SOURCE_NAMES.get(r['source'], r['source']))}）"
        f" {e(r['caller_number'] or '')} {e(r['note'] or '')}")) for r in tl["reports"]]
    for a in tl["attempts"]:
        who = e(a["person"] or ("全体主管" if a["step"] == -1 else "—"))
        step = "主管告警" if a["step"] == -1 else f"第{a['round'] + 1}轮 第{a['step'] + 1}步"
        err = f"（{e(a['error_code'])}）" if a["error_code"] else ""
        detail = f" <span class=muted>{e(a['detail'])}</span>" if a["detail"] else ""
        rows.append((a["started_at"], (
            f"{step} · {e(CHANNEL_NAMES.get(a['channel'], a['channel']))} → {who}"
            f" {e(a['target'] or '')}：<b>{e(OUTCOME_NAMES.get(a['outcome'], a['outcome']))}</b>"
            f"{err}{detail}")))
    if tl["acked_at"]:
        rows.append((tl["acked_at"], f"<b>{e(tl['acked_by'] or '')} 已接警</b>"))
    rows.sort(key=lambda r: r[0] or "")
    items = "".join(f"<tr><td>{_fmt(t, tz)}</td><td>{text}</td></tr>" for t, text in rows)
    nxt = "".join(f"<li>{_fmt(n['due_at'], tz)} 第{n['round'] + 1}轮 第{n['step'] + 1}步</li>"
                  for n in tl["next_step"])
    ack_form = ""
    ident = current_identity(request)
    if tl["state"] == "open":
        csrf = e(ident.csrf_token) if ident is not None else ""
        ack_form = (f"<form method=post action='/incidents/{tl['id']}/ack'>"
                    f"<input type=hidden name=csrf_token value='{csrf}'>"
                    "<button type=submit>我来处理（确认接警）</button></form>")
    body = f"""
<h1>紧急事件 #{tl['id']}：{e(tl['category_name'])}</h1>
<p>{e(tl['community_name'] or '')} {e(place)} · 状态：<b>{e(STATE_NAMES.get(tl['state'], tl['state']))}</b>
{' · 接警人：' + e(tl['acked_by']) if tl['acked_by'] else ''}</p>
<p>报警电话：{e('、'.join(tl['callers']) or '—')} · 描述：{e(tl['summary'] or '—')}</p>
{ack_form}
<h2>时间线</h2><table><thead><tr><th>时间</th><th>事件</th></tr></thead><tbody>{items}</tbody></table>
{'<h2>下一步</h2><ul>' + nxt + '</ul>' if nxt else ''}
"""
    doc = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10"><title>紧急事件 #{tl['id']}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{e(static_url(request, 'plain.css'))}"></head>
<body>{body}</body></html>"""
    return web.Response(text=doc, content_type="text/html", charset="utf-8")


@page()
async def incident_page_ack(request: web.Request) -> web.Response:
    """The page's button: acknowledge, then back to the page (303)."""
    ident = current_identity(request)
    assert ident is not None
    incident_id = _incident_id(request)
    await _visible(request, incident_id)
    try:
        await request.app[PAGING_SERVICE].acknowledge(
            incident_id, user_id=ident.user_id, name=ident.display_name or ident.username,
            via="console")
    except IncidentClosed:
        pass  # someone was faster; the page shows who
    raise web.HTTPSeeOther(f"/incidents/{incident_id}")


@routes.put("/api/escalation-policies/{community}/{category}", path_model=PolicyPath,
            body=PolicyIn, response=PolicyOut, roles=("supervisor",), errors=(404,),
            summary="设置呼叫策略 / set an escalation policy")
async def put_policy(request: web.Request, path: PolicyPath, body: PolicyIn) -> dict[str, Any]:
    """The steps a page runs through for this community and category, in order."""
    ident = current_identity(request)
    assert ident is not None
    async with request.app[SESSIONMAKER]() as session:
        await community_in_scope(session, ident, path.community)
    row = await request.app[PAGING_SERVICE].set_policy(
        path.community, path.category,
        [s.model_dump(exclude_none=True) for s in body.steps],
        max_rounds=body.max_rounds, restart_wait_s=body.restart_wait_s, name=body.name)
    return {"id": row.id, "name": row.name, "steps": row.steps,
            "max_rounds": row.max_rounds, "restart_wait_s": row.restart_wait_s}


def add_paging_routes(app: web.Application) -> None:
    routes.add_to(app)
    setup_templates(app)  # /static/ for the page's style sheet, the 403 page
    app.router.add_get("/incidents/{incident_id}", incident_page)
    app.router.add_post("/incidents/{incident_id}/ack", incident_page_ack)
