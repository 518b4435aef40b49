"""What the ticketing domain does: create, move through the lifecycle, find.

No web framework here. Every change is written with a ``TicketEvent`` in the
same transaction; after the commit the service publishes ``ticket.created`` /
``ticket.changed`` on the bus, and ``incident.requested`` for an emergency.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.directory.models import Building, Community, Person, Room, StaffUser, Unit
from callcenter.errors import InvalidInput, NotFound
from ticketing.categories import (
    CATEGORIES,
    COMMON_AREAS,
    COMPLAINT,
    COMPLAINT_GRADES,
    DEFAULT_GRADE,
    PRIORITIES,
    SOURCES,
    department_for,
)
from ticketing.group_models import GROUP_EVENT_LABELS
from ticketing.groups import GroupDetector
from ticketing.lifecycle import INITIAL_STATE, STATES, check_transition
from ticketing.listen import pending_notice
from ticketing.models import CallbackTask, Ticket, TicketCounter, TicketEvent, TicketPhoto
from ticketing.sla_timers import BREACH_ACTION, MAJOR_ACTION, Breach, Move, SlaClock, breaches_for
from ticketing.workflow import ACTIONS

NUMBER_PREFIX = "BX"
UNRECOGNISED_SUMMARY = "留言无法识别，请收听录音"
MAX_SUMMARY = 500
MAX_DESCRIPTION = 20_000


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What a new ticket is made from (a call, an agent, the API, a voicemail)."""

    source: str
    category: str
    summary: str
    priority: str = "normal"
    description: str = ""
    caller_number: str = ""
    caller_name: str = ""
    person_id: int | None = None
    room_id: int | None = None
    community_id: int | None = None
    location: str = ""
    said_building: str | None = None
    said_unit: str | None = None
    said_room: str | None = None
    location_conflict: bool = False
    recording_id: int | None = None
    created_by: str = ""
    listen_reason: str = ""
    """Set (an error id) when a person must listen to the recording: the voicemail's
    transcription or triage never completed (``ticketing.listen``)."""
    common_area: str = ""
    """A common-area location (地下车库, 电梯厅 ...): the ticket is about no one's room."""
    idempotency_key: str | None = None
    """The form's or client's key: the same key twice makes one ticket."""
    complaint_grade: str | None = None
    """投诉分级, for a complaint only (None: ``general``)."""


@dataclass(frozen=True, slots=True)
class EventView:
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    note: str
    action: str = ""
    actor_role: str = ""
    data: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        if self.action in ACTIONS:
            return ACTIONS[self.action].label
        if self.action == BREACH_ACTION:
            return "超时"
        if self.action == MAJOR_ACTION:
            return "重大投诉通知"
        if self.action in GROUP_EVENT_LABELS:
            return GROUP_EVENT_LABELS[self.action]
        return "受理" if self.from_state is None else STATES.get(self.to_state, "状态变更")

    def to_json(self) -> dict[str, Any]:
        return {"from": self.from_state, "to": self.to_state, "actor": self.actor,
                "at": self.at.isoformat(), "note": self.note, "action": self.action or None,
                "actor_role": self.actor_role or None, "data": self.data or {}}


@dataclass(frozen=True, slots=True)
class PhotoView:
    id: int
    content_type: str
    size_bytes: int
    uploaded_by: str
    uploaded_at: datetime

    def to_json(self, ticket_id: int) -> dict[str, Any]:
        return {"id": self.id, "content_type": self.content_type, "size": self.size_bytes,
                "uploaded_by": self.uploaded_by, "uploaded_at": self.uploaded_at.isoformat(),
                "url": f"/tickets/{ticket_id}/photos/{self.id}"}


@dataclass(frozen=True, slots=True)
class CallbackView:
    id: int
    reason: str
    created_at: datetime
    created_by: str
    done_at: datetime | None
    done_by: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by,
                "done_at": self.done_at.isoformat() if self.done_at else None,
                "done_by": self.done_by or None, "note": self.note}


