"""HTTP: ``GET /api/oncall/now`` and the ``/oncall`` page (next 14 days)."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER
from callcenter.auth.middleware import require_role
from callcenter.errors import InvalidInput
from callcenter.oncall.models import OnCallSchedule
from callcenter.oncall.services import DEFAULT_TZ, calendar, find_community, who_is_on_call
from callcenter.web.errors import json_response

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


def add_oncall_routes(app: web.Application) -> None:
    app.router.add_get("/api/oncall/now", oncall_now)
    app.router.add_get("/oncall", oncall_page)
