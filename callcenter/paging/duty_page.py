"""``/duty``: night duty's home (夜班值守), on a phone.

Who is on call now in each of the person's communities (every role with a
schedule: night duty, engineers …, with the time the shift ends and a tap-to-call
number), the emergencies still open, and how many callers wait to be rung back
(the worklist, ``/callbacks``). The page refreshes itself every 30 s; nothing on it needs an extension (night duty
works from a mobile, not a desk phone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.appkeys import CALLBACKS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.auth.scope import scope_codes
from callcenter.directory.models import Community
from callcenter.oncall.http import ROLE_NAMES
from callcenter.oncall.models import OnCallSchedule
from callcenter.oncall.services import who_is_on_call
from callcenter.paging.http import PAGING_SERVICE
from callcenter.paging.pages import incident_cards
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import local_time as local

LABELS = {"primary": "主值班", "backup": "备班", "supervisor": "主管"}


async def on_call_now(request: web.Request, now: datetime) -> list[dict[str, Any]]:
    """For each community the person works for: each role's people on call now."""
    ident = current_identity(request)
    assert ident is not None
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    out: list[dict[str, Any]] = []
    async with request.app[SESSIONMAKER]() as session:
        query = select(Community).order_by(Community.name)
        roles_q = select(OnCallSchedule.community_id, OnCallSchedule.role).order_by(
            OnCallSchedule.role)
        if ident.communities is not None:
            query = query.where(Community.id.in_(ident.communities))
            roles_q = roles_q.where(OnCallSchedule.community_id.in_(ident.communities))
        roles_of: dict[int, list[str]] = {}
        for community_id, role in (await session.execute(roles_q)).all():
            roles_of.setdefault(community_id, []).append(role)
        for comm in (await session.scalars(query)).all():
            rows = []
            for role in roles_of.get(comm.id, ()):
                answer = await who_is_on_call(session, comm, role, now)
                rows.append({
                    "role": ROLE_NAMES.get(role, "值班"), "shift": answer.shift or "",
                    "until": local(answer.until, tz) if answer.until else "",
                    "people": [{"name": p.name, "label": LABELS.get(p.label, ""),
                                "mobile": p.mobile or "", "me": p.user_id == ident.user_id}
                               for p in answer.people]})
            out.append({"name": comm.name, "roles": rows})
    return out


@page("night_duty", "supervisor")
async def duty_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    now = request.app[CLOCK].now()
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    incidents = incident_cards(await request.app[PAGING_SERVICE].recent(
        scope=ident.communities, days=None), now, tz)
    callbacks = request.app.get(CALLBACKS)
    missed = (await callbacks.open_count(await scope_codes(request))
              if callbacks is not None else None)
    return render(request, "duty.html", {
        "communities": await on_call_now(request, now), "incidents": incidents,
        "missed": missed, "now": local(now, tz)})


def add_duty_page(app: web.Application) -> None:
    app.router.add_get("/duty", duty_page)
