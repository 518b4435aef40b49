"""What a caller meets at different times and when things go wrong: the whole
server (create_app, real database, real sockets) against the Asterisk stand-in,
over both transports. The stand-in runs on a scaled clock (prompts, digit
timeouts and Dial's ring timeout pass ten times faster); the server's "now" is a
chosen moment, so nothing here depends on when the suite runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.appkeys import CALL_LOG, SESSIONMAKER
from callcenter.calls.models import CallLog
from callcenter.demo import demo_settings
from callcenter.directory.models import PersonPhone
from callcenter.ivr_services import HotlineServices
from callcenter.oncall.models import OnCallAttempt
from callcenter.oncall.services import OnCallPerson, who_is_on_call
from callcenter.settings import DatabaseSettings
from callcenter.simulator import (
    Answer,
    AsteriskStandIn,
    Caller,
    HangUp,
    Phone,
    Press,
    ScaledClock,
    Wait,
)
from ivr.admin.menus_http import IVR_HOLIDAYS
from tests.health_access import HEALTH_HEADERS, with_health_token
from tests.integration.demo_db import demo_db, heartbeat_seen, seed_demo_db
from tests.integration.test_hotline_e2e import FixedTimeClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
SPEED = 10.0
OWNER = "13812345678"  # a demo owner with one room
STRANGER = "13900000009"  # in nobody's record

MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
NATIONAL_DAY = datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)  # 国庆节
TIAOXIU_SATURDAY = datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)  # 调休: a working Saturday
PLAIN_SATURDAY = datetime(2026, 10, 17, 10, 0, tzinfo=SHANGHAI)
MONDAY_NIGHT = datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)


@dataclass
class Site:
    client: TestClient  # type: ignore[type-arg]
    standin: AsteriskStandIn
    when: datetime

    def events(self, name: str) -> list[dict[str, str]]:
        return [dict(f) for f in self.standin.events if dict(f).get("Event") == name]

    def agi_commands(self) -> list[str]:
        return [e.get("Command", "") for e in self.events("AGIExecStart")]


async def _site(db_url: str, tmp_path: Path, when: datetime, transport: str,
                phones: list[Phone], queue_wait_s: int | None = None) -> Site:
    settings = with_health_token(replace(demo_settings(tmp_path, 0),
                                         database=DatabaseSettings(url=db_url)))
    if queue_wait_s is not None:
        settings = replace(settings, oncall=replace(settings.oncall, queue_wait_s=queue_wait_s))
    await seed_demo_db(db_url, when.date())  # the rotation starts on the day of the call
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport,
                                            clock=ScaledClock(SPEED), phones=phones)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(when),
                                              transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    for _ in range(200):
        if (await (await client.get("/healthz", headers=HEALTH_HEADERS)).json())["asterisk"].get("standin") == "connected":
            return Site(client, standin, when)
        await asyncio.sleep(0.05)
    raise AssertionError("the server never connected to the stand-in")


@pytest.fixture
async def make_site(db_url: str, tmp_path: Path
                    ) -> AsyncIterator[Callable[..., Any]]:
    sites: list[Site] = []

    async def make(when: datetime, transport: str, phones: list[Phone] | None = None,
                   queue_wait_s: int | None = None) -> Site:
        site = await _site(db_url, tmp_path, when, transport, phones or [], queue_wait_s)
        sites.append(site)
        return site

    yield make
    for site in sites:
        await site.client.close()
        await site.standin.stop()


async def _ended_call(site: Site, number: str) -> CallLog:
    for _ in range(300):
        rows = await site.client.app[CALL_LOG].search(number=number)
        ended = [r for r in rows if r.ended_at is not None]
        if ended:
            return ended[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the call never reached the call log")


def _call(number: str, *steps: Any) -> Caller:
    """A caller who first hears the greeting and the menu prompt."""
    return Caller(number=number, name="来电", did="4008001234", script=[Wait(3), *steps])


TRANSPORTS = pytest.mark.parametrize("transport", ["fastagi", "asyncagi"])


@TRANSPORTS
@pytest.mark.parametrize(("when", "queued"), [
    (MONDAY_10AM, True), (TIAOXIU_SATURDAY, True), (NATIONAL_DAY, False), (PLAIN_SATURDAY, False),
], ids=["monday", "tiaoxiu-saturday", "national-day", "plain-saturday"])
async def test_a_repair_call_meets_the_menu_of_its_day(
        make_site: Callable[..., Any], transport: str, when: datetime, queued: bool) -> None:
    """报修 → 水电 reaches the front-desk queue on working days (a 调休 Saturday is
    one); on National Day the holiday menu's 1 leaves a message; on an ordinary
    Saturday the weekend menu rings the engineer on call."""
    site: Site = await make_site(when, transport)
    site.standin.place_call(_call(OWNER, Press("1"), Wait(4), Press("1"), Wait(12), HangUp()))
    row = await _ended_call(site, OWNER)
    joined = bool(site.events("QueueCallerJoin"))
    assert joined is queued
    if when is NATIONAL_DAY:
        assert row.ivr_path == ["报修留言"]
        [txt] = list(site.standin.pbx.spool.root.rglob("msg*.txt"))
        assert OWNER in txt.read_text(encoding="utf-8")
    elif when is PLAIN_SATURDAY:
        assert row.ivr_path == ["报修", "水电"]
        async with site.client.app[SESSIONMAKER]() as s:
            attempts = (await s.scalars(select(OnCallAttempt))).all()
        assert attempts and {a.role for a in attempts} == {"engineer"}
    else:
        assert row.ivr_path == ["报修", "水电"]


@pytest.mark.parametrize(("when", "queued"), [
    (datetime(2027, 10, 1, 10, 0, tzinfo=SHANGHAI), False),  # 国庆节, computed
    (datetime(2027, 10, 8, 10, 0, tzinfo=SHANGHAI), True),   # the Friday after
], ids=["national-day-2027", "friday-after"])
async def test_2027_runs_on_provisional_holidays_with_no_holiday_file(
        make_site: Callable[..., Any], when: datetime, queued: bool) -> None:
    """chinesecalendar does not know 2027 and the site has imported nothing: on
    1 October the holiday menu's 1 still leaves a message; a week later the
    office menu queues the call."""
    site: Site = await make_site(when, "fastagi")
    assert site.client.app[IVR_HOLIDAYS].year_source(2027) == "provisional"
    site.standin.place_call(_call(OWNER, Press("1"), Wait(4), Press("1"), Wait(12), HangUp()))
    row = await _ended_call(site, OWNER)
    assert bool(site.events("QueueCallerJoin")) is queued
    assert row.ivr_path == (["报修", "水电"] if queued else ["报修留言"])


@TRANSPORTS
async def test_an_unknown_caller_keys_in_building_unit_and_room(
        make_site: Callable[..., Any], transport: str) -> None:
    """Room numbers repeat in each unit, so after 楼栋 and 房号 the caller is asked
    the 单元, and hears that room's balance."""
    site: Site = await make_site(MONDAY_10AM, transport)
    async with site.client.app[SESSIONMAKER]() as s:
        assert not (await s.scalars(
            select(PersonPhone).where(PersonPhone.number == f"+86{STRANGER}"))).first()
    site.standin.place_call(_call(STRANGER, Press("3"), Wait(2), Press("1#"), Wait(2),
                                  Press("101#"), Wait(2), Press("2#"), Wait(15), HangUp()))
    row = await _ended_call(site, STRANGER)
    assert row.person_id is None
    assert row.ivr_path[0] == "物业费" and row.ivr_path[1].endswith("1栋2单元101室")
    commands = site.agi_commands()
    assert any(c.startswith("GET DATA enter-unit") for c in commands)
    assert any(c.startswith("STREAM FILE fee-") for c in commands)  # the balance is said


