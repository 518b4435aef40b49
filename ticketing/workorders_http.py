"""REST API for work orders: actions on a ticket, its photos, the departments.

    POST /api/tickets/{id}/actions              {"action": "dispatch", ...}
    POST /api/tickets/{id}/photos               multipart, field ``photo`` (repeatable)
    GET  /tickets/{id}/photos/{photo_id}         the image (also for the pages)
    GET  /api/departments?community=            a community's departments and people
    PUT  /api/departments/{community}/{department}   create or change one (supervisor)

Who may take which action is ``ticketing.workflow``'s table: every signed-in
person may call the actions route, the table answers 409 (not from this
state) or 403 (not for you), a bad field 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from aiohttp import web
from aiohttp.web_request import FileField
from pydantic import Field

from callcenter.auth.middleware import require_role
from callcenter.errors import Forbidden, InvalidInput, NotFound
from callcenter.web.api import (
    ApiRoutes,
    Code,
    CommunityRef,
    Flag,
    Id,
    Input,
    OneOf,
    Output,
    Text,
    When,
)
from callcenter.web.errors import json_response
from ticketing.categories import COMPLAINT_GRADES
from ticketing.departments import MemberInput, list_departments, put_department
from ticketing.http import (
    TICKETS,
    TicketDetailOut,
    TicketPath,
    _identity,
    parse_when,
    ticket_id_of,
    ticket_json,
    visible_ticket,
)
from ticketing.photos import MAX_PHOTO_BYTES
from ticketing.workflow import ACTIONS, Actor
from ticketing.workorders import MAX_NOTE, ActionInput, WorkOrders

MAX_PHOTOS_PER_UPLOAD = 6
SUPERVISOR_ROLES = ("supervisor",)


class ActionIn(Input):
    action: Annotated[str, OneOf(a for a in ACTIONS if a != "add_photo")] = Field(
        description="dispatch 派单, reassign 改派, return 退单, accept 接单, arrive 到场, "
                    "complete 完工, follow_up 回访, callback_done 完成回访任务, archive 归档, "
                    "reopen 重开, cancel 取消, grade 调整投诉等级")
    note: Text = Field("", max_length=MAX_NOTE)
    reason: Text = Field("", max_length=MAX_NOTE,
                         description="退单或调整投诉等级的原因 / why it is returned or regraded")
    complaint_grade: Annotated[str, OneOf(COMPLAINT_GRADES)] | None = Field(
        None, description="调整投诉等级 / the new grade: general 一般, important 重要, major 重大")
    department: Code | None = Field(None, description="派单部门编码 / department code")
    assignee_id: Id | None = Field(None, description="处理人 / staff user id")
    on_call: Flag = Field(False, description="派给部门当前值班人员 / the on-call person now")
    appointment_at: When | None = Field(None, description="预约上门时间 / agreed visit time")
    score: Annotated[int, Field(ge=1, le=5, strict=True)] | None = Field(
        None, description="回访满意度 1–5")
    resolved: Flag | None = Field(None, description="回访：问题是否解决")
    comment: Text = Field("", max_length=MAX_NOTE)
    materials: Text = Field("", max_length=500)
    cost: Annotated[str, Field(max_length=16, pattern=r"^\d{1,7}(\.\d{1,2})?$")] | None = Field(
        None, description="费用（元） / cost in yuan, e.g. 35.50")


class DepartmentQuery(Input):
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")


class DepartmentPath(Input):
    community: CommunityRef
    department: Code


class MemberIn(Input):
    user_id: Id
    head: Flag = False


class DepartmentIn(Input):
    name: Text = Field(min_length=1, max_length=50, examples=["工程部"])
    oncall_role: Annotated[str, OneOf(("agent", "night_duty", "engineer", "supervisor"))] | None \
        = None
    active: Flag = True
    members: list[MemberIn] | None = Field(None, max_length=200)


class DepartmentOut(Output):
    id: int
    community_id: int
    code: str
    name: str
    oncall_role: str | None
    active: bool
    members: list[dict[str, Any]]


class DepartmentsOut(Output):
    departments: list[DepartmentOut]


def workorders_of(request: web.Request) -> WorkOrders:
    wo = request.app[TICKETS].workorders
    if wo is None:
        raise NotFound("工单派单未启用 / work orders are not set up")
    return wo


def actor_of(request: web.Request) -> Actor:
    ident = _identity(request)
    return Actor(ident.user_id, ident.username, ident.role)


def action_input(body: ActionIn, request: web.Request) -> ActionInput:
    tz = request.app[TICKETS].timezone
    try:
        appointment = parse_when(body.appointment_at, "appointment_at", tz)
    except ValueError:
        raise InvalidInput("预约时间无效 / appointment_at: a date and time",
                           field="appointment_at") from None
    if appointment is not None and body.appointment_at and len(body.appointment_at) == 10:
        raise InvalidInput("预约时间须含时刻 / appointment_at: a date and time",
                           field="appointment_at")
    return ActionInput(note=body.note, reason=body.reason, department=body.department,
                       assignee_id=body.assignee_id, on_call=body.on_call,
                       appointment_at=appointment, score=body.score, resolved=body.resolved,
                       comment=body.comment, materials=body.materials, cost=body.cost,
                       complaint_grade=body.complaint_grade)


routes = ApiRoutes("workorders")


@routes.post("/api/tickets/{ticket_id}/actions", path_model=TicketPath, body=ActionIn,
             response=TicketDetailOut, roles=(), errors=(403, 409),
             summary="工单操作（派单、接单、到场、完工、回访、归档…） / act on a ticket")
async def ticket_action(request: web.Request, path: TicketPath, body: ActionIn
                        ) -> dict[str, Any]:
    """One step of the work order. 409 when the ticket's state does not allow it,
    403 when the action is not for this person (``ticketing.workflow``)."""
    feature = request.app[TICKETS]
    await visible_ticket(request, path.ticket_id)
    view = await workorders_of(request).act(path.ticket_id, body.action, actor_of(request),
                                            action_input(body, request))
    return await ticket_json(feature, view)


async def read_photos(request: web.Request) -> tuple[list[bytes], dict[str, str]]:
    """The ``photo`` files of a multipart form (each capped) and its text fields. The
    whole body is bounded by the app's ``client_max_size`` (413 beyond it)."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("请以 multipart/form-data 上传照片", field="photo")
    try:
        form = await request.post()
    except ValueError:
        raise InvalidInput("表单无效 / the form cannot be read", field="body") from None
    return form_photos(form), {k: v for k, v in form.items() if isinstance(v, str)}