@dataclass(frozen=True, slots=True)
class TicketView:
    id: int
    number: str
    community_id: int | None
    community: str | None
    source: str
    caller_number: str
    caller_name: str
    person_id: int | None
    room_id: int | None
    location: str
    said_building: str | None
    said_unit: str | None
    said_room: str | None
    location_conflict: bool
    category: str
    priority: str
    department: str
    state: str
    summary: str
    description: str
    recording_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    events: tuple[EventView, ...] = field(default_factory=tuple)
    place: RoomPlace | None = None
    needs_listen: bool = False
    listen_reason: str = ""
    listen_notice: str = ""
    listen_notified_at: datetime | None = None
    common_area: str = ""
    assignee_id: int | None = None
    assignee_name: str = ""
    appointment_at: datetime | None = None
    followup_score: int | None = None
    followup_resolved: bool | None = None
    followup_comment: str = ""
    materials: str = ""
    cost: Decimal | None = None
    photos: tuple[PhotoView, ...] = ()
    callbacks: tuple[CallbackView, ...] = ()
    breaches: tuple[Breach, ...] = ()  # SLA clocks that ran out and still stand
    complaint_grade: str | None = None  # 投诉分级 (complaints only)
    group_id: int | None = None  # 群发事件 (``ticketing.groups``)

    @property
    def complaint_grade_label(self) -> str:
        return COMPLAINT_GRADES.get(self.complaint_grade or "", "")

    @property
    def open_callbacks(self) -> tuple[CallbackView, ...]:
        return tuple(c for c in self.callbacks if c.done_at is None)

    @property
    def emergency(self) -> bool:
        return self.priority == "emergency"

    def to_json(self, *, with_events: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "number": self.number,
            "community_id": self.community_id,
            "community": self.community,
            "source": self.source,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "person_id": self.person_id,
            "room_id": self.room_id,
            "location": self.location,
            "said_location": {"building": self.said_building, "unit": self.said_unit,
                              "room": self.said_room},
            "location_conflict": self.location_conflict,
            "category": self.category,
            "priority": self.priority,
            "complaint_grade": self.complaint_grade,
            "complaint_grade_label": self.complaint_grade_label or None,
            "group_id": self.group_id,
            "department": self.department,
            "state": self.state,
            "summary": self.summary,
            "description": self.description,
            "recording_id": self.recording_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "listen": {"needed": self.needs_listen, "reason": self.listen_reason or None,
                       "notice": self.listen_notice or None,
                       "notified_at": self.listen_notified_at.isoformat()
                       if self.listen_notified_at else None},
        }
        data.update({
            "common_area": self.common_area or None,
            "assignee": {"user_id": self.assignee_id, "name": self.assignee_name}
            if self.assignee_id is not None else None,
            "appointment_at": self.appointment_at.isoformat() if self.appointment_at else None,
            "follow_up": {"score": self.followup_score, "resolved": self.followup_resolved,
                          "comment": self.followup_comment}
            if self.followup_score is not None else None,
            "materials": self.materials,
            "cost": str(self.cost) if self.cost is not None else None,
        })
        if with_events:
            data["events"] = [e.to_json() for e in self.events]
            data["photos"] = [p.to_json(self.id) for p in self.photos]
            data["callbacks"] = [c.to_json() for c in self.callbacks]
            data["sla"] = {"red": bool(self.breaches),
                           "breaches": [b.to_json() for b in self.breaches]}
        return data

    def where(self) -> tuple[str | None, str | None, str | None]:
        """(building, unit, room): the directory's room when known, else what was said."""
        if self.place is not None:
            return self.place.building, self.place.unit, self.place.room
        return self.said_building, self.said_unit, self.said_room


@dataclass(frozen=True, slots=True)
class TicketFilter:
    states: tuple[str, ...] = ()
    category: str | None = None
    priority: str | None = None
    community_id: int | None = None
    room_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    assignee_id: int | None = None
    complaint_grade: str | None = None
    # The communities of the person asking (ids; None: every one): nothing else is listed.
    scope: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: tuple[TicketView, ...]
    total: int
    limit: int
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"items": [t.to_json() for t in self.items], "total": self.total,
                "limit": self.limit, "offset": self.offset}


