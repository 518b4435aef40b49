"""The call log written from replayed call events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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


async def test_a_number_shared_by_two_people_names_nobody(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        for name in ("张三", "李四"):  # a couple sharing the home landline
            p = Person(name=name)
            s.add(p)
            await s.flush()
            s.add(PersonPhone(person_id=p.id, number="+8613700000000", raw="13700000000"))
        await s.commit()
    service = CallLogService(sessionmaker)
    bus = EventBus()
    service.subscribe(bus)
    for e in replayed("05_queue.txt"):
        await bus.publish_and_wait(e)
    [row] = await rows(sessionmaker)
    assert row.caller_number == "+8613700000000" and row.person_id is None


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


async def test_events_close_together_are_written_in_one_transaction(
        sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    service = CallLogService(sessionmaker, lookup=None, batch_delay_s=0.05)
    queue_call = replayed("05_queue.txt")
    voicemail_call = replayed("04_voicemail.txt", asterisk="pbx2")
    await asyncio.gather(*(service.handle(e) for e in queue_call + voicemail_call))
    assert len(commits) == 1
    by_call = {(r.asterisk, r.linkedid): r for r in await rows(sessionmaker)}
    assert len(by_call) == 2
    assert by_call[("pbx1", "probe-q-1")].outcome == "answered"
    assert {r.outcome for r in by_call.values()} == {"answered", "voicemail"}


async def test_a_bad_event_in_a_batch_loses_only_itself(
        sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    service = CallLogService(sessionmaker, lookup=None, batch_delay_s=0.05)
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    good_a = DomainEvent("call.started", {"asterisk": "pbx1", "linkedid": "a", "started_at": at,
                                          "caller_number": "13700000000"})
    good_b = DomainEvent("call.started", {"asterisk": "pbx1", "linkedid": "b", "started_at": at})
    # A naive time cannot be compared with the row's aware one: this event fails.
    bad = DomainEvent("call.answered", {"asterisk": "pbx1", "linkedid": "a",
                                        "started_at": datetime(2026, 11, 23, 1, 0)})
    await asyncio.gather(service.handle(good_a), service.handle(bad), service.handle(good_b))
    assert {r.linkedid: r.caller_number for r in await rows(sessionmaker)} == {
        "a": "+8613700000000", "b": None}
    assert "call.answered of call a not written" in caplog.text


async def test_close_writes_what_is_pending(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    service = CallLogService(sessionmaker, lookup=None, batch_delay_s=0.05)
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    pending = asyncio.ensure_future(service.handle(DomainEvent(
        "call.started", {"asterisk": "pbx1", "linkedid": "late", "started_at": at})))
    await asyncio.sleep(0)
    await service.close()
    assert pending.done()
    assert [r.linkedid for r in await rows(sessionmaker)] == ["late"]


async def test_a_standby_writes_no_call_until_it_takes_the_link_over_then_what_it_held(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Two servers hear the same Asterisk; only the link's owner writes its calls.
    The standby holds the last ``hold_s`` of events and writes them on a takeover,
    so a call that ended between the owner's crash and the takeover is complete."""
    owned = {"pbx1": False, "pbx2": True}
    clock = [100.0]
    service = CallLogService(sessionmaker, lookup=None, writes=owned.__getitem__,
                             hold_s=30.0, monotonic=lambda: clock[0])
    stale = replayed("04_voicemail.txt", "pbx1")
    for e in stale:
        await service.handle(e)
    clock[0] += 31.0  # older than hold_s by the takeover: the old owner wrote those
    queue_call = replayed("05_queue.txt", "pbx1")
    for e in queue_call:
        await service.handle(e)
    for e in replayed("04_voicemail.txt", "pbx2"):  # a link it owns: written at once
        await service.handle(e)
    assert [(r.asterisk, r.outcome) for r in await rows(sessionmaker)] == [("pbx2", "voicemail")]
    owned["pbx1"] = True
    assert await service.take_over("pbx1") == len(queue_call)
    assert await service.take_over("pbx1") == 0  # nothing held twice
    got = {(r.asterisk, r.linkedid): r for r in await rows(sessionmaker)}
    assert set(got) == {("pbx2", stale[0].data["linkedid"]), ("pbx1", "probe-q-1")}
    row = got[("pbx1", "probe-q-1")]
    assert row.outcome == "answered" and row.ended_at is not None and row.talk_s is not None
    await service.handle(replayed("04_voicemail.txt", "pbx1")[-1])  # now the owner
    assert len(await rows(sessionmaker)) == 3
