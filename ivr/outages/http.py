"""``/api/outages`` and the ``/outages`` page (zh-CN): post, end early, read.

    GET  /api/outages?state=live|ended|all&community=   the person's communities' notices
    POST /api/outages                                  post one (admin, supervisor)
    POST /api/outages/{outage_id}/end                  end it early (admin, supervisor)
    GET  /outages                                      the page: live and ended notices, the form
    POST /outages/action                               the page's forms (op = post | end)

Readers are ``READERS`` (the front desk, night duty, supervisors, admin), each in
their communities only: another community's notice is a 404. A bad body is a 400
naming the field. Times without an offset (the page's ``datetime-local``) are the
site's local time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity
from callcenter.directory.models import Community
from callcenter.errors import DomainError, Forbidden, InvalidInput
from callcenter.web.api import (
    MAX_ID,
    MAX_YEAR,
    MIN_YEAR,
    ApiRoutes,
    CommunityRef,
    Flag,
    Input,
    OneOf,
    Output,
    PathId,
    Text,
    Timestamp,
    When,
)
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import local_time
from ivr.outages.prompts import tools_missing
from ivr.outages.services import (
    DEFAULT_HOURS,
    KINDS,
    MAX_NOTE,
    MAX_TEXT,
    MAX_UNIT,
    POSTERS,
    READERS,
    STATES,
    NoticeRequest,
    NoticeView,
    OutageNotices,
    Poster,
)

OUTAGES = web.AppKey("outages", OutageNotices)

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_READ = tuple(sorted(READERS - {"admin"}))
_POST = tuple(sorted(POSTERS - {"admin"}))
Unit = Annotated[int | None, Field(None, ge=1, le=MAX_UNIT, strict=True)]


def _tz(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


def parse_time(raw: str, field: str, tz: ZoneInfo) -> datetime:
    """An ISO time; one without an offset is the site's local time."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"{field} 时间无效 / {field}: expected an ISO time",
                           field=field) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InvalidInput(f"{field} 年份无效 / {field}: year out of range", field=field)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def _ident(request: web.Request) -> Identity:
    ident = current_identity(request)
    assert ident is not None
    return ident


async def community_of(request: web.Request, ref: str | None) -> int:
    """The community a notice is for: the one named (code or id), else the person's
    only one, else (someone of every community) the site's default."""
    ident = _ident(request)
    service = request.app[OUTAGES]
    ref = (ref or "").strip() or None
    if ref is not None:
        if ref.isascii() and ref.isdigit() and (len(ref) > 10 or int(ref) > MAX_ID):
            raise InvalidInput("小区不存在 / no such community", field="community")
        cid = int(ref) if ref.isascii() and ref.isdigit() else await service.community_id_for(ref)
        if cid is None:
            raise InvalidInput(f"小区不存在 / unknown community {ref[:64]!r}", field="community")
        return cid
    if ident.only_community is not None:
        return ident.only_community
    if ident.communities is None:
        default = request.app[SETTINGS].default_community
        cid = await service.community_id_for(default) if default else None
        if cid is not None:
            return cid
    raise InvalidInput("请选择小区 / community is required", field="community")


def _poster(ident: Identity) -> Poster:
    return Poster(ident.username, ident.role)


# ------------------------------------------------------------------------- JSON

class OutageIn(Input):
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")
    kind: Annotated[str, OneOf(KINDS)] = Field(
        description="water 停水, power 停电, gas 停气, lift 电梯停运, other 其他")
    text: Annotated[Text, Field(min_length=1, max_length=MAX_TEXT,
                                description="来电听到的内容 / what callers hear")]
    building: Annotated[Text, Field(max_length=32, description="楼栋；空为全小区")] = ""
    unit_from: Unit = None
    unit_to: Unit = None
    starts_at: When | None = Field(None, description="默认现在 / default now")
    ends_at: When
    all_callers: Flag = Field(False, description="本小区所有来电都播放 / every caller hears it")


class EndIn(Input):
    note: Annotated[Text, Field(max_length=MAX_NOTE)] = ""