@dataclass(frozen=True, slots=True)
class RoomPlace:
    """A room with where it is, as a ticket shows it."""

    room_id: int
    community_id: int
    community_code: str
    community: str
    building: str
    unit: str | None
    room: str

    @property
    def label(self) -> str:
        unit = f"{self.unit}单元" if self.unit else ""
        return f"{self.community}{self.building}栋{unit}{self.room}室"


async def room_place(session: AsyncSession, room_id: int) -> RoomPlace | None:
    row = (
        await session.execute(
            select(Room.id, Community.id, Community.code, Community.name, Building.name,
                   Unit.name, Room.number)
            .join(Unit, Unit.id == Room.unit_id)
            .join(Building, Building.id == Unit.building_id)
            .join(Community, Community.id == Building.community_id)
            .where(Room.id == room_id)
        )
    ).first()
    if row is None:
        return None
    return RoomPlace(row[0], row[1], row[2], row[3], row[4], row[5] or None, row[6])


async def find_rooms(session: AsyncSession, *, building: str, room: str, unit: str | None = None,
                     community_ids: tuple[int, ...] = ()) -> list[RoomPlace]:
    """Rooms matching a spoken location (building + room, unit when said)."""
    stmt = (
        select(Room.id, Community.id, Community.code, Community.name, Building.name, Unit.name,
               Room.number)
        .join(Unit, Unit.id == Room.unit_id)
        .join(Building, Building.id == Unit.building_id)
        .join(Community, Community.id == Building.community_id)
        .where(func.upper(Building.name) == building.upper(), Room.number == room)
        .order_by(Room.id)
    )
    if unit:
        stmt = stmt.where(Unit.name == unit)
    if community_ids:
        stmt = stmt.where(Community.id.in_(community_ids))
    rows = (await session.execute(stmt)).all()
    return [RoomPlace(r[0], r[1], r[2], r[3], r[4], r[5] or None, r[6]) for r in rows]


def validate_new(new: NewTicket) -> NewTicket:
    """Check a new ticket's fields; a 400 naming the first bad field."""
    if new.source not in SOURCES:
        raise InvalidInput(f"来源无效 / source must be one of {', '.join(SOURCES)}", field="source")
    if new.category not in CATEGORIES:
        raise InvalidInput(f"类别无效 / category must be one of {', '.join(CATEGORIES)}",
                           field="category")
    if new.priority not in PRIORITIES:
        raise InvalidInput("优先级无效 / priority must be emergency or normal", field="priority")
    if new.complaint_grade is not None:
        if new.complaint_grade not in COMPLAINT_GRADES:
            raise InvalidInput("投诉等级无效 / complaint_grade must be one of "
                               + ", ".join(COMPLAINT_GRADES), field="complaint_grade")
        if new.category != COMPLAINT:
            raise InvalidInput("只有服务投诉可以分级 / complaint_grade is for category "
                               "complaint only", field="complaint_grade")
    summary = new.summary.strip()
    if not summary:
        raise InvalidInput("请填写摘要 / summary is required", field="summary")
    if len(summary) > MAX_SUMMARY:
        raise InvalidInput(f"摘要过长 / summary longer than {MAX_SUMMARY} characters",
                           field="summary")
    if len(new.description) > MAX_DESCRIPTION:
        raise InvalidInput("描述过长 / description too long", field="description")
    if len(new.caller_number) > 32:
        raise InvalidInput("号码过长 / caller_number too long", field="caller_number")
    if len(new.location) > 200:
        raise InvalidInput("位置过长 / location too long", field="location")
    for name in ("said_building", "said_unit", "said_room"):
        value = getattr(new, name)
        if value is not None and len(value) > 32:
            raise InvalidInput(f"{name} too long", field=name)
    return replace(new, summary=summary)


def idempotency_digest(sender: str, key: str) -> str:
    """What ``tickets.idempotency_key`` stores: the key as one sender's (SHA-256 hex)."""
    return hashlib.sha256(f"{sender}\x00{key}".encode()).hexdigest()