@TRANSPORTS
@pytest.mark.parametrize(("steps", "label"), [
    # the caller first hears the greeting: digits sent before AGI starts are lost, as on Asterisk
    ([Wait(2), Press("7"), Wait(3), Press("8"), Wait(3), Press("7"), Wait(8), HangUp()],
     "输入错误转接"),
    ([Wait(30), HangUp()], "超时转接"),
], ids=["invalid-digits", "silence"])
async def test_when_retries_run_out_the_caller_reaches_the_front_desk(
        make_site: Callable[..., Any], transport: str, steps: list[Any], label: str) -> None:
    site: Site = await make_site(MONDAY_10AM, transport)
    site.standin.place_call(_call(OWNER, *steps))
    row = await _ended_call(site, OWNER)
    assert row.ivr_path == [label]
    commands = site.agi_commands()
    retry_prompt = "invalid" if label == "输入错误转接" else "no-input"
    assert sum(c.startswith(f"STREAM FILE {retry_prompt} ") for c in commands) == 2
    assert site.events("QueueCallerJoin")


@TRANSPORTS
async def test_a_broken_menu_action_apologises_and_hands_the_caller_to_a_person(
        make_site: Callable[..., Any], transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: HotlineServices, room_id: int) -> None:
        raise RuntimeError("fee database down")

    monkeypatch.setattr(HotlineServices, "fee_balance", broken)
    site: Site = await make_site(MONDAY_10AM, transport)
    site.standin.place_call(_call(OWNER, Press("3"), Wait(10), HangUp()))
    row = await _ended_call(site, OWNER)
    assert row.ivr_path[0] == "物业费" and row.ivr_path[-1] == "系统故障转接"
    assert any(c.startswith("STREAM FILE sorry-system") for c in site.agi_commands())
    assert site.events("QueueCallerJoin")


def _phones_of(person: OnCallPerson) -> list[str]:
    return [n for n in (person.extension, person.mobile and person.mobile.removeprefix("+86")) if n]