class OutagePath(Input):
    outage_id: PathId


class OutageQuery(Input):
    state: Literal["live", "ended", "all"] = "live"
    community: CommunityRef | None = None


class OutageOut(Output):
    id: int
    community: str
    building: str | None
    unit_from: int | None
    unit_to: int | None
    where: str
    kind: str
    kind_label: str
    text: str
    all_callers: bool
    starts_at: Timestamp
    ends_at: Timestamp
    state: Literal["scheduled", "live", "ended"]
    spoken: bool
    ended_at: Timestamp | None
    ended_by: str | None


class OutageListOut(Output):
    outages: list[OutageOut]
    audio_warning: str


routes = ApiRoutes("outages")


@routes.get("/api/outages", roles=_READ, query=OutageQuery, response=OutageListOut,
            summary="停水停电通知 / outage notices")
async def list_api(request: web.Request, query: OutageQuery) -> dict[str, Any]:
    """Live notices (and those not yet started), ended ones, or all, of the person's
    communities; ``community`` narrows them (another community's: 403)."""
    ident = _ident(request)
    service = request.app[OUTAGES]
    community_id = None
    if query.community:
        community_id = await community_of(request, query.community)
        if not ident.sees(community_id):
            raise Forbidden("不能查看其他小区的通知 / not your community",
                            details={"field": "community"})
    now = request.app[CLOCK].now()
    rows = await service.find(ident.communities, state=query.state, community_id=community_id)
    return {"outages": [n.to_json(now) for n in rows], "audio_warning": tools_missing()}


async def _post(request: web.Request, body: OutageIn) -> NoticeView:
    ident = _ident(request)
    tz = _tz(request)
    return await request.app[OUTAGES].post(NoticeRequest(
        community_id=await community_of(request, body.community), kind=body.kind,
        text=body.text, building=body.building, unit_from=body.unit_from, unit_to=body.unit_to,
        starts_at=parse_time(body.starts_at, "starts_at", tz) if body.starts_at else None,
        ends_at=parse_time(body.ends_at, "ends_at", tz), all_callers=body.all_callers),
        _poster(ident), ident.communities)


@routes.post("/api/outages", roles=_POST, body=OutageIn, response=OutageOut, status=201,
             summary="发布停水停电通知 / post an outage notice")
async def post_api(request: web.Request, body: OutageIn) -> dict[str, Any]:
    """Callers of the building (or unit range, or community) hear ``text`` right after
    the greeting until ``ends_at``; with ``all_callers`` every caller of the community."""
    notice = await _post(request, body)
    return notice.to_json(request.app[CLOCK].now())


@routes.post("/api/outages/{outage_id}/end", roles=_POST, path_model=OutagePath, body=EndIn,
             body_required=False, response=OutageOut, errors=(409,),
             summary="提前结束通知 / end a notice early")
async def end_api(request: web.Request, path: OutagePath, body: EndIn) -> dict[str, Any]:
    ident = _ident(request)
    notice = await request.app[OUTAGES].end(path.outage_id, _poster(ident), body.note,
                                            ident.communities)
    return notice.to_json(request.app[CLOCK].now())


# ------------------------------------------------------------------------- page