class TicketService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus,
                 clock: Clock, *, timezone: str = "Asia/Shanghai",
                 number_prefix: str = NUMBER_PREFIX, sla: SlaClock | None = None,
                 groups: GroupDetector | None = None) -> None:
        """``sla``: the SLA clock, armed in the transaction of each new ticket and
        moved with each state change (None: no SLA timers). ``groups``: the group
        incidents' detection, in the same transaction (None: no detection)."""
        self._sm = sessionmaker
        self.sla = sla
        self.groups = groups
        self._bus = bus
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._prefix = number_prefix

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sm

    # -- creating -----------------------------------------------------------

    async def create(self, new: NewTicket) -> TicketView:
        view, _created = await self.create_once(new)
        return view

    async def create_once(self, new: NewTicket) -> tuple[TicketView, bool]:
        """Create the ticket, or, when its ``idempotency_key`` was seen before, return
        the ticket that key made: ``(view, created)``. Two requests racing with one
        key make one ticket (the key is unique in the table; the loser reads the
        winner's). A key is the sender's own (``created_by``): the same key from
        someone else is another ticket."""
        key = None
        if new.idempotency_key is not None:
            if not new.idempotency_key.strip() or len(new.idempotency_key) > 64:
                raise InvalidInput("幂等键无效 / idempotency_key: 1-64 characters",
                                   field="idempotency_key")
            # Scoped to who sends it: someone else's key never finds (or blocks) a ticket.
            key = idempotency_digest(new.created_by, new.idempotency_key)
            new = replace(new, idempotency_key=key)
            existing = await self._by_key(key)
            if existing is not None:
                return existing, False
        async with self._sm() as session:
            try:
                ticket = await self.add(session, new)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                existing = await self._by_key(key) if key is not None else None
                if existing is None:
                    raise
                return existing, False
            view = await self._view(session, ticket.id)
        self.announce_created(view)
        return view, True

    async def _by_key(self, key: str) -> TicketView | None:
        async with self._sm() as session:
            tid = (await session.scalars(select(Ticket.id).where(
                Ticket.idempotency_key == key))).first()
            return await self._view(session, tid) if tid is not None else None

    async def add(self, session: AsyncSession, new: NewTicket) -> Ticket:
        """Add a ticket inside the caller's transaction (no commit, no events).

        The ingest uses this to write the ticket and finish its job atomically,
        then calls ``announce_created`` after its commit."""
        new = validate_new(new)
        community_id = new.community_id
        location = new.location.strip()
        if new.common_area:
            if new.common_area not in COMMON_AREAS:
                raise InvalidInput("公共区域无效 / common_area: one of " + "、".join(COMMON_AREAS),
                                   field="common_area")
            if new.room_id is not None:
                raise InvalidInput("公共区域工单不关联房间 / common_area with room_id",
                                   field="common_area")
            if community_id is None:
                raise InvalidInput("公共区域须指定小区 / community is required", field="community")
            community = await session.get(Community, community_id)
            if community is None:
                raise InvalidInput(f"小区不存在 / no community {community_id}",
                                   field="community_id")
            if not location:
                building = f"{new.said_building}栋" if new.said_building else ""
                location = f"{community.name}{building}{new.common_area}"
        if new.room_id is not None:
            place = await room_place(session, new.room_id)
            if place is None:
                raise InvalidInput(f"房间不存在 / no room {new.room_id}", field="room_id")
            if community_id is None:
                community_id = place.community_id
            if not location:
                location = place.label
        if not location:
            location = "".join(part for part in (
                f"{new.said_building}栋" if new.said_building else "",
                f"{new.said_unit}单元" if new.said_unit else "",
                f"{new.said_room}室" if new.said_room else "") if part)
        if community_id is not None and await session.get(Community, community_id) is None:
            raise InvalidInput(f"小区不存在 / no community {community_id}", field="community_id")
        if new.person_id is not None and await session.get(Person, new.person_id) is None:
            raise InvalidInput(f"业主不存在 / no person {new.person_id}", field="person_id")
        now = self._clock.now()
        ticket = Ticket(
            number=await self._next_number(session, now),
            community_id=community_id,
            source=new.source,
            caller_number=new.caller_number.strip(),
            caller_name=new.caller_name.strip()[:100],
            person_id=new.person_id,
            room_id=new.room_id,
            location=location,
            said_building=new.said_building,
            said_unit=new.said_unit,
            said_room=new.said_room,
            location_conflict=new.location_conflict,
            category=new.category,
            priority=new.priority,
            complaint_grade=(new.complaint_grade or DEFAULT_GRADE)
            if new.category == COMPLAINT else None,
            department=department_for(new.category),
            state=INITIAL_STATE,
            summary=new.summary,
            description=new.description,
            recording_id=new.recording_id,
            created_by=new.created_by[:100],
            created_at=now,
            updated_at=now,
            needs_listen=bool(new.listen_reason),
            listen_reason=new.listen_reason[:64],
            listen_notice=pending_notice(new.listen_reason) if new.listen_reason else "",
            common_area=new.common_area[:32],
            idempotency_key=new.idempotency_key,
        )
        session.add(ticket)
        await session.flush()
        session.add(TicketEvent(ticket_id=ticket.id, from_state=None, to_state=INITIAL_STATE,
                                actor=new.created_by[:100], at=now,
                                note=f"来源：{SOURCES[new.source]}", action="create",
                                data={"grade": ticket.complaint_grade}
                                if ticket.complaint_grade else None))
        await session.flush()
        if self.sla is not None:
            await self.sla.ticket_added(session, ticket)
        if self.groups is not None:
            await self.groups.ticket_added(session, ticket)
        return ticket

    async def _next_number(self, session: AsyncSession, now: datetime) -> str:
        prefix = self._prefix + now.astimezone(self._tz).strftime("%Y%m%d")
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert_fn(TicketCounter)
            .values(prefix=prefix, last=1)
            .on_conflict_do_update(index_elements=[TicketCounter.prefix],
                                   set_={"last": TicketCounter.last + 1})
            .returning(TicketCounter.last)
        )
        seq = (await session.execute(stmt)).scalar_one()
        return f"{prefix}-{seq:04d}"

    def announce_created(self, view: TicketView) -> None:
        self._bus.publish(DomainEvent("ticket.created", view.to_json(), at=view.created_at))
        if view.emergency:
            self.request_incident(view)

    def request_incident(self, view: TicketView) -> None:
        """``incident.requested`` for an emergency ticket; paging records the
        ticket number as the incident report's ``reference``, which is how a
        request that was lost is found again (``callcenter.tickets``)."""
        self._bus.publish(DomainEvent("incident.requested", self._incident_data(view),
                                      at=view.created_at))

    def _incident_data(self, view: TicketView) -> dict[str, Any]:
        building, unit, room = view.where()
        return {
            "ticket_id": view.id,
            "number": view.number,
            "community": view.community,
            "community_id": view.community_id,
            "building": building,
            "unit": unit,
            "room": room,
            "room_id": view.room_id,
            "location": view.location,
            "category": view.category,
            "caller": view.caller_number,
            "caller_name": view.caller_name,
            "summary": view.summary,
        }

    # -- changing -----------------------------------------------------------

    async def transition(self, ticket_id: int, to_state: str, *, actor: str,
                         note: str = "") -> TicketView:
        if to_state not in STATES:
            raise InvalidInput(f"状态无效 / to must be one of {', '.join(STATES)}", field="to")
        if len(note) > 1000:
            raise InvalidInput("备注过长 / note longer than 1000 characters", field="note")
        async with self._sm() as session:
            stmt = select(Ticket).where(Ticket.id == ticket_id).with_for_update()
            ticket = (await session.scalars(stmt)).first()
            if ticket is None:
                raise NotFound(f"工单不存在 / no ticket {ticket_id}", details={"ticket_id": ticket_id})
            from_state = ticket.state
            check_transition(from_state, to_state, ticket_id=ticket_id)
            now = self._clock.now()
            ticket.state = to_state
            ticket.updated_at = now
            # A move by the server's own code: the action is the table's for this step.
            action = next((a.key for a in ACTIONS.values()
                           if from_state in a.sources and a.target == to_state), "")
            session.add(TicketEvent(ticket_id=ticket.id, from_state=from_state, to_state=to_state,
                                    actor=actor[:100], at=now, note=note, action=action))
            if self.sla is not None:
                await self.sla.ticket_moved(session, ticket, [Move(action, from_state, to_state)],
                                            now)
            await session.commit()
            view = await self._view(session, ticket_id)
        self._bus.publish(DomainEvent("ticket.changed", {
            "ticket_id": view.id, "number": view.number, "from": from_state, "to": to_state,
            "state": view.state, "actor": actor, "note": note, "category": view.category,
            "priority": view.priority, "community_id": view.community_id,
        }, at=now))
        return view

    # -- reading ------------------------------------------------------------

    async def get(self, ticket_id: int, *, scope: frozenset[int] | None = None) -> TicketView:
        """The ticket; with a ``scope`` (community ids), one of another community (or of
        none) is not found, as if it did not exist."""
        async with self._sm() as session:
            view = await self._view(session, ticket_id)
        if scope is not None and view.community_id not in scope:
            raise NotFound(f"工单不存在 / no ticket {ticket_id}", details={"ticket_id": ticket_id})
        return view

    async def get_by_number(self, number: str) -> TicketView:
        async with self._sm() as session:
            tid = (await session.scalars(select(Ticket.id).where(Ticket.number == number))).first()
            if tid is None:
                raise NotFound(f"工单不存在 / no ticket {number}", details={"number": number})
            return await self._view(session, tid)

    async def _view(self, session: AsyncSession, ticket_id: int) -> TicketView:
        stmt = (
            select(Ticket, Community.code)
            .outerjoin(Community, Community.id == Ticket.community_id)
            .where(Ticket.id == ticket_id)
            .options(selectinload(Ticket.events))
            .execution_options(populate_existing=True)
        )
        row = (await session.execute(stmt)).first()
        if row is None:
            raise NotFound(f"工单不存在 / no ticket {ticket_id}", details={"ticket_id": ticket_id})
        view = _to_view(row[0], row[1], with_events=True)
        if view.room_id is not None:
            view = replace(view, place=await room_place(session, view.room_id))
        photos = (await session.scalars(select(TicketPhoto).where(
            TicketPhoto.ticket_id == ticket_id).order_by(TicketPhoto.id))).all()
        callbacks = (await session.scalars(select(CallbackTask).where(
            CallbackTask.ticket_id == ticket_id).order_by(CallbackTask.id))).all()
        name = ""
        if view.assignee_id is not None:
            user = await session.get(StaffUser, view.assignee_id)
            name = (user.display_name or user.username) if user else ""
        return replace(
            view, assignee_name=name, breaches=tuple(await breaches_for(session, ticket_id)),
            photos=tuple(PhotoView(p.id, p.content_type, p.size_bytes, p.uploaded_by,
                                   p.uploaded_at) for p in photos),
            callbacks=tuple(CallbackView(c.id, c.reason, c.created_at, c.created_by, c.done_at,
                                         c.done_by, c.note) for c in callbacks))

    async def view_in(self, session: AsyncSession, ticket_id: int) -> TicketView:
        """The ticket as this session sees it (for a service working in its own)."""
        return await self._view(session, ticket_id)

    async def list(self, filters: TicketFilter | None = None, *, limit: int = 50,
                   offset: int = 0) -> TicketPage:
        filters = filters or TicketFilter()
        limit = max(1, min(limit, 500))
        offset = max(0, offset)
        base = _filtered(select(Ticket, Community.code), filters).outerjoin(
            Community, Community.id == Ticket.community_id)
        count_stmt = _filtered(select(func.count(Ticket.id)), filters)
        async with self._sm() as session:
            total = int((await session.execute(count_stmt)).scalar_one())
            rows = (
                await session.execute(
                    base.order_by(Ticket.created_at.desc(), Ticket.id.desc())
                    .limit(limit).offset(offset)
                )
            ).all()
        return TicketPage(tuple(_to_view(r[0], r[1]) for r in rows), total, limit, offset)

    async def communities(self, only: int | frozenset[int] | None = None
                          ) -> tuple[tuple[int, str, str], ...]:
        """(id, code, name) of every community, or of ``only`` (one id, or a set)."""
        stmt = select(Community.id, Community.code, Community.name).order_by(Community.id)
        if isinstance(only, int):
            stmt = stmt.where(Community.id == only)
        elif only is not None:
            stmt = stmt.where(Community.id.in_(sorted(only)))
        async with self._sm() as session:
            return tuple((r[0], r[1], r[2]) for r in (await session.execute(stmt)).all())

    async def room_id_for(self, community_id: int, building: str, unit: str | None,
                          room: str) -> int | None:
        """The directory's room at this address, when exactly one matches."""
        async with self._sm() as session:
            found = await find_rooms(session, building=building, unit=unit or None, room=room,
                                     community_ids=(community_id,))
        return found[0].room_id if len(found) == 1 else None

    async def person_for_phone(self, number: str) -> int | None:
        """The one directory person with this phone number, if exactly one."""
        from callcenter.directory.models import PersonPhone
        from callcenter.directory.phones import try_normalize

        e164 = try_normalize(number)
        if e164 is None:
            return None
        async with self._sm() as session:
            ids = (await session.scalars(select(PersonPhone.person_id).where(
                PersonPhone.number == e164).distinct().limit(2))).all()
        return ids[0] if len(ids) == 1 else None

    async def community_id_for(self, code: str) -> int | None:
        async with self._sm() as session:
            return (await session.scalars(select(Community.id).where(Community.code == code))).first()


