"""Group incidents (群发事件 / 一事多报): several reports of one event under one parent.

"3栋好几户都停水了" is one incident with N reporters. The rules:

* **Detection** (``GroupDetector.ticket_added``, inside the transaction that adds a
  ticket, whatever its source: the pop, the 新建工单 form, the API, a voicemail): a
  ticket of a building-wide category (``ticketing.categories.BUILDING_WIDE``) joins
  the open incident of its (community, building, category); without one, it opens
  one when ``threshold`` households (rooms; the caller's number when no room is known)
  reported that key within ``window``, counting itself, among the open tickets not in
  an incident. The building is the room's, else the one said; none known is the whole
  community. Two reports from one flat are one household: a leak in one flat is not
  an incident. A ticket the front desk took out of an incident is not counted again. ``GroupRule`` comes from ``sla.toml`` (``[groups]``, per community
  ``[communities.<code>.groups]``).
* **One incident per event, across servers**: the key is taken with a transaction
  advisory lock on PostgreSQL (the second ticket waits for the first's commit, then
  sees it) and ``ticket_groups.open_key`` is unique while the incident is open.
* **Told once**: opening an incident arms a ``group_notice`` SLA timer on the ticket
  that opened it, due at once; the SLA worker fires it once across servers and tells
  the community's supervisors, and writes whom it reached to that ticket's log and the
  incident's. Later reporters join silently (the count grows).
* **By hand** (``TicketGroups``): the front desk links a ticket of the same community
  to an open incident, or takes one out, with a reason; the supervisor closes it with a
  resolution note: in one transaction every open member is moved to 已完工 (each
  reporter gets their own 回访) and every member's log names the incident and the
  note. Who may is ``GROUP_ACTIONS``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.directory.models import Building, Community, Room, Unit
from callcenter.errors import Conflict, InvalidInput, NotFound
from ticketing.categories import BUILDING_WIDE, CATEGORIES
from ticketing.group_models import GROUP_STATES, TicketGroup, TicketGroupEvent
from ticketing.models import Ticket, TicketEvent
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import GROUP_NOTICE, GroupRule, SlaPolicy
from ticketing.sla_timers import Move, SlaClock
from ticketing.workflow import (
    FRONT_DESK,
    OPEN_STATES,
    ROLE_LABELS,
    STATES,
    SUPERVISORS,
    ActionNotNow,
    ActionRefused,
    Actor,
)

MAX_NOTE = 1000
_LOCK_SPACE = 7018  # pg_advisory_xact_lock(space, key): the group detection's own space
_SUFFIXES = ("号楼", "栋", "幢", "座")


@dataclass(frozen=True, slots=True)
class GroupAction:
    key: str
    label: str
    roles: frozenset[str]


GROUP_ACTIONS: dict[str, GroupAction] = {a.key: a for a in (
    # The front desk takes the calls: they see two calls are one event (or not).
    GroupAction("link", "加入事件", FRONT_DESK),
    GroupAction("unlink", "移出事件", FRONT_DESK),
    # Closing moves every member to 已完工, which the workflow leaves to supervisors
    # and the doers; an incident has no single doer, so: supervisors (and admin).
    GroupAction("close", "办结事件", SUPERVISORS),
)}


def check_group_action(key: str, role: str) -> GroupAction:
    action = GROUP_ACTIONS[key]
    if role not in action.roles:
        who = "、".join(ROLE_LABELS[r] for r in ROLE_LABELS if r in action.roles)
        raise ActionRefused(f"只有{who}可以{action.label}", details={"action": key})
    return action


def building_key(name: str | None) -> str:
    """``3栋``, ``3号楼``, `` 3 `` → ``3``; '' when none is known."""
    value = (name or "").strip().upper()
    for suffix in _SUFFIXES:
        if value.endswith(suffix) and len(value) > len(suffix):
            value = value[: -len(suffix)].strip()
            break
    return value[:32]


def household(ticket: Ticket) -> str:
    """Who reported: the room, else the owner, else the number, else the ticket itself."""
    if ticket.room_id is not None:
        return f"room:{ticket.room_id}"
    if ticket.person_id is not None:
        return f"person:{ticket.person_id}"
    digits = "".join(c for c in ticket.caller_number if c.isdigit())
    if digits:
        return f"tel:{digits[-11:]}"
    return f"ticket:{ticket.id}"


def open_key(community_id: int, building: str, category: str) -> str:
    return f"{community_id}:{building}:{category}"


def group_label(community: str, building: str, category: str) -> str:
    """湖畔花园3栋 给排水; 湖畔花园（全小区） 停电."""
    cat = CATEGORIES.get(category)
    where = f"{community}{building}栋" if building else f"{community}（全小区）"
    return f"{where} {cat.label if cat else category}"


async def label_of(session: AsyncSession, group: TicketGroup) -> str:
    """``group_label`` of ``group``, its community's name read."""
    community = await session.get(Community, group.community_id)
    return group_label(community.name if community else "", group.building, group.category)


