"""HTTP: ``GET /api/oncall/now`` and the ``/oncall`` page (next 14 days)."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.appkeys import CLOCK, SESSIONMAKER
from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity
from callcenter.directory.models import StaffUser
from callcenter.errors import InvalidInput
from callcenter.oncall.models import OnCallSchedule
from callcenter.oncall.services import (
    DEFAULT_TZ,
    ChainSpec,
    ShiftInput,
    add_override,
    calendar,
    community_in_scope,
    create_schedule,
    find_community,
    who_is_on_call,
)
from callcenter.web.api import (
    ApiRoutes,
    CommunityRef,
    Day,
    Id,
    Input,
    Output,
    Text,
    Timestamp,
    When,
)
from callcenter.web.pages import page
from callcenter.web.templating import setup_templates, static_url
from callcenter.web.zh import WEEKDAYS

ROLE_NAMES = {"night_duty": "夜班值守", "engineer": "工程维修", "agent": "客服",
              "supervisor": "主管", "admin": "管理员"}


class OnCallNowQuery(Input):
    role: Text = Field(max_length=16, examples=["night_duty", "engineer"])
    community: CommunityRef | None = Field(None, description="小区编码 / community code")


class OnCallPersonOut(Output):
    user_id: int
    name: str
    label: str = Field(description="primary / backup / supervisor")
    extension: str | None
    mobile: str | None


class OnCallNowOut(Output):
    community: str
    role: str
    at: Timestamp | None
    shift: str | None
    until: Timestamp | None
    people: list[OnCallPersonOut]


class ShiftIn(Input):
    name: Text | None = Field(None, max_length=32)
    start: str = Field(pattern=r"^[0-9]{1,2}:[0-9]{2}$", examples=["18:00"])
    end: str = Field(pattern=r"^[0-9]{1,2}:[0-9]{2}$", examples=["08:30"])
    members: list[Id] = Field([], max_length=100, description="轮值人员 / staff ids, in turn")
    rotation_start: Day
    period_days: int = Field(7, ge=1, le=366, strict=True)


class ChainLinkIn(Input):
    label: Literal["primary", "backup", "supervisor"]
    source: Literal["rotation", "user"] = "rotation"
    offset: int = Field(0, ge=0, le=100, strict=True)
    user_id: Id | None = None


class ScheduleIn(Input):
    shifts: list[ShiftIn] = Field(min_length=1, max_length=20)
    chain: list[ChainLinkIn] = Field([], max_length=20)
    name: Text = Field("", max_length=100)


class SchedulePath(Input):
    community: CommunityRef
    role: Text = Field(max_length=16)


class ScheduleSavedOut(Output):
    saved: bool
    now: OnCallNowOut


class OverrideIn(Input):
    community: CommunityRef
    role: Text = Field(max_length=16)
    starts_at: When
    ends_at: When
    user_id: Id
    replaces_user_id: Id | None = None
    reason: Text = Field("", max_length=2000, description="前 200 字保存 / first 200 kept")


class OverrideOut(Output):
    id: int


routes = ApiRoutes("oncall")


def _me(request: web.Request) -> Identity:
    ident = current_identity(request)
    assert ident is not None  # the role check ran first
    return ident


@routes.get("/api/oncall/now", query=OnCallNowQuery, response=OnCallNowOut, errors=(404,),
            summary="现在谁值班 / who is on call now")
async def oncall_now(request: web.Request, query: OnCallNowQuery) -> dict[str, Any]:
    """The people to try for ``role``, in chain order, and until when that holds."""
    async with request.app[SESSIONMAKER]() as session:
        comm = await community_in_scope(session, _me(request), query.community)
        answer = await who_is_on_call(session, comm, query.role, request.app[CLOCK].now())
        tz = ZoneInfo(comm.timezone or DEFAULT_TZ)
    return answer.to_json(tz)


def _page(title: str, body: str, static: str) -> web.Response:
    doc = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{html.escape(static)}">
</head><body>{body}</body></html>"""
    return web.Response(text=doc, content_type="text/html", charset="utf-8")