def form_photos(form: Mapping[str, Any]) -> list[bytes]:
    """The non-empty ``photo`` files of a parsed form, each at most ``MAX_PHOTO_BYTES``."""
    getall = getattr(form, "getall", None)
    values = getall("photo", []) if getall else [form.get("photo")]
    photos: list[bytes] = []
    for value in values:
        if not isinstance(value, FileField):
            continue
        data = value.file.read(MAX_PHOTO_BYTES + 1)
        if not data:
            continue  # the form's empty file input
        if len(data) > MAX_PHOTO_BYTES:
            raise InvalidInput(f"照片不能超过 {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
                               field="photo")
        if len(photos) >= MAX_PHOTOS_PER_UPLOAD:
            raise InvalidInput(f"一次最多上传 {MAX_PHOTOS_PER_UPLOAD} 张照片", field="photo")
        photos.append(data)
    return photos


@routes.post("/api/tickets/{ticket_id}/photos", path_model=TicketPath,
             response=TicketDetailOut, roles=(), errors=(400, 403, 409, 413),
             summary="上传完工照片 / add photos of the work")
async def add_photos(request: web.Request, path: TicketPath) -> dict[str, Any]:
    """multipart/form-data, one or more ``photo`` parts (JPEG, PNG, GIF or WebP, each at
    most 5 MB), optional ``note``. For the assignee, their department head, a supervisor."""
    feature = request.app[TICKETS]
    await visible_ticket(request, path.ticket_id)
    photos, fields = await read_photos(request)
    view = await workorders_of(request).act(
        path.ticket_id, "add_photo", actor_of(request),
        ActionInput(note=fields.get("note", "")[:MAX_NOTE], photos=photos))
    return await ticket_json(feature, view)


@require_role()
async def photo_file(request: web.Request) -> web.StreamResponse:
    ticket_id = ticket_id_of(request)
    raw = request.match_info["photo_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise NotFound("照片不存在 / no such photo", details={"field": "photo_id"})
    await visible_ticket(request, ticket_id)
    data, ctype = await workorders_of(request).photo(ticket_id, int(raw))
    resp = web.Response(body=data, content_type=ctype)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Disposition"] = "inline"
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


async def _community_id(request: web.Request, ref: str | int | None) -> int:
    ident = _identity(request)
    feature = request.app[TICKETS]
    if ref is None:
        only = ident.only_community
        if only is None:
            raise InvalidInput("请指定小区 / community is required", field="community")
        return only
    cid = int(ref) if str(ref).isdigit() else await feature.service.community_id_for(str(ref))
    if cid is None or not await feature.service.communities(cid):
        raise InvalidInput("小区不存在 / unknown community", field="community")
    if not ident.sees(cid):
        raise Forbidden("不能查看其他小区的部门 / not your community",
                        details={"field": "community"})
    return cid


@routes.get("/api/departments", query=DepartmentQuery, response=DepartmentsOut,
            errors=(403,), summary="部门与人员 / a community's departments and their people")
async def get_departments(request: web.Request, query: DepartmentQuery) -> dict[str, Any]:
    """The defaults (工程部, 保洁部, 秩序部, 客服部, 绿化部) are added the first time."""
    cid = await _community_id(request, query.community)
    async with request.app[TICKETS].service.sessionmaker() as session:
        depts = await list_departments(session, cid)
        await session.commit()
    return {"departments": [d.to_json() for d in depts]}


@routes.put("/api/departments/{community}/{department}", path_model=DepartmentPath,
            body=DepartmentIn, response=DepartmentOut, roles=SUPERVISOR_ROLES,
            summary="设置部门 / create or change a department")
async def set_department(request: web.Request, path: DepartmentPath,
                         body: DepartmentIn) -> web.StreamResponse:
    """``members`` (when given) replaces the department's people; ``head`` marks a head."""
    cid = await _community_id(request, path.community)
    async with request.app[TICKETS].service.sessionmaker() as session:
        view = await put_department(
            session, cid, path.department, name=body.name, oncall_role=body.oncall_role,
            active=body.active,
            members=None if body.members is None else [MemberInput(m.user_id, m.head)
                                                       for m in body.members])
        await session.commit()
    return json_response(view.to_json())


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
    app.router.add_get("/tickets/{ticket_id}/photos/{photo_id}", photo_file)