async def _buildings(session: AsyncSession, tickets: Sequence[Ticket]) -> dict[int, str]:
    """ticket id → its building key (the directory's room, else what was said)."""
    rooms = sorted({t.room_id for t in tickets if t.room_id is not None})
    names: dict[int, str] = {}
    if rooms:
        names = {r[0]: r[1] for r in (await session.execute(
            select(Room.id, Building.name).join(Unit, Unit.id == Room.unit_id)
            .join(Building, Building.id == Unit.building_id).where(Room.id.in_(rooms)))).all()}
    return {t.id: building_key(names.get(t.room_id) if t.room_id is not None
                               and t.room_id in names else t.said_building)
            for t in tickets}


async def _serialize(session: AsyncSession, key: str) -> None:
    """Detection of one key, one transaction at a time (PostgreSQL; SQLite has one writer
    anyway): the second waits for the first to commit, then sees its ticket."""
    if session.get_bind().dialect.name != "postgresql":
        return
    crc = zlib.crc32(key.encode())
    await session.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                          {"space": _LOCK_SPACE, "key": crc - (1 << 32) if crc >= 1 << 31
                           else crc})


def _ticket_event(ticket: Ticket, action: str, note: str, now: datetime, actor: str,
                  role: str, data: dict[str, Any], *, to_state: str | None = None
                  ) -> TicketEvent:
    return TicketEvent(ticket_id=ticket.id, from_state=ticket.state,
                       to_state=to_state or ticket.state, actor=actor[:100], at=now,
                       note=note[:MAX_NOTE], action=action, actor_role=role[:16], data=data)


