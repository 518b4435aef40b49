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


async def _acknowledged(w: World, incident_id: int, within_s: float = 20.0) -> dict[str, object]:
    """Run the worker's own loop (deferred steps are due again after a backoff) until
    the incident is acknowledged and every attempt has its outcome written (the page
    call acknowledges before the worker closes its attempt), or ``within_s`` pass."""
    import asyncio

    await w.worker.start()
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        tl = await w.service.timeline(incident_id)
        settled = all(outcome is not None for _, outcome in phone_rows(tl))
        if (tl["state"] != "open" and settled) or asyncio.get_running_loop().time() > deadline:
            return tl
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("restart_during", ["shutdown", "ringing"])
async def test_a_pbx_restart_defers_the_chain_and_the_engineer_acknowledges_after_it(
        world: World, restart_during: str) -> None:
    """Issue 12, defect 4, through the stand-in's ``restart()`` (capture 11): while
    Asterisk shuts down (every Originate refused) or is down (no link), or kills the
    ring in progress, the step waits; no step or round of the chain is used up, and
    once the link is back the on-call engineer's phone rings and their 1 acknowledges."""
    import asyncio

    w = world
    w.standin.restart_shutdown_s, w.standin.restart_downtime = 0.6, 0.3
    rings = 0

    answers = Phone(national_number(w.primary.mobile or ""), answer_after=1,
                    script=[Wait(1), Press("1")])
    w.standin.add_phone(phone(w.backup, answer_after=1, script=[Wait(1), Press("1")]))
    w.standin.add_phone(phone(w.supervisor, answer_after=1, script=[Wait(1), Press("1")]))
    await w.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0},
        {"target": "supervisor", "retries": 0}], max_rounds=1)
    if restart_during == "shutdown":
        w.standin.add_phone(answers)
        restart = asyncio.ensure_future(w.standin.restart())
        await asyncio.sleep(0.05)  # refusing: "Asterisk is shutting down"
        assert w.standin.ami.lifecycle.phase == "shutting_down"
        opened = await w.service.open_incident(leak())
    else:
        # the primary's phone rings (it would answer after a minute) when Asterisk restarts
        w.standin.add_phone(phone(w.primary, answer_after=60, script=[Wait(1), Press("1")]))
        opened = await w.service.open_incident(leak())
        await w.worker.start()
        for _ in range(200):
            if any(dict(e).get("Event") == "Newchannel" for e in w.standin.events):
                break
            await asyncio.sleep(0.02)
        rings = 1
        w.standin.add_phone(answers)  # after the restart the primary picks up at once
        restart = asyncio.ensure_future(w.standin.restart())
    tl = await _acknowledged(w, opened.incident_id)
    await restart
    rows = phone_rows(tl)
    assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == w.primary.user_id, rows
    assert {person for person, _ in rows} == {w.primary.name}  # backup, supervisor never rang
    assert rows[-1] == (w.primary.name, "accepted")
    assert rings <= len(rows) - 1 and all(outcome == "deferred" for _, outcome in rows[:-1])
    if restart_during == "ringing":  # the ring the restart hung up is deferred, not "failed"
        assert tl["attempts"][0]["error_code"] == "pbx_restarted"
