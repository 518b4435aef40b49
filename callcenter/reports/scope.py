"""What a report covers: its local days and the communities of the person asking.

``from``/``to`` default to the last 7 days and span at most ``MAX_DAYS``; a
``community`` (code or id) must be one the person sees (403 otherwise, 400 for an
unknown one). ``codes``/``ids`` None means every community, no filter (an admin or
head office asking for all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.directory.models import Community
from callcenter.errors import Forbidden, InvalidInput

MAX_DAYS = 92


@dataclass(frozen=True)
class Scope:
    first: date
    last: date
    codes: frozenset[str] | None
    ids: frozenset[int] | None
    names: dict[str, str]  # code -> name, of the communities the person sees
    community: str | None  # the one chosen, by code
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz)


async def resolve_scope(request: web.Request, first_day: date | None, last_day: date | None,
                        community: str | int | None) -> Scope:
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    today = request.app[CLOCK].now().astimezone(tz).date()
    last = last_day or today
    first = first_day or (last - timedelta(days=6))
    if first > last:
        raise InvalidInput("to: 结束日期不能早于开始日期 / must not be before from", field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"to: 最多 {MAX_DAYS} 天 / at most {MAX_DAYS} days", field="to")
    ident = current_identity(request)
    assert ident is not None
    async with request.app[SESSIONMAKER]() as session:
        rows = (await session.execute(select(Community.id, Community.code, Community.name)))
        communities = {r.id: (r.code, r.name) for r in rows}
    visible = {cid: v for cid, v in communities.items() if ident.sees(cid)}
    names = {code: name for code, name in visible.values()}
    chosen: str | None = None
    if community is not None:
        ref = str(community)
        match = [cid for cid, (code, _) in communities.items()
                 if code == ref or (ref.isdigit() and cid == int(ref))]
        if not match:
            raise InvalidInput("community: 小区不存在 / unknown community", field="community")
        if match[0] not in visible:
            raise Forbidden("不能查看其他小区的报表 / not your community",
                            details={"field": "community"})
        visible = {match[0]: visible[match[0]]}
        chosen = visible[match[0]][0]
    everything = ident.communities is None and chosen is None
    return Scope(first, last,
                 None if everything else frozenset(code for code, _ in visible.values()),
                 None if everything else frozenset(visible), names, chosen, tz)