def _row(n: NoticeView, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    state = n.state(now)
    return {"id": n.id, "scope_label": n.scope_label, "kind": n.kind, "kind_label": n.kind_label,
            "text": n.text, "all_callers": n.all_callers, "state": state,
            "state_label": STATES[state], "starts_at": local_time(n.starts_at, tz),
            "ends_at": local_time(n.ends_at, tz), "spoken": n.spoken, "audio_note": n.audio_note,
            "created_by": n.created_by, "created_at": local_time(n.created_at, tz),
            "ended_at": local_time(n.ended_at, tz), "ended_by": n.ended_by,
            "end_note": n.end_note, "group_id": n.group_id}


def _local_input(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


async def _page(request: web.Request, *, error: str = "", notice: str = "",
                form: dict[str, str] | None = None, status: int = 200) -> web.Response:
    ident = _ident(request)
    service = request.app[OUTAGES]
    tz = _tz(request)
    now = request.app[CLOCK].now()
    live = await service.find(ident.communities, state="live")
    ended = await service.find(ident.communities, state="ended", limit=20)
    may_post = ident.role in POSTERS
    buildings = await service.buildings(ident.communities) if may_post else {}
    names = await _community_names(request, ident)
    return render(request, "outages.html", {
        "live": [_row(n, now, tz) for n in live], "ended": [_row(n, now, tz) for n in ended],
        "may_post": may_post, "kinds": KINDS, "error": error, "notice": notice,
        "audio_warning": tools_missing() if may_post else "",
        "communities": names, "buildings": buildings, "max_text": MAX_TEXT,
        "form": {"starts_at": _local_input(now, tz),
                 "ends_at": _local_input(now + timedelta(hours=DEFAULT_HOURS), tz),
                 "kind": "water", "text": "", "building": "", "unit_from": "", "unit_to": "",
                 "community": "", **(form or {})},
    }, status=status)


async def _community_names(request: web.Request, ident: Identity) -> list[dict[str, Any]]:
    stmt = select(Community.id, Community.code, Community.name).order_by(Community.id)
    if ident.communities is not None:
        stmt = stmt.where(Community.id.in_(sorted(ident.communities)))
    async with request.app[SESSIONMAKER]() as session:
        return [{"id": cid, "code": code, "name": name}
                for cid, code, name in (await session.execute(stmt)).all()]


@page(*_READ)
async def outages_page(request: web.Request) -> web.StreamResponse:
    done = {"posted": "通知已发布，来电将在欢迎语后听到", "ended": "通知已结束"}
    return await _page(request, notice=done.get(request.query.get("done", ""), ""))


@page(*_POST)
async def outages_action(request: web.Request) -> web.StreamResponse:
    """The page's forms: post a notice, or end one early."""
    ident = _ident(request)
    form = await request.post()
    tz = _tz(request)

    def text(name: str) -> str:
        value = form.get(name, "")
        if not isinstance(value, str):
            return ""
        if _BAD_CHARS.search(value):  # what PostgreSQL or UTF-8 refuses
            raise InvalidInput("含有无效字符", field=name)
        return value.strip()

    def unit(name: str) -> int | None:
        raw = text(name)
        if not raw:
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 3:
            raise InvalidInput("单元应为数字", field=name)
        return int(raw)

    fields: dict[str, str] = {}
    op = ""
    try:
        op = text("op")
        fields = {k: text(k) for k in ("community", "kind", "text", "building", "unit_from",
                                       "unit_to", "starts_at", "ends_at")}
        if op == "post":
            if fields["kind"] not in KINDS:
                raise InvalidInput("请选择类型", field="kind")
            if not fields["ends_at"]:
                raise InvalidInput("请填写结束时间", field="ends_at")
            await request.app[OUTAGES].post(NoticeRequest(
                community_id=await community_of(request, fields["community"]),
                kind=fields["kind"], text=fields["text"], building=fields["building"],
                unit_from=unit("unit_from"), unit_to=unit("unit_to"),
                starts_at=parse_time(fields["starts_at"], "starts_at", tz)
                if fields["starts_at"] else None,
                ends_at=parse_time(fields["ends_at"], "ends_at", tz),
                all_callers=text("all_callers") in ("1", "on", "true")),
                _poster(ident), ident.communities)
            raise web.HTTPSeeOther("/outages?done=posted")
        if op == "end":
            raw = text("outage_id")
            if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
                raise InvalidInput("通知无效", field="outage_id")
            await request.app[OUTAGES].end(int(raw), _poster(ident), text("note"),
                                           ident.communities)
            raise web.HTTPSeeOther("/outages?done=ended")
        raise InvalidInput("操作无效", field="op")
    except DomainError as exc:
        if exc.http_status >= 500:
            raise
        return await _page(request, error=exc.message,
                           form={k: v for k, v in fields.items() if v} if op == "post" else None,
                           status=exc.http_status)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
    app.router.add_get("/outages", outages_page)
    app.router.add_post("/outages/action", outages_action)