@page()
async def oncall_page(request: web.Request) -> web.Response:
    clock = request.app[CLOCK]
    now = clock.now()
    community = request.query.get("community") or None
    only_role = request.query.get("role") or None
    sections: list[str] = []
    async with request.app[SESSIONMAKER]() as session:
        comm = await community_in_scope(session, _me(request), community)
        tz = ZoneInfo(comm.timezone or DEFAULT_TZ)
        roles = list((await session.scalars(
            select(OnCallSchedule.role).where(OnCallSchedule.community_id == comm.id)
            .order_by(OnCallSchedule.role))).all())
        if only_role:
            roles = [r for r in roles if r == only_role]
        for role in roles:
            current = await who_is_on_call(session, comm, role, now)
            entries = await calendar(session, comm, role, now, days=14)
            by_day: dict[date, list[str]] = defaultdict(list)
            shift_names: list[str] = []
            for e in entries:
                if e.shift not in shift_names:
                    shift_names.append(e.shift)
            cells: dict[tuple[date, str], str] = {}
            for e in entries:
                d = e.starts_at.astimezone(tz).date()
                start = e.starts_at.astimezone(tz).strftime("%H:%M")
                end = e.ends_at.astimezone(tz).strftime("%H:%M")
                who = "<br>".join(
                    f"{html.escape(p.name)} <span class=muted>({_label(p.label)})</span>"
                    for p in e.people) or "<span class=muted>无人</span>"
                cells[(d, e.shift)] = f"<span class=muted>{start}–{end}</span><br>{who}"
                by_day[d].append(e.shift)
            today = now.astimezone(tz).date()
            rows = []
            for k in range(14):
                d = today + timedelta(days=k)
                cls = " class=today" if k == 0 else ""
                tds = "".join(f"<td>{cells.get((d, s), '')}</td>" for s in shift_names)
                rows.append(f"<tr{cls}><th>{d.month}月{d.day}日 周{WEEKDAYS[d.weekday()]}</th>"
                            f"{tds}</tr>")
            head = "".join(f"<th>{html.escape(s)}</th>" for s in shift_names)
            now_people = "、".join(f"{html.escape(p.name)}（{_label(p.label)}）"
                                  for p in current.people) or "无人值班"
            until = (current.until.astimezone(tz).strftime("%m-%d %H:%M")
                     if current.until else "—")
            sections.append(
                f"<h2>{html.escape(ROLE_NAMES.get(role, role))}</h2>"
                f"<div class=now>当前值班：{now_people}，至 {until}</div>"
                f"<table><thead><tr><th>日期</th>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")
    if not sections:
        sections.append("<p>尚未设置值班表。</p>")
    title = f"{comm.name} · 值班表（未来14天）"
    return _page(title, f"<h1>{html.escape(title)}</h1>{''.join(sections)}",
                 static_url(request, "plain.css"))


def _label(label: str) -> str:
    return {"primary": "主值班", "backup": "备班", "supervisor": "主管"}.get(label, label)


def _aware(value: str, tz: ZoneInfo) -> datetime:
    when = datetime.fromisoformat(value if len(value) != 10 else value + "T00:00:00")
    return when if when.tzinfo else when.replace(tzinfo=tz)


async def _check_staff(session: AsyncSession, ids: dict[str, int | None]) -> None:
    """Every named staff id exists (a link to no one would fail the foreign key)."""
    wanted = {i for i in ids.values() if i is not None}
    found = set((await session.scalars(select(StaffUser.id).where(
        StaffUser.id.in_(wanted)))).all()) if wanted else set()
    for name, value in ids.items():
        if value is not None and value not in found:
            raise InvalidInput(f"员工不存在 / no staff user {value}", field=name)


@routes.put("/api/oncall/schedules/{community}/{role}", path_model=SchedulePath,
            body=ScheduleIn, response=ScheduleSavedOut, roles=("supervisor",), errors=(404,),
            summary="设置值班表 / set an on-call schedule")
async def put_schedule(request: web.Request, path: SchedulePath,
                       body: ScheduleIn) -> dict[str, Any]:
    """Replaces the role's schedule: shifts with their rotation, and the chain to ring."""
    async with request.app[SESSIONMAKER]() as session:
        await community_in_scope(session, _me(request), path.community)
        await _check_staff(session, {f"chain[{i}].user_id": c.user_id
                                     for i, c in enumerate(body.chain)})
        await create_schedule(
            session, community=path.community, role=path.role, name=body.name,
            shifts=[ShiftInput(name=s.name or f"shift{i + 1}", start=s.start, end=s.end,
                               members=list(s.members), rotation_start=s.rotation_start,
                               period_days=s.period_days)
                    for i, s in enumerate(body.shifts)],
            chain=[ChainSpec(position=i, label=c.label, source=c.source, offset=c.offset,
                             user_id=c.user_id) for i, c in enumerate(body.chain)])
        comm = await find_community(session, path.community)
        answer = await who_is_on_call(session, comm, path.role, request.app[CLOCK].now())
    return {"saved": True, "now": answer.to_json(ZoneInfo(comm.timezone))}


@routes.post("/api/oncall/overrides", body=OverrideIn, response=OverrideOut, status=201,
             errors=(404,),
             roles=("supervisor",), summary="临时换班 / an override (swap a shift)")
async def post_override(request: web.Request, body: OverrideIn) -> dict[str, Any]:
    """``user_id`` is on call from ``starts_at`` to ``ends_at`` (local time without an
    offset), in place of ``replaces_user_id`` or of everyone."""
    async with request.app[SESSIONMAKER]() as session:
        comm = await community_in_scope(session, _me(request), body.community)
        tz = ZoneInfo(comm.timezone or DEFAULT_TZ)
        await _check_staff(session, {"user_id": body.user_id,
                                     "replaces_user_id": body.replaces_user_id})
        row = await add_override(
            session, community=comm.id, role=body.role,
            starts_at=_aware(body.starts_at, tz), ends_at=_aware(body.ends_at, tz),
            user_id=body.user_id, replaces_user_id=body.replaces_user_id,
            reason=body.reason[:200])
    return {"id": row.id}


def add_oncall_routes(app: web.Application) -> None:
    routes.add_to(app)
    setup_templates(app)  # /static/ for the page's style sheet, the 403 page
    app.router.add_get("/oncall", oncall_page)