class GroupDetector:
    """Detection at creation (``TicketService.add`` calls ``ticket_added``)."""

    def __init__(self, policy: SlaPolicy | None = None, *, notify: bool = True) -> None:
        self.policy = policy or SlaPolicy()
        self._notify = notify  # arm the notice (only where an SLA worker runs)

    async def ticket_added(self, session: AsyncSession, ticket: Ticket) -> TicketGroup | None:
        """Join or open the incident of the new ticket (same transaction); the incident,
        or None when the ticket is no part of one."""
        if ticket.community_id is None or ticket.category not in BUILDING_WIDE:
            return None
        community = await session.get(Community, ticket.community_id)
        if community is None:
            return None
        rule = self.policy.group_rule(community.code)
        if not rule.enabled:
            return None
        building = (await _buildings(session, [ticket]))[ticket.id]
        key = open_key(community.id, building, ticket.category)
        await _serialize(session, key)
        now = ticket.created_at
        group = await self._open(session, key)
        if group is not None:
            await self._join(session, community, group, [ticket], now)
            return group
        members = [*await self._candidates(session, ticket, building, rule, now), ticket]
        if len({household(t) for t in members}) < rule.threshold:
            return None
        group = TicketGroup(community_id=community.id, building=building,
                            category=ticket.category, state="open", open_key=key,
                            opened_at=now, opened_by_ticket_id=ticket.id)
        if session.get_bind().dialect.name == "postgresql":
            try:  # the advisory lock makes this the only one; the unique key proves it
                async with session.begin_nested():
                    session.add(group)
                    await session.flush()
            except IntegrityError:
                other = await self._open(session, key)
                if other is None:
                    raise
                await self._join(session, community, other, [ticket], now)
                return other
        else:
            session.add(group)
            await session.flush()
        label = group_label(community.name, building, ticket.category)
        homes = len({household(t) for t in members})
        session.add(TicketGroupEvent(
            group_id=group.id, action="open", ticket_id=ticket.id, actor="system", at=now,
            note=f"{homes}户在{int(rule.window.total_seconds() // 60)}分钟内报告，自动建立群发事件",
            data={"tickets": [t.id for t in members], "numbers": [t.number for t in members],
                  "households": homes}))
        for t in members:
            t.group_id = group.id
            session.add(_ticket_event(t, "group_join", f"并入群发事件：{label}（{homes}户报告）",
                                      now, "system", "", {"group_id": group.id}))
        if self._notify:
            session.add(SlaTimer(ticket_id=ticket.id, kind=GROUP_NOTICE, due_at=now,
                                 state="pending", limit_min=0, working_time=False,
                                 armed_at=now))
        await session.flush()
        return group

    @staticmethod
    async def _open(session: AsyncSession, key: str) -> TicketGroup | None:
        # Locked: a close running now is waited for, and then no longer matches.
        return (await session.scalars(select(TicketGroup).where(
            TicketGroup.open_key == key).with_for_update())).first()

    @staticmethod
    async def _candidates(session: AsyncSession, ticket: Ticket, building: str,
                          rule: GroupRule, now: datetime) -> list[Ticket]:
        rows = list((await session.scalars(select(Ticket).where(
            Ticket.community_id == ticket.community_id, Ticket.category == ticket.category,
            Ticket.state.in_(sorted(OPEN_STATES)), Ticket.group_id.is_(None),
            Ticket.id != ticket.id, Ticket.created_at >= now - rule.window,
            # taken out of an incident by hand: the front desk said it is another matter
            ~exists().where(TicketEvent.ticket_id == Ticket.id,
                            TicketEvent.action == "group_unlink"))
            .order_by(Ticket.id))).all())
        where = await _buildings(session, rows)
        return [t for t in rows if where[t.id] == building]

    @staticmethod
    async def _join(session: AsyncSession, community: Community, group: TicketGroup,
                    tickets: Sequence[Ticket], now: datetime) -> None:
        for t in tickets:
            t.group_id = group.id
        await session.flush()
        homes = await households_of(session, group.id)
        label = group_label(community.name, group.building, group.category)
        for t in tickets:
            session.add(_ticket_event(t, "group_join", f"并入群发事件：{label}（{homes}户报告）",
                                      now, "system", "", {"group_id": group.id}))
            session.add(TicketGroupEvent(group_id=group.id, action="join", ticket_id=t.id,
                                         actor="system", at=now,
                                         note=f"{t.number} 报告，共{homes}户",
                                         data={"number": t.number, "households": homes}))
        await session.flush()


async def households_of(session: AsyncSession, group_id: int) -> int:
    members = (await session.scalars(select(Ticket).where(Ticket.group_id == group_id))).all()
    return len({household(t) for t in members})


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True, slots=True)
class MemberView:
    id: int
    number: str
    state: str
    location: str
    caller_name: str
    caller_number: str
    summary: str
    created_at: datetime

    @property
    def state_label(self) -> str:
        return STATES.get(self.state, self.state)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "state": self.state,
                "state_label": self.state_label, "location": self.location,
                "caller_name": self.caller_name, "caller_number": self.caller_number,
                "summary": self.summary, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class GroupEventView:
    action: str
    ticket_id: int | None
    actor: str
    actor_role: str
    at: datetime
    note: str
    data: dict[str, Any] | None

    @property
    def label(self) -> str:
        return {"open": "建立事件", "join": "新的报告", "link": "加入事件", "unlink": "移出事件",
                "told": "通知主管", "close": "办结事件",
                "outage": "发布停水停电通知"}.get(self.action, self.action)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "label": self.label, "ticket_id": self.ticket_id,
                "actor": self.actor, "actor_role": self.actor_role or None,
                "at": self.at.isoformat(), "note": self.note, "data": self.data or {}}


