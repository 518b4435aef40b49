"""REST API for tickets: translate HTTP to ``TicketService`` calls.

    GET  /api/tickets                      list (filters, pagination)
    POST /api/tickets                      create
    GET  /api/tickets/{id}                 one ticket with its log and recording
    POST /api/tickets/{id}/transitions     {"to": state, "note": "..."}

Errors are domain errors, turned into JSON by the app's error middleware; a
400 names the field in ``details.field``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity, require_role
from callcenter.errors import InvalidInput, NotFound
from callcenter.web.errors import json_response, read_json_object
from ticketing.categories import CATEGORIES, PRIORITIES, SOURCES
from ticketing.lifecycle import STATES
from ticketing.services import NewTicket, TicketFilter, TicketService, TicketView

CREATE_ROLES = ("agent", "night_duty", "supervisor")
TRANSITION_ROLES = ("agent", "night_duty", "engineer", "supervisor")
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


TICKETS = web.AppKey("tickets", TicketsFeature)


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
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            when = datetime.combine(day + timedelta(days=1) if end else day, time(), tz)
        else:
            when = datetime.fromisoformat(raw)
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError:
        raise InvalidInput(f"{field} 不是有效日期 / {field} must be YYYY-MM-DD or an ISO datetime",
                           field=field) from None
    return when


async def parse_filter(query: Mapping[str, str], service: TicketService,
                       tz: ZoneInfo) -> TicketFilter:
    states: tuple[str, ...] = ()
    raw_state = query.get("state", "").strip()
    if raw_state:
        states = tuple(s.strip() for s in raw_state.split(",") if s.strip())
        bad = [s for s in states if s not in STATES]
        if bad:
            raise InvalidInput(f"状态无效 / unknown state {bad[0]!r}", field="state")
    category = query.get("category", "").strip() or None
    if category is not None and category not in CATEGORIES:
        raise InvalidInput(f"类别无效 / unknown category {category!r}", field="category")
    priority = query.get("priority", "").strip() or None
    if priority is not None and priority not in PRIORITIES:
        raise InvalidInput(f"优先级无效 / unknown priority {priority!r}", field="priority")
    community_id: int | None = None
    community = query.get("community", "").strip()
    if community:
        community_id = (int(community) if community.isdigit()
                        else await service.community_id_for(community))
        if community_id is None:
            raise InvalidInput(f"小区不存在 / unknown community {community!r}", field="community")
    since = parse_when(query.get("since"), "since", tz)
    until = parse_when(query.get("until"), "until", tz, end=True)
    if since and until and since >= until:
        raise InvalidInput("起始时间须早于结束时间 / since must be before until", field="until")
    text = query.get("q", "").strip() or None
    if text is not None and len(text) > 100:
        raise InvalidInput("搜索词过长 / q longer than 100 characters", field="q")
    return TicketFilter(
        states=states, category=category, priority=priority, community_id=community_id,
        room_id=parse_int(query.get("room_id"), "room_id", minimum=1), since=since, until=until,
        text=text,
    )


def _str(body: Mapping[str, Any], field: str, *, required: bool = False,
         default: str = "") -> str:
    value = body.get(field)
    if value is None:
        if required:
            raise InvalidInput(f"缺少 {field} / {field} is required", field=field)
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{field} 必须是字符串 / {field} must be a string", field=field)
    return value


def _opt_str(body: Mapping[str, Any], field: str) -> str | None:
    value = _str(body, field).strip()
    return value or None


def _opt_id(body: Mapping[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{field} 必须是正整数 / {field} must be a positive integer",
                           field=field)
    return value


async def parse_new_ticket(body: Mapping[str, Any], identity: Identity,
                           service: TicketService) -> NewTicket:
    source = _str(body, "source", default="api")
    if source not in SOURCES:
        raise InvalidInput(f"来源无效 / source must be one of {', '.join(SOURCES)}", field="source")
    category = _str(body, "category", required=True)
    if category not in CATEGORIES:
        raise InvalidInput(f"类别无效 / category must be one of {', '.join(CATEGORIES)}",
                           field="category")
    emergency = body.get("emergency")
    if emergency is not None and not isinstance(emergency, bool):
        raise InvalidInput("emergency 必须是 true/false / emergency must be a boolean",
                           field="emergency")
    priority = _str(body, "priority", default="emergency" if emergency else "normal")
    if priority not in PRIORITIES:
        raise InvalidInput("优先级无效 / priority must be emergency or normal", field="priority")
    summary = _str(body, "summary", required=True)
    community_id = _opt_id(body, "community_id")
    code = _opt_str(body, "community")
    if code is not None and community_id is None:
        community_id = await service.community_id_for(code)
        if community_id is None:
            raise InvalidInput(f"小区不存在 / unknown community {code!r}", field="community")
    return NewTicket(
        source=source,
        category=category,
        summary=summary,
        priority=priority,
        description=_str(body, "description"),
        caller_number=_str(body, "caller_number"),
        caller_name=_str(body, "caller_name"),
        person_id=_opt_id(body, "person_id"),
        room_id=_opt_id(body, "room_id"),
        community_id=community_id,
        location=_str(body, "location"),
        said_building=_opt_str(body, "building"),
        said_unit=_opt_str(body, "unit"),
        said_room=_opt_str(body, "room"),
        created_by=identity.username,
    )


def ticket_id_of(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("工单不存在 / no such ticket", details={"ticket_id": raw})
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


# -- handlers -----------------------------------------------------------------


@require_role()
async def list_tickets(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    filters = await parse_filter(request.query, feature.service, feature.timezone)
    limit = parse_int(request.query.get("limit"), "limit", minimum=1, maximum=MAX_LIMIT,
                      default=50)
    offset = parse_int(request.query.get("offset"), "offset", minimum=0, default=0)
    assert limit is not None and offset is not None
    page = await feature.service.list(filters, limit=limit, offset=offset)
    return json_response(page.to_json())


@require_role(*CREATE_ROLES)
async def create_ticket(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    body = await read_json_object(request)
    new = await parse_new_ticket(body, _identity(request), feature.service)
    view = await feature.service.create(new)
    resp = json_response(await ticket_json(feature, view), status=201)
    resp.headers["Location"] = f"/api/tickets/{view.id}"
    return resp


@require_role()
async def get_ticket(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    view = await feature.service.get(ticket_id_of(request))
    return json_response(await ticket_json(feature, view))


@require_role(*TRANSITION_ROLES)
async def transition_ticket(request: web.Request) -> web.StreamResponse:
    feature = request.app[TICKETS]
    ticket_id = ticket_id_of(request)
    body = await read_json_object(request)
    to_state = _str(body, "to", required=True)
    note = _str(body, "note")
    view = await feature.service.transition(ticket_id, to_state,
                                            actor=_identity(request).username, note=note)
    return json_response(await ticket_json(feature, view))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/tickets", list_tickets)
    app.router.add_post("/api/tickets", create_ticket)
    app.router.add_get("/api/tickets/{ticket_id}", get_ticket)
    app.router.add_post("/api/tickets/{ticket_id}/transitions", transition_ticket)
