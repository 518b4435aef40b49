"""Paging end to end against the Asterisk stand-in, over real sockets.

The worker originates through the AMI client into ``[callcenter-page]``; the
stand-in rings scripted phones (no answer, unreachable, answer and press a
key, answer and hang up) and runs AsyncAGI for the answered ones; the
page-call script plays the incident and reads the key. Everything runs on the
stand-in's scaled clock (50× real time).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher
from callcenter.ami.client import AmiLink
from callcenter.bus import EventBus
from callcenter.oncall.router import national_number
from callcenter.oncall.services import OnCallPerson, who_is_on_call
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.originate import PageCallRegistry
from callcenter.paging.page_call import PageCallConfig, PageCallHandler, is_page_call
from callcenter.paging.services import PagingService
from callcenter.paging.worker import EscalationWorker, WorkerConfig
from callcenter.simulator import Answer, AsteriskStandIn, HangUp, Phone, Press, ScaledClock, Wait
from tests.ami.fakeami import FakeSettings
from tests.paging.conftest import Staff
from tests.paging.test_escalation import leak, phone_rows

SM = async_sessionmaker[AsyncSession]


@dataclass
class World:
    standin: AsteriskStandIn
    service: PagingService
    worker: EscalationWorker
    primary: OnCallPerson
    backup: OnCallPerson
    supervisor: OnCallPerson


@pytest.fixture
async def world(sessionmaker: SM, staff: Staff, tmp_path: Path) -> AsyncIterator[World]:
    clock = ScaledClock(50)
    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm", clock=clock,
                              hotline_context="callcenter-page", prompt_seconds=0.5)
    await standin.start()
    link = AmiLink(replace(FakeSettings(port=standin.ami_port), secret="ccsecret"),
                   rng=random.Random(5), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(5)
    bus, registry = EventBus(), PageCallRegistry()
    service = PagingService(sessionmaker, clock, bus)
    handler = PageCallHandler(sessionmaker, service, registry,
                              PageCallConfig(digit_timeout_ms=4000))

    async def on_agi(chan: AsyncAgiChannel) -> None:
        assert is_page_call(chan)
        await handler.handle(chan)

    dispatcher = AsyncAgiDispatcher(link, on_agi, command_timeout_s=10)
    dispatcher.attach()
    # Local channels through the stand-in's [phones] context: the stand-in sets
    # Originate's variables on those (a trunk channel there does not yet).
    worker = EscalationWorker(sessionmaker, AmiOriginator(link), clock, bus, registry,
                              config=WorkerConfig(trunk="Local/{number}@phones"))
    async with sessionmaker() as session:
        people = (await who_is_on_call(session, "lakeside", "engineer", clock.now())).people
    try:
        yield World(standin, service, worker, *people)
    finally:
        await worker.stop()
        await dispatcher.close()
        await link.stop()
        await standin.stop()


def phone(person: OnCallPerson, **kw: object) -> Phone:
    assert person.mobile
    return Phone(national_number(person.mobile), **kw)  # type: ignore[arg-type]


async def test_unreachable_primary_then_backup_accepts(world: World) -> None:
    w = world
    w.standin.add_phone(phone(w.primary, behaviour=Answer.UNREACHABLE))
    w.standin.add_phone(phone(w.backup, answer_after=2, script=[Wait(1.5), Press("1")]))
    await w.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0}])
    opened = await w.service.open_incident(leak())
    await w.worker.run_due()
    tl = await w.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [(w.primary.name, "failed"), (w.backup.name, "accepted")]
    assert tl["attempts"][0]["error_code"] == "8"
    assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == w.backup.user_id


async def test_hang_up_during_prompt_and_pressing_2_move_on(world: World) -> None:
    w = world
    w.standin.add_phone(phone(w.primary, answer_after=1, script=[Wait(0.5), HangUp()]))
    w.standin.add_phone(phone(w.backup, answer_after=1, script=[Wait(1), Press("2")]))
    w.standin.add_phone(phone(w.supervisor, behaviour=Answer.NO_ANSWER))
    await w.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0},
        {"target": "supervisor", "retries": 0, "ring_timeout_s": 10}], max_rounds=1)
    opened = await w.service.open_incident(leak())
    await w.worker.run_due()
    tl = await w.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [(w.primary.name, "hung_up"), (w.backup.name, "passed"),
                              (w.supervisor.name, "no_answer")]
    assert tl["state"] == "open" and tl["stop_reason"] == "exhausted"
