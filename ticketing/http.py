"""REST API for tickets: translate HTTP to ``TicketService`` calls.

    GET  /api/tickets                      list (filters, pagination)
    POST /api/tickets                      create
    GET  /api/tickets/{id}                 one ticket with its log and recording

A ticket moves on through ``ticketing.workorders_http`` (``/api/tickets/{id}/actions``),
checked against the one table of who may do what (``ticketing.workflow``).

Request and response models are declared with each operation
(``callcenter.web.api``): they validate input and make the OpenAPI document.
Errors are domain errors, turned into JSON by the app's error middleware; a
400 names the field in ``details.field``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, ValidationError, field_validator

from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity
from callcenter.errors import Forbidden, InvalidInput, NotFound
from callcenter.web.api import (
    MAX_ID,
    ApiRoutes,
    Code,
    CommunityRef,
    Flag,
    Id,
    Input,
    OneOf,
    Output,
    PathId,
    Text,
    Timestamp,
    When,
    invalid,
)
from callcenter.web.errors import json_response
from ticketing.categories import (
    CATEGORIES,
    COMMON_AREAS,
    COMPLAINT_GRADES,
    PRIORITIES,
    SOURCES,
)
from ticketing.groups import TicketGroups
from ticketing.lifecycle import STATES
from ticketing.services import (
    MAX_DESCRIPTION,
    MAX_SUMMARY,
    NewTicket,
    TicketFilter,
    TicketService,
    TicketView,
)
from ticketing.workorders import WorkOrders

CREATE_ROLES = ("agent", "night_duty", "supervisor")
MAX_LIMIT = 200


class RecordingDetails(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def purged(self) -> bool: ...

    @property
    def transcript(self) -> str: ...

    @property
    def words(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def error_id(self) -> str | None: ...

    @property
    def reason(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


class RecordingLookup(Protocol):
    async def info(self, recording_id: int) -> RecordingDetails | None: ...


@dataclass(frozen=True, slots=True)
class TicketsFeature:
    service: TicketService
    recordings: RecordingLookup | None
    timezone: ZoneInfo
    workorders: WorkOrders | None = None
    groups: TicketGroups | None = None


TICKETS = web.AppKey("tickets", TicketsFeature)


# -- request and response models ---------------------------------------------


class TicketQuery(Input):
    state: Text | None = Field(None, max_length=200, description=(
        "逗号分隔 / comma-separated, of: " + ", ".join(STATES)))
    category: Annotated[str, OneOf(CATEGORIES)] | None = None
    priority: Annotated[str, OneOf(PRIORITIES)] | None = None
    complaint_grade: Annotated[str, OneOf(COMPLAINT_GRADES)] | None = Field(
        None, description="投诉分级 / complaint grade: general 一般, important 重要, major 重大")
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")
    room_id: PathId | None = None
    assignee_id: PathId | None = Field(None, description="处理人 / the assignee's user id")
    since: When | None = Field(None, description="含当天 / from this day or time")
    until: When | None = Field(None, description="含当天 / up to this day (inclusive) or time")
    q: Text | None = Field(None, max_length=100, description="搜索 / text search")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_ID)

    @field_validator("state")
    @classmethod
    def _states(cls, value: str | None) -> str | None:
        if value is not None:
            bad = [s for s in (p.strip() for p in value.split(",")) if s and s not in STATES]
            if bad:
                raise ValueError(f"状态无效 / unknown state {bad[0][:20]!r}")
        return value


class NewTicketIn(Input):
    source: Annotated[str, OneOf(SOURCES)] = "api"
    category: Annotated[str, OneOf(CATEGORIES)]
    summary: Text = Field(max_length=MAX_SUMMARY, examples=["3栋1单元1201 厨房漏水"])
    emergency: Flag | None = None
    priority: Annotated[str, OneOf(PRIORITIES)] | None = None
    complaint_grade: Annotated[str, OneOf(COMPLAINT_GRADES)] | None = Field(
        None, description="投诉分级（仅服务投诉；默认一般） / complaint grade, for category "
                          "complaint only (default general): general, important, major")
    description: Text = Field("", max_length=MAX_DESCRIPTION)
    caller_number: Text = Field("", max_length=32)
    caller_name: Text = Field("", max_length=100)
    person_id: Id | None = None
    room_id: Id | None = None
    community_id: Id | None = None
    community: Code | None = Field(None, description="小区编码 / community code")
    location: Text = Field("", max_length=200)
    building: Text | None = Field(None, max_length=32)
    unit: Text | None = Field(None, max_length=32)
    room: Text | None = Field(None, max_length=32)
    common_area: Annotated[str, OneOf(COMMON_AREAS)] | None = Field(
        None, description="公共区域（与 building 合用：3栋电梯厅） / a common area")
    idempotency_key: Annotated[str, Field(min_length=1, max_length=64,
                                          pattern=r"^[A-Za-z0-9_.:-]+$")] | None = Field(
        None, description="防重复提交：同一个键只建一张工单（也可用 Idempotency-Key 头） / "
                          "the same key makes one ticket (or the Idempotency-Key header)")


class TicketPath(Input):
    ticket_id: PathId


class TicketEventOut(Output):
    to: str
    actor: str
    at: Timestamp
    note: str
    from_: str | None = Field(alias="from")
    action: str | None = None
    actor_role: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class SaidLocationOut(Output):
    building: str | None
    unit: str | None
    room: str | None


class TicketOut(Output):
    id: int
    number: str
    community_id: int | None
    community: str | None
    source: str
    caller_number: str
    caller_name: str
    person_id: int | None
    room_id: int | None
    location: str
    said_location: SaidLocationOut
    location_conflict: bool
    category: str
    priority: str
    complaint_grade: str | None = Field(None, description="投诉分级 / general, important, major")
    complaint_grade_label: str | None = Field(None, description="一般投诉、重要投诉、重大投诉")
    group_id: int | None = Field(None, description="群发事件 / the group incident it is part of")
    department: str
    state: str
    summary: str
    description: str
    recording_id: int | None
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp
    common_area: str | None = None
    assignee: dict[str, Any] | None = Field(None, description="处理人 / user_id, name")
    appointment_at: Timestamp | None = Field(None, description="预约上门时间")
    follow_up: dict[str, Any] | None = Field(None, description="回访：score, resolved, comment")
    materials: str = ""
    cost: str | None = None


class TicketDetailOut(TicketOut):
    events: list[TicketEventOut]
    photos: list[dict[str, Any]] = Field(default_factory=list, description="完工照片")
    callbacks: list[dict[str, Any]] = Field(default_factory=list,
                                            description="主管回访任务 / callback tasks")
    recording: dict[str, Any] | None = Field(description="录音与转写 / recording and transcript")
    sla: dict[str, Any] = Field(default_factory=dict,
                                description="SLA 超时 / standing breaches: red, breaches[kind, "
                                            "due_at, fired_at, text]")


class TicketPageOut(Output):
    items: list[TicketOut]
    total: int
    limit: int
    offset: int


# -- parsing ------------------------------------------------------------------


def parse_int(raw: str | None, field: str, *, minimum: int = 0, maximum: int | None = None,
              default: int | None = None) -> int | None:
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise InvalidInput(f"{field} 必须是整数 / {field} must be an integer", field=field)
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidInput(f"{field} 超出范围 / {field} must be {bound}", field=field)
    return value


def parse_when(raw: str | None, field: str, tz: ZoneInfo, *, end: bool = False) -> datetime | None:
    """``2026-11-22`` (a local day; as an end bound, the day is included) or an ISO datetime."""
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        return datetime.combine(day + timedelta(days=1) if end else day, time(), tz)
    when = datetime.fromisoformat(raw)
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


async def parse_filter(query: Mapping[str, str] | TicketQuery, service: TicketService,
                       tz: ZoneInfo) -> TicketFilter:
    """The list's filters from a validated query (or the page's raw one, validated here)."""
    if not isinstance(query, TicketQuery):
        raw = {k: v for k, v in query.items()
               if k in TicketQuery.model_fields and k not in ("limit", "offset") and v.strip()}
        try:
            query = TicketQuery.model_validate(raw)
        except ValidationError as exc:
            raise invalid(exc, where="query") from None
    states = tuple(s.strip() for s in (query.state or "").split(",") if s.strip())
    community_id: int | None = None
    if query.community:
        community_id = (int(query.community) if query.community.isdigit()
                        else await service.community_id_for(query.community))
        if community_id is None:
            raise InvalidInput(f"小区不存在 / unknown community {query.community!r}",
                               field="community")
    since = parse_when(query.since, "since", tz)
    until = parse_when(query.until, "until", tz, end=True)
    if since and until and since >= until:
        raise InvalidInput("起始时间须早于结束时间 / since must be before until", field="until")
    return TicketFilter(
        states=states, category=query.category, priority=query.priority,
        complaint_grade=query.complaint_grade,
        community_id=community_id, room_id=query.room_id, assignee_id=query.assignee_id,
        since=since, until=until,
        text=(query.q or "").strip() or None,
    )


async def parse_new_ticket(body: NewTicketIn, identity: Identity,
                           service: TicketService) -> NewTicket:
    priority = body.priority or ("emergency" if body.emergency else "normal")
    community_id = body.community_id
    code = (body.community or "").strip() or None
    if code is not None and community_id is None:
        community_id = await service.community_id_for(code)
        if community_id is None:
            raise InvalidInput(f"小区不存在 / unknown community {code!r}", field="community")
    if identity.scoped:
        community_id = community_id or identity.only_community
        if community_id is None:  # several communities: the person says which
            raise InvalidInput("请选择小区 / community is required", field="community")
        if not identity.sees(community_id):
            raise Forbidden("不能为其他小区建单 / not your community",
                            details={"field": "community"})
    return NewTicket(
        source=body.source,
        category=body.category,
        summary=body.summary,
        priority=priority,
        description=body.description,
        caller_number=body.caller_number,
        caller_name=body.caller_name,
        person_id=body.person_id,
        room_id=body.room_id,
        community_id=community_id,
        location=body.location,
        said_building=(body.building or "").strip() or None,
        said_unit=(body.unit or "").strip() or None,
        said_room=(body.room or "").strip() or None,
        created_by=identity.username,
        common_area=body.common_area or "",
        idempotency_key=body.idempotency_key,
        complaint_grade=body.complaint_grade,
    )


def ticket_id_of(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= MAX_ID:
        raise NotFound("工单不存在 / no such ticket", details={"field": "ticket_id"})
    return int(raw)


async def ticket_json(feature: TicketsFeature, view: TicketView) -> dict[str, Any]:
    data = view.to_json(with_events=True)
    data["recording"] = None
    if view.recording_id is not None and feature.recordings is not None:
        info = await feature.recordings.info(view.recording_id)
        data["recording"] = info.to_json() if info else None
    return data


def _identity(request: web.Request) -> Identity:
    ident = current_identity(request)
    assert ident is not None  # require_role ran first
    return ident


async def visible_ticket(request: web.Request, ticket_id: int) -> TicketView:
    """The ticket, if the signed-in person's community scope covers it; else a 404
    (another community's ticket is not even said to exist)."""
    try:
        return await request.app[TICKETS].service.get(
            ticket_id, scope=_identity(request).communities)
    except NotFound:
        raise NotFound("工单不存在 / no such ticket", details={"field": "ticket_id"}) from None


def scoped_filter(identity: Identity, filters: TicketFilter) -> TicketFilter:
    """The filters narrowed to the person's communities (asking for another: 403)."""
    if identity.communities is None:
        return filters
    if filters.community_id is not None and not identity.sees(filters.community_id):
        raise Forbidden("不能查看其他小区的工单 / not your community",
                        details={"field": "community"})
    return replace(filters, scope=identity.communities)


# -- handlers -----------------------------------------------------------------

routes = ApiRoutes("tickets")


@routes.get("/api/tickets", query=TicketQuery, response=TicketPageOut, errors=(403,),
            summary="工单列表 / list tickets")
async def list_tickets(request: web.Request, query: TicketQuery) -> dict[str, Any]:
    """Newest first, filtered; ``total`` counts every match, ``limit``/``offset`` page."""
    feature = request.app[TICKETS]
    filters = scoped_filter(_identity(request), await parse_filter(
        query, feature.service, feature.timezone))
    page = await feature.service.list(filters, limit=query.limit, offset=query.offset)
    return page.to_json()


@routes.post("/api/tickets", body=NewTicketIn, response=TicketDetailOut, status=201,
             roles=CREATE_ROLES, extra_statuses={200: TicketDetailOut},
             summary="新建工单 / create a ticket")
async def create_ticket(request: web.Request, body: NewTicketIn) -> web.StreamResponse:
    """The ticket as created (its number, department from the category); ``Location``
    is its URL. With an idempotency key (the body's ``idempotency_key`` or the
    ``Idempotency-Key`` header) seen before: that ticket, 200, nothing new made."""
    feature = request.app[TICKETS]
    header = request.headers.get("Idempotency-Key")
    if header is not None and body.idempotency_key is None:
        try:
            body = NewTicketIn.model_validate({**body.model_dump(), "idempotency_key": header})
        except ValidationError as exc:
            raise invalid(exc) from None
    new = await parse_new_ticket(body, _identity(request), feature.service)
    view, created = await feature.service.create_once(new)
    resp = json_response(await ticket_json(feature, view), status=201 if created else 200)
    resp.headers["Location"] = f"/api/tickets/{view.id}"
    if not created:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


@routes.get("/api/tickets/{ticket_id}", path_model=TicketPath, response=TicketDetailOut,
            summary="一张工单 / one ticket")
async def get_ticket(request: web.Request, path: TicketPath) -> dict[str, Any]:
    """The ticket with its log (``events``) and its recording, if any."""
    feature = request.app[TICKETS]
    view = await visible_ticket(request, path.ticket_id)
    return await ticket_json(feature, view)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