async def _night_site(db_url: str, tmp_path: Path, transport: str,
                      phones_for: Callable[[list[OnCallPerson]], list[Phone]]
                      ) -> tuple[Site, list[OnCallPerson]]:
    """23:00: the server and a stand-in whose phones for the night-duty chain are
    made by ``phones_for(chain)``."""
    settings = with_health_token(replace(demo_settings(tmp_path, 0),
                                         database=DatabaseSettings(url=db_url)))
    async with demo_db(db_url, MONDAY_NIGHT.date()) as sm, sm() as s:
        chain = list((await who_is_on_call(s, None, "night_duty", MONDAY_NIGHT)).people)
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport,
                                            clock=ScaledClock(SPEED), phones=phones_for(chain))
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(MONDAY_NIGHT),
                                              transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    site = Site(client, standin, MONDAY_NIGHT)
    for _ in range(200):
        if (await (await client.get("/healthz", headers=HEALTH_HEADERS)).json())["asterisk"].get("standin") \
                == "connected":
            break
        await asyncio.sleep(0.05)
    return site, chain


async def _attempts(site: Site) -> list[OnCallAttempt]:
    async with site.client.app[SESSIONMAKER]() as s:
        return list((await s.scalars(select(OnCallAttempt).order_by(OnCallAttempt.id))).all())


@TRANSPORTS
async def test_a_night_duty_person_who_does_not_answer_fails_over_to_the_backup(
        db_url: str, tmp_path: Path, transport: str) -> None:
    """At 23:00 按0 rings the night duty on call; nobody picks up within the ring
    time, so the backup's phone rings and answers. Both attempts are recorded."""
    def phones(chain: list[OnCallPerson]) -> list[Phone]:
        return ([Phone(n, behaviour=Answer.NO_ANSWER) for n in _phones_of(chain[0])]
                + [Phone(n, answer_after=2, script=[Wait(5), HangUp()])
                   for n in _phones_of(chain[1])])

    site, chain = await _night_site(db_url, tmp_path, transport, phones)
    try:
        site.standin.place_call(_call(OWNER, Press("0"), Wait(120), HangUp()))
        row = await _ended_call(site, OWNER)
        assert row.ivr_path == ["值班人员"]
        ends = site.events("DialEnd")
        assert [e["DialStatus"] for e in ends][-1] == "ANSWER"
        assert "NOANSWER" in [e["DialStatus"] for e in ends]
        attempts = await _attempts(site)
        assert [a.user_id for a in attempts][0] == chain[0].user_id
        assert attempts[-1].user_id == chain[1].user_id and attempts[-1].outcome == "answered"
        assert all(a.outcome == "no_answer" for a in attempts[:-1])
    finally:
        await site.client.close()
        await site.standin.stop()


@TRANSPORTS
async def test_when_nobody_on_call_answers_the_caller_leaves_a_message_the_ticket_can_place(
        db_url: str, tmp_path: Path, transport: str) -> None:
    """Primary, backup and supervisor all ring out: the router takes a message, and the
    message carries the call (VM_CATEGORY: the caller's room and the menu path) as one
    left from the menu does, so the morning's ticket knows the flat."""
    def phones(chain: list[OnCallPerson]) -> list[Phone]:
        return [Phone(n, behaviour=Answer.NO_ANSWER) for p in chain for n in _phones_of(p)]

    site, chain = await _night_site(db_url, tmp_path, transport, phones)
    try:
        site.standin.place_call(_call(OWNER, Press("0"), Wait(90), HangUp()))
        await _ended_call(site, OWNER)
        attempts = await _attempts(site)
        assert {a.user_id for a in attempts} == {p.user_id for p in chain}
        assert all(a.outcome == "no_answer" for a in attempts)
        [txt] = list(site.standin.pbx.spool.root.rglob("msg*.txt"))
        meta = txt.read_text(encoding="utf-8")
        assert OWNER in meta and "category=cc1;call=" in meta
    finally:
        await site.client.close()
        await site.standin.stop()


@TRANSPORTS
async def test_a_caller_nobody_answers_in_the_queue_leaves_a_message(
        make_site: Callable[..., Any], transport: str) -> None:
    """No agent is ready: Queue() gives up after ``oncall.queue_wait_s`` (QUEUESTATUS=TIMEOUT) and
    the caller is asked for a message, which app_voicemail files for the ingest."""
    site: Site = await make_site(MONDAY_10AM, transport, queue_wait_s=5)
    site.standin.place_call(_call(OWNER, Press("2"), Wait(25), HangUp()))
    row = await _ended_call(site, OWNER)
    assert row.ivr_path == ["投诉", "无人接听留言"]
    assert site.events("QueueCallerJoin")
    assert any(c.startswith("STREAM FILE queue-no-answer") for c in site.agi_commands())
    [txt] = list(site.standin.pbx.spool.root.rglob("msg*.txt"))
    assert OWNER in txt.read_text(encoding="utf-8")
