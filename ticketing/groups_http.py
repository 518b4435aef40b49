"""REST API for group incidents (群发事件, ``ticketing.groups``).

    GET    /api/ticket-groups                            list (the person's communities)
    GET    /api/ticket-groups/{id}                       one, with its reporters and log
    POST   /api/ticket-groups/{id}/close                 {"note": ...}        supervisor
    POST   /api/ticket-groups/{id}/tickets               {"ticket_id", "reason"} front desk
    DELETE /api/ticket-groups/{id}/tickets/{ticket_id}   {"reason": ...}      front desk

``/api/incidents`` is paging's (an emergency page); these are ``ticket-groups``.
Another community's incident is a 404, as its tickets are. Owners' numbers are
masked by the app's masking layer like everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from callcenter.errors import Forbidden, InvalidInput, NotFound
from callcenter.web.api import (
    MAX_ID,
    ApiRoutes,
    CommunityRef,
    Id,
    Input,
    OneOf,
    Output,
    PathId,
    Text,
)
from ticketing.group_models import GROUP_STATES
from ticketing.groups import MAX_NOTE, TicketGroups
from ticketing.http import TICKETS, _identity
from ticketing.workflow import Actor

FRONT_DESK_ROLES = ("agent", "night_duty", "supervisor")
CLOSE_ROLES = ("supervisor",)


class GroupQuery(Input):
    state: Annotated[str, OneOf(GROUP_STATES)] | None = Field(
        None, description="open 处理中, closed 已办结")
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)


class GroupPath(Input):
    group_id: PathId


class GroupTicketPath(Input):
    group_id: PathId
    ticket_id: PathId


class CloseIn(Input):
    note: Text = Field("", max_length=MAX_NOTE,
                       description="办结说明（告知每位报告人） / the resolution")


class LinkIn(Input):
    ticket_id: Id
    reason: Text = Field("", max_length=MAX_NOTE, description="加入原因（必填） / why")


class UnlinkIn(Input):
    reason: Text = Field("", max_length=MAX_NOTE, description="移出原因（必填） / why")


class GroupOut(Output):
    id: int
    community_id: int
    community: str
    building: str | None = Field(description="楼栋；null 为全小区 / null: the whole community")
    category: str
    category_label: str
    label: str
    state: str
    state_label: str
    opened_at: str
    closed_at: str | None
    closed_by: str | None
    resolution: str
    reports: int = Field(description="工单数 / tickets")
    households: int = Field(description="报告户数 / households that reported")


class GroupDetailOut(GroupOut):
    members: list[dict[str, Any]] = Field(description="报告的工单 / the member tickets")
    events: list[dict[str, Any]] = Field(description="事件记录 / the incident's log")


class GroupPageOut(Output):
    items: list[GroupOut]
    total: int


def groups_of(request: web.Request) -> TicketGroups:
    groups = request.app[TICKETS].groups
    if groups is None:
        raise NotFound("群发事件未启用 / group incidents are not set up")
    return groups


def _actor(request: web.Request) -> Actor:
    ident = _identity(request)
    return Actor(ident.user_id, ident.username, ident.role)


routes = ApiRoutes("ticket-groups")


@routes.get("/api/ticket-groups", query=GroupQuery, response=GroupPageOut, errors=(403,),
            summary="群发事件列表 / group incidents")
async def list_groups(request: web.Request, query: GroupQuery) -> dict[str, Any]:
    """Open ones first, then the newest; only the person's communities."""
    ident = _identity(request)
    community_id: int | None = None
    if query.community:
        service = request.app[TICKETS].service
        community_id = (int(query.community) if query.community.isdigit()
                        else await service.community_id_for(query.community))
        if community_id is None:
            raise InvalidInput("小区不存在 / unknown community", field="community")
        if not ident.sees(community_id):
            raise Forbidden("不能查看其他小区的事件 / not your community",
                            details={"field": "community"})
    total, items = await groups_of(request).list(
        ident.communities, state=query.state, community_id=community_id, limit=query.limit,
        offset=query.offset)
    return {"items": [g.to_json() for g in items], "total": total}


@routes.get("/api/ticket-groups/{group_id}", path_model=GroupPath, response=GroupDetailOut,
            summary="一个群发事件 / one group incident")
async def get_group(request: web.Request, path: GroupPath) -> dict[str, Any]:
    """With every reporter's ticket and the incident's log."""
    view = await groups_of(request).get(path.group_id, _identity(request).communities)
    return view.to_json(detail=True)


@routes.post("/api/ticket-groups/{group_id}/close", path_model=GroupPath, body=CloseIn,
             response=GroupDetailOut, roles=CLOSE_ROLES, errors=(409,),
             summary="办结群发事件 / close a group incident")
async def close_group(request: web.Request, path: GroupPath, body: CloseIn) -> dict[str, Any]:
    """Every open member moves to 已完工 (each reporter gets a 回访), every member's log
    names the incident and the note; one transaction. 409 when already closed."""
    view = await groups_of(request).close(path.group_id, _actor(request), body.note,
                                          _identity(request).communities)
    return view.to_json(detail=True)


@routes.post("/api/ticket-groups/{group_id}/tickets", path_model=GroupPath, body=LinkIn,
             response=GroupDetailOut, roles=FRONT_DESK_ROLES, errors=(409,),
             summary="把工单加入群发事件 / add a ticket to a group incident")
async def link_ticket(request: web.Request, path: GroupPath, body: LinkIn) -> dict[str, Any]:
    """A ticket of the incident's community, in no other incident; logged with the reason."""
    view = await groups_of(request).link(path.group_id, body.ticket_id, _actor(request),
                                         body.reason, _identity(request).communities)
    return view.to_json(detail=True)


@routes.delete("/api/ticket-groups/{group_id}/tickets/{ticket_id}", path_model=GroupTicketPath,
               body=UnlinkIn, response=GroupDetailOut, roles=FRONT_DESK_ROLES, errors=(409,),
               summary="把工单移出群发事件 / take a ticket out of a group incident")
async def unlink_ticket(request: web.Request, path: GroupTicketPath, body: UnlinkIn
                        ) -> dict[str, Any]:
    """Logged with the reason on the ticket and the incident."""
    view = await groups_of(request).unlink(path.group_id, path.ticket_id, _actor(request),
                                           body.reason, _identity(request).communities)
    return view.to_json(detail=True)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)


