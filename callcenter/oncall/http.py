"""HTTP: ``GET /api/oncall/now`` and the ``/oncall`` page (next 14 days)."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER
from callcenter.auth.middleware import require_role
from callcenter.errors import InvalidInput
from callcenter.oncall.models import OnCallSchedule
from callcenter.oncall.services import (
    DEFAULT_TZ,
    ChainSpec,
    ShiftInput,
    add_override,
    calendar,
    create_schedule,
    find_community,
    who_is_on_call,
)
from callcenter.web.errors import json_response, read_json_object

ROLE_NAMES = {"night_duty": "夜班值守", "engineer": "工程维修", "agent": "客服",
              "supervisor": "主管", "admin": "管理员"}
WEEKDAYS = "一二三四五六日"


@require_role()
async def oncall_now(request: web.Request) -> web.Response:
    role = request.query.get("role", "").strip()
    if not role:
        raise InvalidInput("role is required", field="role")
    community = request.query.get("community") or None
    async with request.app[SESSIONMAKER]() as session:
        comm = await find_community(session, community)
        answer = await who_is_on_call(session, comm, role, request.app[CLOCK].now())
        tz = ZoneInfo(comm.timezone or DEFAULT_TZ)
    return json_response(answer.to_json(tz))


def _page(title: str, body: str) -> web.Response:
    doc = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:1.5rem;color:#222}}
table{{border-collapse:collapse;margin-bottom:2rem}}
th,td{{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top}}
th{{background:#f3f3f3}} .today{{background:#fff7d6}} .muted{{color:#888}}
.now{{font-size:1.1rem;margin:.5rem 0 1rem}}
</style></head><body>{body}</body></html>"""
    return web.Response(text=doc, content_type="text/html", charset="utf-8")


@require_role()
async def oncall_page(request: web.Request) -> web.Response:
    clock = request.app[CLOCK]
    now = clock.now()
    community = request.query.get("community") or None
    only_role = request.query.get("role") or None
    sections: list[str] = []
    async with request.app[SESSIONMAKER]() as session:
        comm = await find_community(session, community)
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
    return _page(title, f"<h1>{html.escape(title)}</h1>{''.join(sections)}")


def _label(label: str) -> str:
    return {"primary": "主值班", "backup": "备班", "supervisor": "主管"}.get(label, label)


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{field}: expected YYYY-MM-DD, got {value!r}", field=field) from None


def _aware(value: Any, field: str, tz: ZoneInfo) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{field}: expected an ISO time, got {value!r}", field=field) from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: expected an integer", field=field)
    return value


def _shifts(raw: Any) -> list[ShiftInput]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("shifts: a non-empty list", field="shifts")
    out = []
    for i, s in enumerate(raw):
        where = f"shifts[{i}]"
        if not isinstance(s, dict):
            raise InvalidInput(f"{where}: expected an object", field=where)
        members = s.get("members", [])
        if not isinstance(members, list):
            raise InvalidInput(f"{where}.members: a list of staff ids", field=f"{where}.members")
        out.append(ShiftInput(
            name=str(s.get("name") or f"shift{i + 1}"),
            start=str(s.get("start", "")), end=str(s.get("end", "")),
            members=[_int(m, f"{where}.members") for m in members],
            rotation_start=_date(s.get("rotation_start"), f"{where}.rotation_start"),
            period_days=_int(s.get("period_days", 7), f"{where}.period_days")))
    return out


def _chain(raw: Any) -> list[ChainSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("chain: a list", field="chain")
    out = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise InvalidInput(f"chain[{i}]: expected an object", field=f"chain[{i}]")
        user_id = c.get("user_id")
        out.append(ChainSpec(position=i, label=str(c.get("label", "")),
                             source=str(c.get("source", "rotation")),
                             offset=_int(c.get("offset", 0), f"chain[{i}].offset"),
                             user_id=None if user_id is None else _int(user_id, f"chain[{i}].user_id")))
    return out


@require_role("supervisor")
async def put_schedule(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    community, role = request.match_info["community"], request.match_info["role"]
    async with request.app[SESSIONMAKER]() as session:
        await create_schedule(session, community=community, role=role,
                              shifts=_shifts(body.get("shifts")), chain=_chain(body.get("chain")),
                              name=str(body.get("name") or ""))
        comm = await find_community(session, community)
        answer = await who_is_on_call(session, comm, role, request.app[CLOCK].now())
    return json_response({"saved": True, "now": answer.to_json(ZoneInfo(comm.timezone))})


@require_role("supervisor")
async def post_override(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    for key in ("community", "role", "starts_at", "ends_at", "user_id"):
        if body.get(key) in (None, ""):
            raise InvalidInput(f"{key} is required", field=key)
    async with request.app[SESSIONMAKER]() as session:
        comm = await find_community(session, body["community"])
        tz = ZoneInfo(comm.timezone or DEFAULT_TZ)
        replaces = body.get("replaces_user_id")
        row = await add_override(
            session, community=comm.id, role=str(body["role"]),
            starts_at=_aware(body["starts_at"], "starts_at", tz),
            ends_at=_aware(body["ends_at"], "ends_at", tz),
            user_id=_int(body["user_id"], "user_id"),
            replaces_user_id=None if replaces is None else _int(replaces, "replaces_user_id"),
            reason=str(body.get("reason") or "")[:200])
    return json_response({"id": row.id}, status=201)


def add_oncall_routes(app: web.Application) -> None:
    app.router.add_get("/api/oncall/now", oncall_now)
    app.router.add_put("/api/oncall/schedules/{community}/{role}", put_schedule)
    app.router.add_post("/api/oncall/overrides", post_override)
    app.router.add_get("/oncall", oncall_page)
