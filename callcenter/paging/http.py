"""HTTP: open, read, acknowledge and resolve incidents (JSON); the pages are in
``callcenter.paging.pages``."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import ConfigDict, Field

from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.middleware import current_identity
from callcenter.errors import NotFound
from callcenter.oncall.services import community_in_scope
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
from callcenter.web.templating import setup_templates

PAGING_SERVICE = web.AppKey("paging_service", PagingService)

STATE_NAMES = {"open": "处理中（呼叫中）", "acknowledged": "已接警", "resolved": "已解决"}
OUTCOME_NAMES = {
    "accepted": "接警", "passed": "转下一位（按2）", "already_handled": "接听时已有人接警",
    "answered": "已接听", "no_answer": "无人接听",
    "busy": "忙", "failed": "失败", "sent": "已发送", "hung_up": "播报中挂断",
    "no_input": "未按键", "unknown_digit": "按键无效", "interrupted": "服务中断",
    "deferred": "电话系统暂不可用，稍后重拨", None: "进行中",
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


def incident_id_of(request: web.Request) -> int:
    raw = request.match_info["incident_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise NotFound("紧急事件不存在 / no such incident", details={"field": "incident_id"})
    return int(raw)


routes = ApiRoutes("incidents")


async def visible_incident(request: web.Request, incident_id: int) -> dict[str, Any]:
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
    return await visible_incident(request, path.incident_id)


@routes.post("/api/incidents/{incident_id}/ack", path_model=IncidentPath, response=TimelineOut,
             errors=(409,), summary="确认接警 / acknowledge")
async def ack_incident(request: web.Request, path: IncidentPath) -> dict[str, Any]:
    """Stops the paging; 409 when the incident is already acknowledged or resolved."""
    ident = current_identity(request)
    assert ident is not None
    await visible_incident(request, path.incident_id)
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
    await visible_incident(request, path.incident_id)
    service = request.app[PAGING_SERVICE]
    await service.resolve(path.incident_id, user_id=ident.user_id, note=body.note)
    return await service.timeline(path.incident_id)


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
    setup_templates(app)  # the pages' templates and style sheets, the 403 page
