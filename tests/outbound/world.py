"""A ticket server (``tests.ticketing.workorder_world``) with the outbound dialer
calling through the Asterisk stand-in over real sockets: the owner's phone is a
scripted stand-in phone, the survey runs over AsyncAGI (or FastAGI), and the
answer lands on the ticket through the work order's own 回访 action."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher
from callcenter.ami.client import AmiLink
from callcenter.appkeys import BUS
from callcenter.bus import EventBus
from callcenter.outbound.calling_hours import CallingHours
from callcenter.outbound.dialer import Dialer, DialerConfig, Verdicts
from callcenter.outbound.entry import OutboundCalls, is_outbound_call
from callcenter.outbound.fee_call import FeeCall
from callcenter.outbound.fees import FEE
from callcenter.outbound.fees import still_wanted as fee_still_wanted
from callcenter.outbound.models import OutboundAttempt, OutboundJob
from callcenter.outbound.survey import (
    SURVEY,
    SurveyScheduler,
    category_port,
    follow_up_port,
    still_wanted,
)
from callcenter.outbound.survey_call import SurveyCall
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.originate import OriginateOutcome
from callcenter.simulator import AsteriskStandIn, ScaledClock
from ivr.holidays import HolidayCalendar
from tests.ami.fakeami import FakeSettings
from tests.ticketing.workorder_world import World
from ticketing.http import TICKETS


def peak_calls(events: Iterable[Any]) -> int:
    """The most owner phones off the hook at once, from the stand-in's own channel
    events (the owner's side of each Local channel to ``@phones``)."""
    live: set[str] = set()
    top = 0
    for e in events:
        f = dict(e)
        ch = str(f.get("Channel", ""))
        if "@phones" not in ch or not ch.endswith(";2"):
            continue
        if f.get("Event") == "Newchannel":
            live.add(ch)
        elif f.get("Event") == "Hangup":
            live.discard(ch)
        top = max(top, len(live))
    return top


@dataclass
class Outbound:
    w: World
    standin: AsteriskStandIn
    link: AmiLink
    dialer: Dialer
    scheduler: SurveyScheduler
    survey: SurveyCall

    async def resolved_ticket(self, number: str = "13912345678", **kw: Any) -> int:
        """A repair that the assignee has just finished (完工)."""
        t = await self.w.new_ticket(caller_number=number, **kw)
        await self.w.force(t["id"], "in_progress")
        status, body = await self.w.act(t["id"], "assignee", "complete", note="更换三通，已试水")
        assert status == 200, body
        await self.w.client.app[BUS].drain()  # the survey is queued
        return int(t["id"])

    async def jobs(self) -> list[OutboundJob]:
        async with self.w.sm() as s:
            return list((await s.scalars(select(OutboundJob).order_by(OutboundJob.id))).all())

    async def attempts(self, job_id: int) -> list[OutboundAttempt]:
        async with self.w.sm() as s:
            return list((await s.scalars(select(OutboundAttempt).where(
                OutboundAttempt.job_id == job_id).order_by(OutboundAttempt.id))).all())

    async def run(self, hours: float = 0.0) -> int:
        """Move the server's clock on, then one dialer turn and its calls."""
        await self.w.client.app[BUS].drain()
        if hours:
            await self.w.clock.advance(hours * 3600)
        started = await self.dialer.tick()
        await self.dialer.drain()
        return started

    def dials(self) -> list[str]:
        """The owner channels the stand-in created (one per call placed)."""
        return [str(dict(e).get("Channel")) for e in self.standin.events
                if dict(e).get("Event") == "Newchannel"
                and str(dict(e).get("Channel", "")).endswith(";2")
                and "@phones" in str(dict(e).get("Channel", ""))]


def make_dialer(w: World, link: AmiLink, verdicts: Verdicts, **config: Any) -> Dialer:
    async def originate(community: str, channel: str, context: str, exten: str,
                        variables: Mapping[str, str], ring_s: float,
                        caller_id: str) -> OriginateOutcome:
        return await AmiOriginator(link, caller_id=caller_id).originate(
            channel, context, exten, variables, ring_s, community=community)

    cfg = DialerConfig(**{"trunk": "Local/{number}@phones", "ring_s": 30, "pace_s": 0.0,
                          "caller_ids": {"hupan": "4008001234"}, **config})
    return Dialer(w.sm, originate, w.clock, EventBus(), verdicts,
                  hours=CallingHours(holidays=HolidayCalendar()), config=cfg,
                  link_for=lambda community: "standin",
                  still_wanted={SURVEY: still_wanted, FEE: fee_still_wanted})


@pytest.fixture
async def outbound(world: World) -> AsyncIterator[Outbound]:
    w = world
    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=w.data_dir / "vm",
                              clock=ScaledClock(20), prompt_seconds=0.5)
    await standin.start()
    link = AmiLink(replace(FakeSettings(port=standin.ami_port), secret="ccsecret"),
                   rng=random.Random(5), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(5)
    verdicts = Verdicts()
    workorders = w.client.app[TICKETS].workorders
    survey = SurveyCall(w.sm, verdicts, follow_up_port(workorders), w.clock.now,
                        category_port(w.sm))

    fee = FeeCall(w.sm, verdicts, w.clock.now)
    calls = OutboundCalls({SURVEY: survey.handle, FEE: fee.handle})

    async def on_agi(chan: AsyncAgiChannel) -> None:
        assert is_outbound_call(chan)
        await calls.handle(chan)

    dispatcher = AsyncAgiDispatcher(link, on_agi, command_timeout_s=10)
    dispatcher.attach()
    dialer = make_dialer(w, link, verdicts)
    scheduler = SurveyScheduler(w.sm, w.clock.now, dialer.hours, delay=timedelta(hours=2))
    off = w.client.app[BUS].subscribe("ticket.changed", scheduler.on_ticket_changed)
    try:
        yield Outbound(w, standin, link, dialer, scheduler, survey)
    finally:
        off()
        await dialer.stop()
        await dispatcher.close()
        await link.stop()
        await standin.stop()
