"""Posting, ending and reading outage notices, and the notices one caller hears.

Who may post or end: ``POSTERS`` (admin, or a supervisor of the community); who may
read: ``READERS``. Community scope is the caller's ``frozenset`` of community ids
(None: every one); a notice of another community is a 404, as elsewhere.

A notice is live while ``starts_at <= now < ends_at`` and nobody ended it: the
queries ask for that, so a notice ends itself at its end time with no job. Its
audio is rendered when it is posted (``ivr.outages.prompts.render_notice``, in a
worker thread); the generic prompt plays when it could not be.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.directory.models import Building, Community, Room, Unit
from callcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from ivr.engine import Announcement
from ivr.outages.models import OutageNotice
from ivr.outages.prompts import GENERIC, Rendered, render_notice

log = logging.getLogger(__name__)

KINDS: dict[str, str] = {"water": "停水", "power": "停电", "gas": "停气", "lift": "电梯停运",
                         "other": "其他"}
PATH_LABELS: dict[str, str] = {"water": "停水通知", "power": "停电通知", "gas": "停气通知",
                               "lift": "电梯停运通知", "other": "物业通知"}
"""The step on the call's IVR path (screen-pop, call log) when a caller heard the notice."""
STATES: dict[str, str] = {"scheduled": "未开始", "live": "生效中", "ended": "已结束"}
POSTERS = frozenset({"admin", "supervisor"})
READERS = frozenset({"admin", "supervisor", "agent", "night_duty"})
MAX_TEXT = 300
MAX_NOTE = 300
MAX_UNIT = 99
MAX_DAYS = 30
DEFAULT_HOURS = 4
MAX_HEARD = 3
CACHE_S = 5.0
"""How long the IVR's copy of the live notices is kept: another server's new or
ended notice is heard (or no longer) within this time; this server's at once."""
_SUFFIXES = ("号楼", "栋", "幢", "座")


def building_name(raw: str | None) -> str:
    """``3栋``, ``3号楼``, `` 3 `` → ``3``; '' for the whole community."""
    value = (raw or "").strip().upper()
    for suffix in _SUFFIXES:
        if value.endswith(suffix) and len(value) > len(suffix):
            value = value[: -len(suffix)].strip()
            break
    return value