_S = TypeVar("_S", bound=Select)


def _filtered(stmt: _S, f: TicketFilter) -> _S:
    if f.states:
        stmt = stmt.where(Ticket.state.in_(f.states))
    if f.category:
        stmt = stmt.where(Ticket.category == f.category)
    if f.priority:
        stmt = stmt.where(Ticket.priority == f.priority)
    if f.complaint_grade:
        stmt = stmt.where(Ticket.complaint_grade == f.complaint_grade)
    if f.community_id is not None:
        stmt = stmt.where(Ticket.community_id == f.community_id)
    if f.scope is not None:
        stmt = stmt.where(Ticket.community_id.in_(sorted(f.scope)))
    if f.room_id is not None:
        stmt = stmt.where(Ticket.room_id == f.room_id)
    if f.assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == f.assignee_id)
    if f.since is not None:
        stmt = stmt.where(Ticket.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Ticket.created_at < f.until)
    if f.text:
        q = f.text.strip()
        stmt = stmt.where(or_(
            Ticket.number.contains(q, autoescape=True),
            Ticket.summary.contains(q, autoescape=True),
            Ticket.description.contains(q, autoescape=True),
            Ticket.caller_number.contains(q, autoescape=True),
            Ticket.caller_name.contains(q, autoescape=True),
            Ticket.location.contains(q, autoescape=True),
        ))
    return stmt