@dataclass(frozen=True, slots=True)
class GroupView:
    id: int
    community_id: int
    community: str
    community_name: str
    building: str
    category: str
    state: str
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str
    resolution: str
    reports: int
    households: int
    members: tuple[MemberView, ...] = ()
    events: tuple[GroupEventView, ...] = ()

    @property
    def label(self) -> str:
        return group_label(self.community_name, self.building, self.category)

    @property
    def state_label(self) -> str:
        return GROUP_STATES.get(self.state, self.state)

    @property
    def category_label(self) -> str:
        cat = CATEGORIES.get(self.category)
        return cat.label if cat else self.category

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "community_id": self.community_id, "community": self.community,
            "building": self.building or None, "category": self.category,
            "category_label": self.category_label, "label": self.label, "state": self.state,
            "state_label": self.state_label, "opened_at": self.opened_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "closed_by": self.closed_by or None, "resolution": self.resolution,
            "reports": self.reports, "households": self.households}
        if detail:
            data["members"] = [m.to_json() for m in self.members]
            data["events"] = [e.to_json() for e in self.events]
        return data


@dataclass(frozen=True, slots=True)
class Membership:
    """What a ticket's page says of its incident."""

    group_id: int
    label: str
    households: int
    state: str


class TicketGroups:
    """Reading, linking, unlinking and closing incidents."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus,
                 clock: Clock, sla: SlaClock | None = None) -> None:
        self._sm = sessionmaker
        self._bus = bus
        self._clock = clock
        self._sla = sla

    async def _views(self, session: AsyncSession, groups: Sequence[TicketGroup], *,
                     detail: bool = False) -> list[GroupView]:
        if not groups:
            return []
        ids = [g.id for g in groups]
        communities = {c.id: c for c in (await session.scalars(select(Community).where(
            Community.id.in_(sorted({g.community_id for g in groups}))))).all()}
        members: dict[int, list[Ticket]] = {}
        for t in (await session.scalars(select(Ticket).where(Ticket.group_id.in_(ids))
                                        .order_by(Ticket.created_at, Ticket.id))).all():
            assert t.group_id is not None
            members.setdefault(t.group_id, []).append(t)
        events: dict[int, list[TicketGroupEvent]] = {}
        if detail:
            for e in (await session.scalars(select(TicketGroupEvent).where(
                    TicketGroupEvent.group_id.in_(ids)).order_by(TicketGroupEvent.id))).all():
                events.setdefault(e.group_id, []).append(e)
        out = []
        for g in groups:
            c = communities.get(g.community_id)
            mine = members.get(g.id, [])
            out.append(GroupView(
                g.id, g.community_id, c.code if c else "", c.name if c else "", g.building,
                g.category, g.state, g.opened_at, g.closed_at, g.closed_by, g.resolution,
                len(mine), len({household(t) for t in mine}),
                tuple(MemberView(t.id, t.number, t.state, t.location, t.caller_name,
                                 t.caller_number, t.summary, t.created_at) for t in mine)
                if detail else (),
                tuple(GroupEventView(e.action, e.ticket_id, e.actor, e.actor_role, e.at,
                                     e.note, e.data) for e in events.get(g.id, []))))
        return out

    async def list(self, scope: frozenset[int] | None, *, state: str | None = None,
                   community_id: int | None = None, limit: int = 50, offset: int = 0
                   ) -> tuple[int, list[GroupView]]:
        """Open first, newest first; ``scope`` the person's communities (None: all)."""
        cond: list[ColumnElement[bool]] = []
        if scope is not None:
            cond.append(TicketGroup.community_id.in_(sorted(scope)))
        if state is not None:
            cond.append(TicketGroup.state == state)
        if community_id is not None:
            cond.append(TicketGroup.community_id == community_id)
        async with self._sm() as session:
            total = int(await session.scalar(select(func.count(TicketGroup.id)).where(*cond))
                        or 0)
            rows = (await session.scalars(select(TicketGroup).where(*cond).order_by(
                (TicketGroup.state == "open").desc(), TicketGroup.opened_at.desc(),
                TicketGroup.id.desc()).limit(limit).offset(offset))).all()
            return total, await self._views(session, rows)

    async def get(self, group_id: int, scope: frozenset[int] | None) -> GroupView:
        async with self._sm() as session:
            group = await session.get(TicketGroup, group_id)
            if group is None or (scope is not None and group.community_id not in scope):
                raise NotFound("事件不存在 / no such incident", details={"field": "group_id"})
            return (await self._views(session, [group], detail=True))[0]

    async def of_ticket(self, ticket_id: int) -> Membership | None:
        async with self._sm() as session:
            group = (await session.scalars(select(TicketGroup).join(
                Ticket, Ticket.group_id == TicketGroup.id).where(Ticket.id == ticket_id))).first()
            if group is None:
                return None
            return Membership(group.id, await label_of(session, group),
                              await households_of(session, group.id), group.state)

    # -- by hand --------------------------------------------------------------

    async def _locked(self, session: AsyncSession, group_id: int,
                      scope: frozenset[int] | None) -> TicketGroup:
        group = (await session.scalars(select(TicketGroup).where(
            TicketGroup.id == group_id).with_for_update())).first()
        if group is None or (scope is not None and group.community_id not in scope):
            raise NotFound("事件不存在 / no such incident", details={"field": "group_id"})
        return group

    @staticmethod
    def _reason(value: str, field: str, what: str) -> str:
        value = value.strip()
        if not value:
            raise InvalidInput(f"请填写{what}", field=field)
        if len(value) > MAX_NOTE:
            raise InvalidInput(f"{what}过长（{MAX_NOTE}字以内）", field=field)
        return value

    async def _ticket(self, session: AsyncSession, ticket_id: int,
                      scope: frozenset[int] | None) -> Ticket:
        ticket = (await session.scalars(select(Ticket).where(
            Ticket.id == ticket_id).with_for_update())).first()
        if ticket is None or (scope is not None and ticket.community_id not in scope):
            raise NotFound("工单不存在 / no such ticket", details={"field": "ticket_id"})
        return ticket

    async def link(self, group_id: int, ticket_id: int, actor: Actor, reason: str,
                   scope: frozenset[int] | None) -> GroupView:
        """The front desk adds a ticket of the incident's community (in no incident)."""
        now = self._clock.now()
        async with self._sm() as session:
            group = await self._locked(session, group_id, scope)
            check_group_action("link", actor.role)
            if group.state != "open":
                raise ActionNotNow("事件已办结，不能再加入工单", details={"action": "link"})
            reason = self._reason(reason, "reason", "加入原因")
            ticket = await self._ticket(session, ticket_id, scope)
            if ticket.community_id != group.community_id:
                raise InvalidInput("只能加入同一小区的工单", field="ticket_id")
            if ticket.group_id == group.id:
                raise Conflict("工单已在这个事件中", details={"field": "ticket_id"})
            if ticket.group_id is not None:
                raise Conflict("工单已属于另一个事件，请先移出", details={"field": "ticket_id"})
            ticket.group_id = group.id
            await session.flush()
            await self._log_membership(session, group, ticket, "link", reason, now, actor, {
                "number": ticket.number, "households": await households_of(session, group.id)})
            await session.commit()
        return await self.get(group_id, scope)

    async def unlink(self, group_id: int, ticket_id: int, actor: Actor, reason: str,
                     scope: frozenset[int] | None) -> GroupView:
        """The front desk takes a ticket out (not the same event after all)."""
        now = self._clock.now()
        async with self._sm() as session:
            group = await self._locked(session, group_id, scope)
            check_group_action("unlink", actor.role)
            if group.state != "open":
                raise ActionNotNow("事件已办结，不能移出工单", details={"action": "unlink"})
            reason = self._reason(reason, "reason", "移出原因")
            ticket = await self._ticket(session, ticket_id, scope)
            if ticket.group_id != group.id:
                raise NotFound("工单不在这个事件中", details={"field": "ticket_id"})
            ticket.group_id = None
            await self._log_membership(session, group, ticket, "unlink", reason, now, actor,
                                       {"number": ticket.number})
            await session.commit()
        return await self.get(group_id, scope)

    @staticmethod
    async def _log_membership(session: AsyncSession, group: TicketGroup, ticket: Ticket,
                              action: str, reason: str, now: datetime, actor: Actor,
                              data: dict[str, Any]) -> None:
        """A link or unlink in the ticket's log and the incident's."""
        verb = "加入" if action == "link" else "移出"
        label = await label_of(session, group)
        session.add(_ticket_event(ticket, f"group_{action}", f"{verb}群发事件：{label}；{reason}",
                                  now, actor.username, actor.role,
                                  {"group_id": group.id, "reason": reason}))
        session.add(TicketGroupEvent(
            group_id=group.id, action=action, ticket_id=ticket.id, actor=actor.username[:100],
            actor_role=actor.role[:16], at=now, note=reason, data=data))

    async def log_outage(self, group_id: int, actor: Actor, note: str, data: dict[str, Any],
                         scope: frozenset[int] | None) -> None:
        """A notice posted from the incident (``ticketing.group_outages``), in its log."""
        now = self._clock.now()
        async with self._sm() as session:
            group = await self._locked(session, group_id, scope)
            session.add(TicketGroupEvent(
                group_id=group.id, action="outage", actor=actor.username[:100],
                actor_role=actor.role[:16], at=now, note=note[:MAX_NOTE], data=data))
            await session.commit()

    async def close(self, group_id: int, actor: Actor, note: str,
                    scope: frozenset[int] | None) -> GroupView:
        """办结: one transaction moves every open member to 已完工 and logs on each one
        the incident and the note (finished ones are told only)."""
        now = self._clock.now()
        moved: list[tuple[Ticket, str]] = []
        async with self._sm() as session:
            group = await self._locked(session, group_id, scope)
            check_group_action("close", actor.role)
            if group.state != "open":
                raise ActionNotNow("事件已办结", details={"action": "close"})
            note = self._reason(note, "note", "办结说明")
            label = await label_of(session, group)
            members = (await session.scalars(select(Ticket).where(
                Ticket.group_id == group.id).order_by(Ticket.id).with_for_update())).all()
            informed: list[str] = []
            for t in members:
                data = {"group_id": group.id, "resolution": note}
                if t.state in OPEN_STATES:
                    before = t.state
                    session.add(_ticket_event(t, "group_resolve", f"群发事件办结：{label}；{note}",
                                              now, actor.username, actor.role, data,
                                              to_state="resolved"))
                    t.state, t.updated_at = "resolved", now
                    moved.append((t, before))
                    if self._sla is not None:
                        await self._sla.ticket_moved(
                            session, t, [Move("group_resolve", before, "resolved")], now)
                else:
                    session.add(_ticket_event(t, "group_closed", f"群发事件办结：{label}；{note}",
                                              now, actor.username, actor.role, data))
                    informed.append(t.number)
            group.state, group.open_key = "closed", None
            group.closed_at, group.closed_by, group.resolution = now, actor.username[:100], note
            session.add(TicketGroupEvent(
                group_id=group.id, action="close", actor=actor.username[:100],
                actor_role=actor.role[:16], at=now, note=note,
                data={"resolved": [t.number for t, _ in moved], "informed": informed}))
            await session.commit()
        for t, before in moved:
            self._bus.publish(DomainEvent("ticket.changed", {
                "ticket_id": t.id, "number": t.number, "action": "group_resolve",
                "from": before, "to": "resolved", "state": "resolved", "actor": actor.username,
                "actor_id": actor.user_id, "actor_role": actor.role, "note": note,
                "data": {"group_id": group_id}, "category": t.category, "priority": t.priority,
                "community_id": t.community_id, "department": t.department,
                "assignee_id": t.assignee_id}, at=now))
        self._bus.publish(DomainEvent("ticket_group.closed", {
            "group_id": group_id, "resolved": [t.id for t, _ in moved]}, at=now))
        return await self.get(group_id, scope)
