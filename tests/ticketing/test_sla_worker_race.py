"""Two SLA workers on one database fire every due timer exactly once; a timer due
while no worker ran fires when one starts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from tests.ticketing.directory_data import seed_directory
from ticketing.models import TicketEvent
from ticketing.services import NewTicket, TicketService
from ticketing.sla_timers import SlaClock
from ticketing.sla_worker import SlaWorker, SlaWorkerConfig


async def test_two_workers_fire_each_timer_once_after_downtime(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    seeded = await seed_directory(sessionmaker)
    clock = ManualClock()
    bus = EventBus()
    service = TicketService(sessionmaker, bus, clock, sla=SlaClock())
    for i in range(15):
        await service.create(NewTicket(source="agent", category="plumbing",
                                       summary=f"漏水 {i}", room_id=seeded.room_3_2_1201))
    # nobody ran while the clock went past every deadline (24 h escalation included)
    clock.set(clock.now() + timedelta(hours=25))
    config = SlaWorkerConfig(batch=4)
    a = SlaWorker(sessionmaker, clock, bus, config=config, worker_id="a")
    b = SlaWorker(sessionmaker, clock, bus, config=config, worker_id="b")
    fired = await asyncio.gather(a.run_due(), b.run_due())
    assert sum(fired) == 45
    async with sessionmaker() as s:
        n = await s.scalar(select(func.count(TicketEvent.id)).where(
            TicketEvent.action == "sla_breach"))
    assert n == 45
    assert await a.run_due() + await b.run_due() == 0