def _to_view(t: Ticket, community_code: str | None, *, with_events: bool = False) -> TicketView:
    events: tuple[EventView, ...] = ()
    if with_events:
        events = tuple(EventView(e.from_state, e.to_state, e.actor, e.at, e.note,
                                 e.action or "", e.actor_role or "", e.data)
                       for e in t.events)
    return TicketView(
        id=t.id, number=t.number, community_id=t.community_id, community=community_code,
        source=t.source, caller_number=t.caller_number, caller_name=t.caller_name,
        person_id=t.person_id, room_id=t.room_id, location=t.location,
        said_building=t.said_building, said_unit=t.said_unit, said_room=t.said_room,
        location_conflict=t.location_conflict, category=t.category, priority=t.priority,
        department=t.department, state=t.state, summary=t.summary, description=t.description,
        recording_id=t.recording_id, created_by=t.created_by, created_at=t.created_at,
        updated_at=t.updated_at, events=events, needs_listen=bool(t.needs_listen),
        listen_reason=t.listen_reason or "", listen_notice=t.listen_notice or "",
        listen_notified_at=t.listen_notified_at, common_area=t.common_area or "",
        assignee_id=t.assignee_id, appointment_at=t.appointment_at,
        followup_score=t.followup_score, followup_resolved=t.followup_resolved,
        followup_comment=t.followup_comment or "", materials=t.materials or "", cost=t.cost,
        complaint_grade=t.complaint_grade, group_id=t.group_id,
    )
