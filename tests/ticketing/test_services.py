"""TicketService on SQLite and PostgreSQL: numbers, events, transitions, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import ManualClock
from callcenter.errors import InvalidInput, NotFound
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.errors import IllegalTransition
from ticketing.models import TicketEvent
from ticketing.services import NewTicket, TicketFilter, TicketService


class Recorder:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[DomainEvent] = []
        bus.subscribe("ticket.*", self.on)
        bus.subscribe("incident.*", self.on)

    async def on(self, event: DomainEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def service(sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus,
            clock: ManualClock) -> TicketService:
    return TicketService(sessionmaker, bus, clock, timezone="Asia/Shanghai")


@pytest.fixture
async def seeded(sessionmaker: async_sessionmaker[AsyncSession]) -> Seeded:
    return await seed_directory(sessionmaker)


def leak(**kw: object) -> NewTicket:
    base: dict[str, object] = dict(source="agent", category="plumbing", summary="厨房水管漏水",
                                   caller_number="13912345678", created_by="agent1")
    base.update(kw)
    return NewTicket(**base)  # type: ignore[arg-type]


async def test_numbers_are_per_local_day_and_unique(service: TicketService, clock: ManualClock,
                                                    seeded: Seeded) -> None:
    a = await service.create(leak())
    b = await service.create(leak())
    assert (a.number, b.number) == ("BX20261122-0001", "BX20261122-0002")
    await clock.advance(14 * 3600)  # 16:00 UTC = midnight in Shanghai
    c = await service.create(leak())
    assert c.number == "BX20261123-0001"


async def test_create_fills_department_location_community_and_logs_creation(
        service: TicketService, seeded: Seeded, bus: EventBus) -> None:
    rec = Recorder(bus)
    t = await service.create(leak(room_id=seeded.room_3_2_1201, person_id=seeded.wang_id))
    await bus.drain()
    assert t.department == "engineering"
    assert t.community_id == seeded.community_id and t.community == "hupan"
    assert t.location == "湖畔花园3栋2单元1201室"
    assert t.state == "new"
    assert [(e.from_state, e.to_state, e.actor) for e in t.events] == [(None, "new", "agent1")]
    assert rec.names() == ["ticket.created"]
    assert rec.events[0].data["number"] == t.number


async def test_emergency_ticket_requests_an_incident(service: TicketService, seeded: Seeded,
                                                     bus: EventBus) -> None:
    rec = Recorder(bus)
    t = await service.create(leak(priority="emergency", room_id=seeded.room_3_2_1201,
                                  summary="水管爆裂"))
    await bus.drain()
    assert sorted(rec.names()) == ["incident.requested", "ticket.created"]
    inc = next(e for e in rec.events if e.name == "incident.requested").data
    assert inc["ticket_id"] == t.id
    assert (inc["community"], inc["building"], inc["unit"], inc["room"]) == ("hupan", "3", "2", "1201")
    assert inc["category"] == "plumbing" and inc["caller"] == "13912345678"
    assert inc["summary"] == "水管爆裂"


BAD_NEW: list[tuple[dict[str, object], str]] = [
    ({"category": "roof"}, "category"),
    ({"source": "fax"}, "source"),
    ({"priority": "urgent"}, "priority"),
    ({"summary": "   "}, "summary"),
    ({"summary": "x" * 501}, "summary"),
    ({"room_id": 999999}, "room_id"),
    ({"person_id": 999999}, "person_id"),
    ({"community_id": 999999}, "community_id"),
]


async def test_bad_new_ticket_names_the_field(service: TicketService, seeded: Seeded) -> None:
    for kw, field in BAD_NEW:
        with pytest.raises(InvalidInput) as info:
            await service.create(leak(**kw))
        assert info.value.details["field"] == field, kw
    page = await service.list()
    assert page.total == 0


async def test_full_lifecycle_with_reopen_is_logged(service: TicketService, seeded: Seeded,
                                                    bus: EventBus, clock: ManualClock,
                                                    sessionmaker: async_sessionmaker[AsyncSession]
                                                    ) -> None:
    t = await service.create(leak())
    rec = Recorder(bus)
    path = ["dispatched", "accepted", "in_progress", "resolved", "reopened", "dispatched",
            "accepted", "in_progress", "resolved", "followed_up", "closed", "reopened",
            "dispatched", "cancelled"]
    for step in path:
        await clock.advance(60)
        t = await service.transition(t.id, step, actor="eng1", note=f"to {step}")
    await bus.drain()
    assert t.state == "cancelled"
    assert [e.to_state for e in t.events] == ["new", *path]
    assert [e.from_state for e in t.events] == [None, "new", *path[:-1]]
    assert rec.names() == ["ticket.changed"] * len(path)
    assert rec.events[-1].data["from"] == "dispatched" and rec.events[-1].data["to"] == "cancelled"
    async with sessionmaker() as s:
        notes = (await s.scalars(select(TicketEvent.note).where(TicketEvent.ticket_id == t.id)
                                 .order_by(TicketEvent.id))).all()
    assert notes[-1] == "to cancelled"


async def test_illegal_transition_changes_nothing(service: TicketService, seeded: Seeded,
                                                  bus: EventBus) -> None:
    t = await service.create(leak())
    rec = Recorder(bus)
    with pytest.raises(IllegalTransition) as info:
        await service.transition(t.id, "closed", actor="x")
    assert info.value.details == {"from": "new", "to": "closed", "ticket_id": t.id}
    with pytest.raises(InvalidInput) as bad:
        await service.transition(t.id, "exploded", actor="x")
    assert bad.value.details["field"] == "to"
    with pytest.raises(NotFound):
        await service.transition(987654, "dispatched", actor="x")
    await bus.drain()
    again = await service.get(t.id)
    assert again.state == "new" and len(again.events) == 1
    assert rec.events == []


async def test_list_filters(service: TicketService, seeded: Seeded, clock: ManualClock) -> None:
    first = await service.create(leak(room_id=seeded.room_3_2_1201))
    await clock.advance(3600)
    noise = await service.create(leak(category="noise", summary="楼上装修噪音",
                                      room_id=seeded.room_5_1_801, caller_number="13800000002"))
    await clock.advance(3600)
    fire = await service.create(leak(category="fire", priority="emergency", summary="楼道冒烟",
                                     room_id=seeded.room_other_1_1_101))
    await service.transition(first.id, "dispatched", actor="a")

    async def ids(**kw: object) -> list[int]:
        page = await service.list(TicketFilter(**kw))  # type: ignore[arg-type]
        return [t.id for t in page.items]

    assert await ids() == [fire.id, noise.id, first.id]  # newest first
    assert await ids(states=("dispatched",)) == [first.id]
    assert await ids(states=("new", "dispatched")) == [fire.id, noise.id, first.id]
    assert await ids(category="noise") == [noise.id]
    assert await ids(priority="emergency") == [fire.id]
    assert await ids(community_id=seeded.other_community_id) == [fire.id]
    assert await ids(room_id=seeded.room_5_1_801) == [noise.id]
    assert await ids(text="装修") == [noise.id]
    assert await ids(text="13800000002") == [noise.id]
    assert await ids(text=first.number) == [first.id]
    assert await ids(text="%") == []
    start = first.created_at
    assert await ids(since=start + timedelta(minutes=30)) == [fire.id, noise.id]
    assert await ids(until=start + timedelta(minutes=30)) == [first.id]
    page = await service.list(limit=2, offset=1)
    assert page.total == 3 and [t.id for t in page.items] == [noise.id, first.id]
    assert (await service.get_by_number(noise.number)).id == noise.id
