"""The callback worklist (未接来电回拨), on SQLite and PostgreSQL: what lands on it, once,
per number and local day; what clears it. Real calls through the Asterisk stand-in
(its AMI over a socket, fed to the real call tracker) where the call tests drive them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.callback_models import Callback
from callcenter.calls.callbacks import CHANGED, CallbackService
from callcenter.calls.tracker import CallTracker
from callcenter.console.ami_ports import AmiOriginate
from callcenter.console.ports import StaffRef
from callcenter.directory.models import Person, PersonPhone, StaffUser
from callcenter.oncall.models import OnCallAttempt
from callcenter.settings import AsteriskSettings, Secret
from callcenter.simulator import (
    Answer,
    AsteriskStandIn,
    Caller,
    HangUp,
    Phone,
    ScaledClock,
    Wait,
)
from tests.simulator.amiclient import MiniAmi

TZ = ZoneInfo("Asia/Shanghai")
NUMBER = "13812345678"
E164 = "+86" + NUMBER
# 2026-12-03 10:00 in Shanghai
T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def service(sm: async_sessionmaker[AsyncSession], **kw: Any) -> tuple[CallbackService,
                                                                        list[DomainEvent]]:
    published: list[DomainEvent] = []
    kw.setdefault("min_ivr_s", 5.0)
    return CallbackService(sm, tz=TZ, publish=published.append, **kw), published


def ended(linkedid: str, outcome: str, *, started: datetime = T0, lasted: float = 30.0,
          number: str | None = NUMBER, community: str | None = "hupan",
          outgoing: bool = False, **extra: Any) -> DomainEvent:
    data = {"linkedid": linkedid, "uniqueid": linkedid, "asterisk": "pbx1",
            "community": community, "caller_number": number, "caller_name": None,
            "started_at": started, "ended_at": started + timedelta(seconds=lasted),
            "outcome": outcome, "rung": [], "ivr_path": [], "queue": None,
            "wait_s": lasted, "answered_at": None, "outgoing": outgoing, **extra}
    if outcome == "answered":
        data["answered_at"] = started + timedelta(seconds=5)
    return DomainEvent("call.ended", data, at=started + timedelta(seconds=lasted))


async def entries(sm: async_sessionmaker[AsyncSession]) -> list[Callback]:
    async with sm() as s:
        return list((await s.scalars(select(Callback).order_by(Callback.id))).all())


# ----------------------------------------------------------------- what lands on it


async def test_an_abandoned_queue_call_lands_once_with_its_wait_and_the_person(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        p = Person(name="张伟")
        p.phones.append(PersonPhone(number=E164, raw=NUMBER))
        s.add(p)
        await s.commit()
        person_id = p.id
    svc, published = service(sessionmaker)
    event = ended("q-1", "abandoned", lasted=65.4, queue="frontdesk", ivr_path=["人工服务"],
                  rung=[{"target": "8001", "kind": "agent", "queue": "frontdesk"}])
    await svc.handle(event)
    await svc.handle(event)  # the same event again (a replay on takeover): no second attempt
    [entry] = await entries(sessionmaker)
    assert (entry.community, entry.number, entry.state) == ("hupan", E164, "open")
    assert entry.day.isoformat() == "2026-12-03" and entry.person_id == person_id
    assert entry.missed_count == 1
    [item] = entry.missed
    assert item["ended_in"] == "queue" and item["wait_s"] == 65.4
    assert item["ivr_path"] == ["人工服务"]
    assert [e.name for e in published] == [CHANGED]
    assert published[0].data == {"callback_id": entry.id, "community": "hupan",
                                 "state": "open", "change": "missed"}


async def test_an_ivr_hang_up_lands_but_one_within_seconds_is_noise(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, _ = service(sessionmaker, min_ivr_s=5.0)
    await svc.handle(ended("ivr-short", "ivr_only", lasted=3.0, ivr_path=[]))
    assert await entries(sessionmaker) == []
    await svc.handle(ended("ivr-1", "ivr_only", lasted=12.0, ivr_path=["报修", "水电"]))
    [entry] = await entries(sessionmaker)
    assert [(m["linkedid"], m["ended_in"], m["ivr_path"]) for m in entry.missed] == [
        ("ivr-1", "ivr", ["报修", "水电"])]
    svc0, _ = service(sessionmaker, min_ivr_s=0)  # [callbacks] min_ivr_s = 0: every one
    await svc0.handle(ended("ivr-short", "ivr_only", lasted=3.0))
    [entry] = await entries(sessionmaker)
    assert entry.missed_count == 2


async def test_a_night_call_that_reached_nobody_lands_as_the_duty_unanswered(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    night = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    async with sessionmaker() as s:
        for position, outcome in ((0, "no_answer"), (1, "no_answer")):
            s.add(OnCallAttempt(call_id="n-1", role="night_duty", position=position,
                                target="PJSIP/13611112222@trunk", started_at=night,
                                outcome=outcome))
        await s.commit()
    svc, _ = service(sessionmaker)
    await svc.handle(ended("n-1", "abandoned", started=night, lasted=50, ivr_path=["值班人员"],
                           rung=[{"target": "13611112222", "kind": "mobile"}]))
    [entry] = await entries(sessionmaker)
    [item] = entry.missed
    assert (item["ended_in"], item["role"]) == ("oncall", "night_duty")
    assert entry.day.isoformat() == "2026-12-03"


async def test_answered_voicemail_emergency_anonymous_and_outgoing_calls_do_not_land(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, published = service(sessionmaker)
    for event in (ended("a-1", "answered"), ended("v-1", "voicemail"),
                  ended("e-1", "emergency"), ended("x-1", "abandoned", number=None),
                  ended("x-2", "abandoned", number="anonymous"),
                  ended("o-1", "abandoned", outgoing=True)):  # an unanswered click-to-call
        await svc.handle(event)
    assert await entries(sessionmaker) == [] and published == []


# --------------------------------------------------------------- per number and day


async def test_a_second_miss_the_same_day_updates_the_entry_the_next_local_day_opens_another(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, _ = service(sessionmaker)
    late = datetime(2026, 12, 3, 15, 50, tzinfo=UTC)  # 23:50 on the 3rd, Shanghai
    await svc.handle(ended("d-1", "abandoned", started=T0, queue="frontdesk"))
    await svc.handle(ended("d-2", "ivr_only", started=late, lasted=20, number="+8613812345678"))
    [entry] = await entries(sessionmaker)
    assert entry.missed_count == 2 and [m["linkedid"] for m in entry.missed] == ["d-1", "d-2"]
    assert (entry.first_missed_at, entry.last_missed_at) == (T0, late)
    # 00:10 on the 4th in Shanghai is still the 3rd in UTC: a new day all the same.
    await svc.handle(ended("d-3", "abandoned", started=late + timedelta(minutes=20)))
    first, second = await entries(sessionmaker)
    assert first.id == entry.id and first.missed_count == 2
    assert second.day.isoformat() == "2026-12-04" and second.missed_count == 1
    # Another community's hotline called from the same number: its own entry.
    await svc.handle(ended("d-4", "abandoned", community="binjiang"))
    assert [(e.community, e.day.isoformat()) for e in await entries(sessionmaker)] == [
        ("hupan", "2026-12-03"), ("hupan", "2026-12-04"), ("binjiang", "2026-12-03")]


async def test_answered_later_the_same_day_clears_it_a_day_later_does_not(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, published = service(sessionmaker)
    await svc.handle(ended("c-1", "abandoned", queue="frontdesk"))
    await svc.handle(ended("c-2", "answered", started=T0 + timedelta(days=1)))  # next day
    [entry] = await entries(sessionmaker)
    assert entry.state == "open"
    await svc.handle(ended("c-3", "answered", started=T0 + timedelta(hours=2)))
    [entry] = await entries(sessionmaker)
    assert (entry.state, entry.done_how, entry.done_by) == ("done", "called_again", "")
    assert entry.note == "当天再次来电已接通" and entry.done_at is not None
    assert published[-1].data["state"] == "done"
    # Missing again that day opens a fresh entry: the done one stays as it was.
    await svc.handle(ended("c-4", "abandoned", started=T0 + timedelta(hours=3)))
    done, fresh = await entries(sessionmaker)
    assert (done.state, fresh.state, fresh.missed_count) == ("done", "open", 1)


# ----------------------------------------------------------------------- callbacks


async def _staff(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as s:
        u = StaffUser(username="xiaoli", display_name="小李", role="agent", extension="8001",
                      password_hash="x")
        s.add(u)
        await s.commit()
        return u.id


async def _dial(svc: CallbackService, sm: async_sessionmaker[AsyncSession], user_id: int
                ) -> None:
    async with sm() as s, s.begin():
        found = await svc.open_for_number(s, E164, None)
        await svc.dialling(s, found, user_id=user_id, by="小李")


def outgoing(linkedid: str, name: str, *, at: datetime, answered: bool) -> DomainEvent:
    data = {"linkedid": linkedid, "asterisk": "pbx1", "community": "hupan",
            "caller_number": NUMBER, "started_at": at, "outgoing": True,
            "answered_at": at if answered else None, "outcome": "answered" if answered else
            "abandoned"}
    return DomainEvent(name, data, at=at)


async def test_an_unanswered_callback_is_noted_and_an_answered_one_clears_it(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    user_id = await _staff(sessionmaker)
    now = T0 + timedelta(hours=1)
    svc, _ = service(sessionmaker, now=lambda: now)
    await svc.handle(ended("m-1", "abandoned", queue="frontdesk"))
    await _dial(svc, sessionmaker, user_id)
    await svc.handle(outgoing("out-1", "call.ended", at=now + timedelta(seconds=40),
                              answered=False))
    [entry] = await entries(sessionmaker)
    assert entry.state == "open"
    assert [(d["by"], d["result"], d["linkedid"]) for d in entry.dialled] == [
        ("小李", "no_answer", "out-1")]
    # An outgoing call to the number nobody pressed 回拨 for: not a callback of this entry.
    await svc.handle(outgoing("out-x", "call.answered", at=now + timedelta(seconds=50),
                              answered=True))
    [entry] = await entries(sessionmaker)
    assert entry.state == "open"
    await _dial(svc, sessionmaker, user_id)
    at = now + timedelta(minutes=2)
    await svc.handle(outgoing("out-2", "call.answered", at=at, answered=True))
    await svc.handle(outgoing("out-2", "call.ended", at=at + timedelta(minutes=3),
                              answered=True))
    [entry] = await entries(sessionmaker)
    assert (entry.state, entry.done_how, entry.done_by, entry.done_by_user_id) == (
        "done", "callback", "小李", user_id)
    assert entry.done_at == at
    assert [d["result"] for d in entry.dialled] == ["no_answer", "answered"]


async def test_a_callback_dialled_long_ago_does_not_match_a_later_call(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    user_id = await _staff(sessionmaker)
    now = T0 + timedelta(hours=1)
    svc, _ = service(sessionmaker, now=lambda: now, dial_match_s=300)
    await svc.handle(ended("m-1", "abandoned", queue="frontdesk"))
    await _dial(svc, sessionmaker, user_id)
    await svc.handle(outgoing("out-1", "call.answered", at=now + timedelta(minutes=10),
                              answered=True))
    [entry] = await entries(sessionmaker)
    assert entry.state == "open" and entry.dialled[0]["result"] == "dialling"


async def test_marking_done_needs_a_known_outcome_and_happens_once(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from callcenter.errors import Conflict, InvalidInput, NotFound

    svc, _ = service(sessionmaker)
    await svc.handle(ended("k-1", "abandoned", queue="frontdesk"))
    [entry] = await entries(sessionmaker)
    with pytest.raises(InvalidInput):
        await svc.mark_done(entry.id, outcome="whatever", note="", user_id=None, by="x",
                            scope=None)
    with pytest.raises(NotFound):  # another community's entry: as if there were none
        await svc.mark_done(entry.id, outcome="reached", note="", user_id=None, by="x",
                            scope=frozenset({"binjiang"}))
    done = await svc.mark_done(entry.id, outcome="invalid_number", note="  空号，已核实 ",
                               user_id=None, by="小李", scope=frozenset({"hupan"}))
    assert (done.state, done.done_how, done.done_outcome, done.note) == (
        "done", "marked", "invalid_number", "空号，已核实")
    with pytest.raises(Conflict):
        await svc.mark_done(entry.id, outcome="reached", note="", user_id=None, by="x",
                            scope=None)


# ------------------------------------------------------------- two servers at once


async def test_two_servers_adding_misses_of_one_number_at_once_make_one_entry(
        db_backend: str, engine: Any, db_url: str) -> None:
    """Each server its own engine (its own pool), all at once: one open entry holds
    every call, none twice, whoever inserted first."""
    if db_backend != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite has one writer)")
    from callcenter.db.engine import make_engine, make_sessionmaker

    engines = [make_engine(db_url) for _ in range(2)]
    try:
        services = [service(make_sessionmaker(e))[0] for e in engines]
        events = [ended(f"cc-{i}", "abandoned", queue="frontdesk",
                        started=T0 + timedelta(seconds=i)) for i in range(12)]
        # every call handled by both servers (a takeover replays what the other wrote)
        await asyncio.gather(*(svc.handle(e) for e in events for svc in services))
    finally:
        for e in engines:
            await e.dispose()
    sm = make_sessionmaker(engine)
    [entry] = await entries(sm)
    assert entry.missed_count == 12
    assert sorted(m["linkedid"] for m in entry.missed) == sorted(f"cc-{i}" for i in range(12))
    assert entry.first_missed_at == T0


async def test_a_server_that_does_not_own_the_link_leaves_the_call_to_the_owner(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    standby, _ = service(sessionmaker, writes=lambda link: False)
    await standby.handle(ended("s-1", "abandoned", queue="frontdesk"))
    assert await entries(sessionmaker) == []


# ------------------------------------------------------------ through the stand-in


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    pbx = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm",
                          clock=ScaledClock(speed=20))
    await pbx.start()
    yield pbx
    await pbx.stop()


async def _tracked(standin: AsteriskStandIn, caller: Caller, svc: CallbackService) -> None:
    """Place ``caller``; feed what the stand-in's AMI sends to the real tracker and the
    events it publishes to the worklist, until the call ended."""
    client = await MiniAmi.connect(standin.ami_port)
    try:
        await client.login()
        standin.place_call(caller)
        await client.wait_event("Hangup", within=10)
        await client.quiet(0.3)
    finally:
        await client.close()
    published: list[DomainEvent] = []
    tracker = CallTracker("pbx1", published.append, community="hupan")
    now = T0
    for f in client.frames:
        if f.kind == "event":
            tracker.handle(f, now)
            now += timedelta(seconds=1)  # a second an event, as the call tests replay
    assert published and published[-1].name == "call.ended"
    for event in published:
        await svc.handle(event)


async def test_a_caller_who_hangs_up_in_the_standins_queue_lands_with_the_wait(
        standin: AsteriskStandIn, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, _ = service(sessionmaker)
    await _tracked(standin, Caller(number="13800000010", name="王建国", context="queue-entry",
                                   script=[Wait(2), HangUp()]), svc)
    [entry] = await entries(sessionmaker)
    assert entry.number == "+8613800000010" and entry.caller_name == "王建国"
    [item] = entry.missed
    assert item["ended_in"] == "queue" and item["wait_s"] and item["wait_s"] > 0


async def test_a_caller_who_hangs_up_in_the_standins_ivr_lands_as_an_ivr_hang_up(
        standin: AsteriskStandIn, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc, _ = service(sessionmaker, min_ivr_s=0)
    await _tracked(standin, Caller(number="13800000011", script=[Wait(2), HangUp()]), svc)
    [entry] = await entries(sessionmaker)
    assert entry.number == "+8613800000011"
    assert [m["ended_in"] for m in entry.missed] == ["ivr"]


@pytest.fixture
async def links(standin: AsteriskStandIn) -> AsyncIterator[tuple[AmiLinks, EventBus,
                                                                 AsteriskSettings]]:
    settings = AsteriskSettings(name="pbx1", host="127.0.0.1", port=standin.ami_port,
                                username="cc", secret=Secret("ccsecret"), community="hupan",
                                action_timeout=3.0)
    bus = EventBus()

    def factory(cfg: LinkConfig) -> AmiLink:
        return AmiLink(cfg, rng=random.Random(1), reconnect_base_s=0.02)

    ls = AmiLinks([settings], publish=bus.publish, mailboxes=[], link_factory=factory)
    ls.start()
    await ls.get("pbx1").wait_connected(3)
    yield ls, bus, settings
    await ls.stop()
    await bus.drain()


async def _until_state(sm: async_sessionmaker[AsyncSession], check: Any) -> Callback:
    for _ in range(300):
        [entry] = await entries(sm)
        if check(entry):
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 15 s: {entry.state} {entry.dialled}")


@pytest.mark.parametrize("owner", ["answers", "busy"])
async def test_a_click_to_call_through_the_standin_clears_it_only_when_answered(
        owner: str, standin: AsteriskStandIn, links: tuple[AmiLinks, EventBus, AsteriskSettings],
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ls, bus, settings = links
    user_id = await _staff(sessionmaker)
    svc, _ = service(sessionmaker)
    svc.subscribe(bus)
    await svc.handle(ended("m-1", "abandoned", queue="frontdesk",
                           started=datetime.now(UTC) - timedelta(minutes=5)))
    # The agent hangs up once the owner's line said busy (Dial returned to the desk phone).
    standin.add_phone(Phone("8001", answer_after=0.5, script=[Wait(6), HangUp()]))
    standin.add_phone(Phone(NUMBER, answer_after=0.5, script=[Wait(2), HangUp()])
                      if owner == "answers" else Phone(NUMBER, behaviour=Answer.BUSY))
    await _dial(svc, sessionmaker, user_id)
    agent = StaffRef(user_id, "xiaoli", "小李", "agent", "8001", None)
    await AmiOriginate(ls, [settings], dial_timeout_s=5).click_to_call(agent, E164,
                                                                      community="hupan")
    entry = await _until_state(sessionmaker, lambda e: e.dialled[-1]["result"] != "dialling")
    if owner == "answers":
        assert (entry.state, entry.done_how, entry.done_by_user_id) == ("done", "callback",
                                                                        user_id)
    else:
        assert entry.state == "open" and entry.dialled[-1]["result"] == "no_answer"


async def test_a_standby_holds_what_it_left_to_the_owner_and_handles_it_on_takeover(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The owner died just as two calls ended: one it had written, one not. The standby
    takes the link over and adds the missing one; the written one is not added twice."""
    owns = {"pbx1": False}
    mono = [0.0]
    standby, _ = service(sessionmaker, writes=lambda link: owns[link],
                         monotonic=lambda: mono[0], hold_s=30)
    owner, _ = service(sessionmaker)
    first = ended("t-1", "abandoned", queue="frontdesk")
    second = ended("t-2", "abandoned", queue="frontdesk", started=T0 + timedelta(minutes=1))
    old = ended("t-0", "abandoned", queue="frontdesk", started=T0 - timedelta(minutes=5))
    await standby.handle(old)  # held, but too long ago by the takeover
    mono[0] = 40.0
    for event in (first, second):
        await standby.handle(event)
    await owner.handle(first)  # the owner wrote this one before it died
    assert await entries(sessionmaker) and (await entries(sessionmaker))[0].missed_count == 1
    owns["pbx1"] = True
    assert await standby.take_over("pbx1") == 2
    [entry] = await entries(sessionmaker)
    assert sorted(m["linkedid"] for m in entry.missed) == ["t-1", "t-2"]
    assert await standby.take_over("pbx1") == 0  # nothing held twice