def _unit_number(name: str) -> int | None:
    m = re.fullmatch(r"\s*(\d{1,3})\s*(单元)?\s*", name or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class Poster:
    """Who posts or ends a notice (as the log names them)."""

    username: str
    role: str


@dataclass(frozen=True, slots=True)
class NoticeRequest:
    community_id: int
    kind: str
    text: str
    ends_at: datetime
    building: str = ""
    unit_from: int | None = None
    unit_to: int | None = None
    starts_at: datetime | None = None  # None: now
    all_callers: bool = False
    group_id: int | None = None


@dataclass(frozen=True, slots=True)
class NoticeView:
    id: int
    community_id: int
    community: str
    community_name: str
    building: str
    unit_from: int | None
    unit_to: int | None
    kind: str
    text: str
    all_callers: bool
    starts_at: datetime
    ends_at: datetime
    prompt: str
    audio_note: str
    created_at: datetime
    created_by: str
    group_id: int | None
    ended_at: datetime | None
    ended_by: str
    end_note: str

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def where(self) -> str:
        """``3栋1–2单元``, ``3栋``, ``全小区``."""
        if not self.building:
            return "全小区"
        units = ""
        if self.unit_from is not None:
            units = (f"{self.unit_from}单元" if self.unit_to in (None, self.unit_from)
                     else f"{self.unit_from}–{self.unit_to}单元")
        return f"{self.building}栋{units}"

    @property
    def scope_label(self) -> str:
        return f"{self.community_name}{self.where}"

    @property
    def spoken(self) -> bool:
        return self.prompt != GENERIC

    def state(self, now: datetime) -> str:
        if self.ended_at is not None or self.ends_at <= now:
            return "ended"
        return "scheduled" if self.starts_at > now else "live"

    def to_json(self, now: datetime) -> dict[str, Any]:
        state = self.state(now)
        return {
            "id": self.id, "community_id": self.community_id, "community": self.community,
            "community_name": self.community_name, "building": self.building or None,
            "unit_from": self.unit_from, "unit_to": self.unit_to, "where": self.where,
            "scope_label": self.scope_label, "kind": self.kind, "kind_label": self.kind_label,
            "text": self.text, "all_callers": self.all_callers,
            "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat(),
            "state": state, "state_label": STATES[state], "spoken": self.spoken,
            "audio_note": self.audio_note, "created_at": self.created_at.isoformat(),
            "created_by": self.created_by, "group_id": self.group_id,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by or None, "end_note": self.end_note}


def _view(n: OutageNotice, c: Community | None) -> NoticeView:
    return NoticeView(n.id, n.community_id, c.code if c else "", c.name if c else "", n.building,
                      n.unit_from, n.unit_to, n.kind, n.text, n.all_callers, n.starts_at,
                      n.ends_at, n.prompt, n.audio_note, n.created_at, n.created_by, n.group_id,
                      n.ended_at, n.ended_by, n.end_note)


def _covers(n: OutageNotice, building: str, unit: str) -> bool:
    if not n.building:
        return True
    if building_name(building) != n.building:
        return False
    if n.unit_from is None:
        return True
    number = _unit_number(unit)
    return number is not None and n.unit_from <= number <= (n.unit_to or n.unit_from)


Renderer = Callable[[str, Path, int], Rendered]


class OutageNotices:
    """The notices of every community; ``sounds`` is the prompts' directory."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 sounds: Path, render: Renderer = render_notice) -> None:
        self._sm = sessionmaker
        self._clock = clock
        self.sounds = sounds
        self._render = render
        self._cache: tuple[float, list[tuple[OutageNotice, str]]] | None = None

    # -- posting and ending ------------------------------------------------------

    async def _check(self, session: AsyncSession, req: NoticeRequest, now: datetime
                     ) -> tuple[str, datetime]:
        if req.kind not in KINDS:
            raise InvalidInput(f"类型无效，应为{'、'.join(KINDS.values())}之一", field="kind")
        text = req.text.strip()
        if not text:
            raise InvalidInput("请填写通知内容（来电会听到这段话）", field="text")
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"通知内容过长（{MAX_TEXT}字以内）", field="text")
        starts = req.starts_at or now
        if req.ends_at <= starts:
            raise InvalidInput("结束时间须晚于开始时间", field="ends_at")
        if req.ends_at <= now:
            raise InvalidInput("结束时间已过", field="ends_at")
        if req.ends_at - starts > timedelta(days=MAX_DAYS):
            raise InvalidInput(f"通知最长{MAX_DAYS}天", field="ends_at")
        building = building_name(req.building)
        if len(building) > 32:
            raise InvalidInput("楼栋无效", field="building")
        if req.unit_from is not None or req.unit_to is not None:
            if not building:
                raise InvalidInput("指定单元时须填写楼栋", field="building")
            for name, value in (("unit_from", req.unit_from), ("unit_to", req.unit_to)):
                if value is not None and not 1 <= value <= MAX_UNIT:
                    raise InvalidInput(f"单元应在 1–{MAX_UNIT} 之间", field=name)
            if req.unit_from is None:
                raise InvalidInput("请填写起始单元", field="unit_from")
            if req.unit_to is not None and req.unit_to < req.unit_from:
                raise InvalidInput("结束单元须不小于起始单元", field="unit_to")
        if building:
            names = (await session.scalars(select(Building.name).where(
                Building.community_id == req.community_id))).all()
            if names and building not in {building_name(n) for n in names}:
                raise InvalidInput(f"本小区没有{building}栋", field="building")
        return text, starts

    async def post(self, req: NoticeRequest, poster: Poster,
                   scope: frozenset[int] | None) -> NoticeView:
        if poster.role not in POSTERS:
            raise Forbidden("只有主管或管理员可以发布通知", details={"field": "role"})
        now = self._clock.now()
        async with self._sm() as session:
            community = await session.get(Community, req.community_id)
            if community is None:
                raise InvalidInput("小区不存在", field="community")
            if scope is not None and community.id not in scope:
                raise Forbidden("不能为其他小区发布通知", details={"field": "community"})
            text, starts = await self._check(session, req, now)
            row = OutageNotice(
                community_id=community.id, building=building_name(req.building),
                unit_from=req.unit_from, unit_to=req.unit_to if req.unit_from is not None else None,
                kind=req.kind, text=text, all_callers=req.all_callers,
                starts_at=starts.astimezone(UTC), ends_at=req.ends_at.astimezone(UTC), prompt=GENERIC, created_at=now,
                created_by=poster.username[:100], created_role=poster.role[:16],
                group_id=req.group_id)
            session.add(row)
            await session.flush()
            rendered = await self._speak(text, row.id)
            row.prompt, row.audio_note = rendered.prompt, rendered.note[:300]
            await session.commit()
            self._cache = None
            log.info("outage notice %d posted for %s by %s (%s, until %s)", row.id,
                     community.code, poster.username, rendered.prompt, req.ends_at.isoformat())
            return _view(row, community)

    async def _speak(self, text: str, notice_id: int) -> Rendered:
        try:
            return await asyncio.to_thread(self._render, text, self.sounds, notice_id)
        except Exception:  # the notice is posted all the same, with the generic prompt
            log.exception("outage notice %d: rendering failed", notice_id)
            return Rendered(GENERIC, "语音合成失败，来电将听到通用提示")

    async def end(self, notice_id: int, poster: Poster, note: str,
                  scope: frozenset[int] | None) -> NoticeView:
        """Ended early by hand: who and when are kept on the notice."""
        if poster.role not in POSTERS:
            raise Forbidden("只有主管或管理员可以结束通知", details={"field": "role"})
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"说明过长（{MAX_NOTE}字以内）", field="note")
        now = self._clock.now()
        async with self._sm() as session:
            row = (await session.scalars(select(OutageNotice).where(
                OutageNotice.id == notice_id).with_for_update())).first()
            if row is None or (scope is not None and row.community_id not in scope):
                raise NotFound("通知不存在 / no such notice", details={"field": "outage_id"})
            if row.ended_at is not None or row.ends_at <= now:
                raise Conflict("通知已结束", details={"field": "outage_id"})
            row.ended_at, row.ended_by, row.end_note = now, poster.username[:100], note
            community = await session.get(Community, row.community_id)
            await session.commit()
            self._cache = None
            log.info("outage notice %d ended early by %s", notice_id, poster.username)
            return _view(row, community)

    # -- reading ---------------------------------------------------------------

    async def _views(self, session: AsyncSession, rows: Sequence[OutageNotice]
                     ) -> list[NoticeView]:
        ids = sorted({r.community_id for r in rows})
        communities = {c.id: c for c in (await session.scalars(
            select(Community).where(Community.id.in_(ids)))).all()} if ids else {}
        return [_view(r, communities.get(r.community_id)) for r in rows]

    async def find(self, scope: frozenset[int] | None, *, state: str = "live",
                   community_id: int | None = None, limit: int = 100) -> list[NoticeView]:
        """``state``: live (with those not yet started), ended, or all; newest first."""
        now = self._clock.now()
        cond: list[ColumnElement[bool]] = []
        if scope is not None:
            cond.append(OutageNotice.community_id.in_(sorted(scope)))
        if community_id is not None:
            cond.append(OutageNotice.community_id == community_id)
        if state == "live":
            cond += [OutageNotice.ended_at.is_(None), OutageNotice.ends_at > now]
        elif state == "ended":
            cond.append(or_(OutageNotice.ended_at.is_not(None), OutageNotice.ends_at <= now))
        async with self._sm() as session:
            rows = (await session.scalars(select(OutageNotice).where(*cond).order_by(
                OutageNotice.starts_at.desc(), OutageNotice.id.desc()).limit(limit))).all()
            return await self._views(session, rows)

    async def get(self, notice_id: int, scope: frozenset[int] | None) -> NoticeView:
        async with self._sm() as session:
            row = await session.get(OutageNotice, notice_id)
            if row is None or (scope is not None and row.community_id not in scope):
                raise NotFound("通知不存在 / no such notice", details={"field": "outage_id"})
            return (await self._views(session, [row]))[0]

    async def community_id_for(self, code: str) -> int | None:
        async with self._sm() as session:
            return (await session.scalars(select(Community.id).where(
                Community.code == code))).first()

    async def buildings(self, scope: frozenset[int] | None) -> dict[int, list[str]]:
        """community id → its buildings' names (for the form's choices)."""
        stmt = select(Building.community_id, Building.name).order_by(Building.id)
        if scope is not None:
            stmt = stmt.where(Building.community_id.in_(sorted(scope)))
        out: dict[int, list[str]] = {}
        async with self._sm() as session:
            for cid, name in (await session.execute(stmt)).all():
                out.setdefault(cid, []).append(name)
        return out

    # -- what a caller hears ---------------------------------------------------

    async def _current(self) -> list[tuple[OutageNotice, str]]:
        """The notices not ended yet, with their community's code: read at most every
        ``CACHE_S`` (every call asks; most of the time there are none), dropped at once
        when this server posts or ends one."""
        at = self._clock.monotonic()
        if self._cache is not None and at - self._cache[0] < CACHE_S:
            return self._cache[1]
        now = self._clock.now()
        async with self._sm() as session:
            rows = [(n, code) for n, code in (await session.execute(
                select(OutageNotice, Community.code)
                .join(Community, Community.id == OutageNotice.community_id)
                .where(OutageNotice.ended_at.is_(None), OutageNotice.ends_at > now)
                .order_by(OutageNotice.starts_at.desc(), OutageNotice.id.desc()))).all()]
        self._cache = (at, rows)
        return rows

    async def heard_by(self, community: str | None, room_ids: Sequence[int]
                       ) -> list[Announcement]:
        """The live notices a caller hears: those covering one of their rooms (any
        community), and those of the call's community flagged for every caller. The
        narrowest first, at most ``MAX_HEARD``."""
        now = self._clock.now()
        live = [(n, code) for n, code in await self._current()
                if n.starts_at <= now < n.ends_at]
        if not live:
            return []
        rooms: list[tuple[int, str, str]] = []
        if room_ids:
            async with self._sm() as session:
                rooms = [(cid, b, u) for cid, b, u in (await session.execute(
                    select(Building.community_id, Building.name, Unit.name)
                    .join(Unit, Unit.building_id == Building.id)
                    .join(Room, Room.unit_id == Unit.id)
                    .where(Room.id.in_(sorted(set(room_ids)))))).all()]
        heard = []
        for n, code in live:
            mine = any(cid == n.community_id and _covers(n, b, u) for cid, b, u in rooms)
            everyone = n.all_callers and community is not None and code == community
            if mine or everyone:
                heard.append(n)
        heard.sort(key=lambda n: (not n.building, n.unit_from is None))
        return [Announcement(n.prompt, PATH_LABELS.get(n.kind, "物业通知"))
                for n in heard[:MAX_HEARD]]

    # -- a group incident's one click (ticketing.group_outages.OutagePoster) -----

    async def post_for_group(self, *, community_id: int, building: str, kind: str, text: str,
                             ends_at: datetime, group_id: int, username: str, role: str,
                             scope: frozenset[int] | None) -> NoticeView:
        return await self.post(NoticeRequest(
            community_id=community_id, kind=kind, text=text, ends_at=ends_at,
            building=building, group_id=group_id), Poster(username, role), scope)
