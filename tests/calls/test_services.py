"""The call log written from replayed call events, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.models import CallLog
from callcenter.calls.services import CallLogService
from callcenter.calls.tracker import CallTracker
from callcenter.directory.models import Person, PersonPhone
from tests.calls.test_tracker import T0, frames_of


def replayed(name: str, asterisk: str = "pbx1") -> list[DomainEvent]:
    events: list[DomainEvent] = []
    tracker = CallTracker(asterisk, events.append, community="lakeside")
    now = T0
    for f in frames_of(name):
        if f.kind == "event":
            tracker.handle(f, now)
            now += timedelta(seconds=1)
    return events


async def rows(sm: async_sessionmaker[AsyncSession]) -> list[CallLog]:
    async with sm() as s:
        return list((await s.scalars(select(CallLog).order_by(CallLog.id))).all())


async def test_queue_call_logged_with_person_match(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        p = Person(name="张三")
        s.add(p)
        await s.flush()
        s.add(PersonPhone(person_id=p.id, number="+8613700000000", raw="13700000000"))
        await s.commit()
        person_id = p.id
    service = CallLogService(sessionmaker)
    bus = EventBus()
    service.subscribe(bus)
    for e in replayed("05_queue.txt"):
        await bus.publish_and_wait(e)
    [row] = await rows(sessionmaker)
    assert (row.linkedid, row.asterisk, row.community) == ("probe-q-1", "pbx1", "lakeside")
    assert row.caller_number == "+8613700000000" and row.caller_name == "张三 客服测试"
    assert row.person_id == person_id
    assert row.outcome == "answered" and row.answered_by == "Agent 1001"
    assert [r["target"] for r in row.rung] == ["1001"]
    assert row.wait_s is not None and row.talk_s is not None
    assert row.answered_at is not None and row.ended_at is not None
    assert row.started_at < row.answered_at < row.ended_at
    assert row.wait_s == (row.answered_at - row.started_at).total_seconds()
    assert row.talk_s == (row.ended_at - row.answered_at).total_seconds()


async def test_any_order_and_duplicates_give_the_same_row(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    events = replayed("05_queue.txt") + replayed("04_voicemail.txt")
    service = CallLogService(sessionmaker, lookup=None)
    for e in events:
        await service.handle(e)
    first = [r.to_json() for r in await rows(sessionmaker)]
    shuffled = events * 2
    random.Random(5).shuffle(shuffled)
    async with sessionmaker() as s:
        await s.execute(CallLog.__table__.delete())
        await s.commit()
    for e in shuffled:
        await service.handle(e)
    again = [r.to_json() for r in await rows(sessionmaker)]
    strip = [{k: v for k, v in r.items() if k != "id"} for r in first]
    assert sorted(strip, key=lambda r: r["linkedid"]) == sorted(
        ({k: v for k, v in r.items() if k != "id"} for r in again), key=lambda r: r["linkedid"])
    assert {r["outcome"] for r in again} == {"answered", "voicemail"}


async def test_same_linkedid_on_two_pbxs_are_two_calls(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    service = CallLogService(sessionmaker, lookup=None)
    for e in replayed("04_voicemail.txt", "pbx1") + replayed("04_voicemail.txt", "pbx2"):
        await service.handle(e)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(CallLog)) == 2


async def test_search_by_time_and_number(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    service = CallLogService(sessionmaker, lookup=None)
    for e in replayed("05_queue.txt") + replayed("04_voicemail.txt"):
        await service.handle(e)
    found = await service.search(number="+8613912345678")
    assert [r.linkedid for r in found] == ["probe-vm-1"]
    assert len(await service.search(start=T0, end=T0 + timedelta(hours=1))) == 2
    assert await service.search(start=T0 + timedelta(hours=1)) == []
    assert len(await service.search(limit=1)) == 1


async def test_events_without_call_identity_are_ignored(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    service = CallLogService(sessionmaker, lookup=None)
    await service.handle(DomainEvent("call.started", {"asterisk": "pbx1"}))
    await service.handle(DomainEvent("call.started", {"asterisk": "pbx1", "linkedid": "x",
                                                      "started_at": "yesterday"}))
    await service.handle(DomainEvent("call.started", {
        "asterisk": "pbx1", "linkedid": "y", "started_at": datetime(2026, 1, 1, tzinfo=UTC),
        "caller_number": "<not a number>"}))
    [row] = await rows(sessionmaker)
    assert row.linkedid == "y" and row.caller_number == "<not a number>" and row.outcome is None
