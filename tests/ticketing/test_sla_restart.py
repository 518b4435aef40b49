"""SLA timers survive a restart: armed by one server, due while it is down, fired
exactly once by the next server (its own engine on the same database), and not again
by the one after (both databases, injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.clock import ManualClock
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from tests.ticketing.directory_data import seed_directory
from ticketing.http import TICKETS
from ticketing.models import TicketEvent
from ticketing.services import NewTicket
from ticketing.setup import SLA_WORKER
from ticketing.sla_models import SlaTimer
from ticketing.sla_worker import SlaWorker

START = datetime.fromisoformat("2026-11-23T02:10:00+00:00")


@asynccontextmanager
async def server(db_url: str, data_dir: Path, clock: ManualClock
                 ) -> AsyncIterator[web.Application]:
    """A whole ticketing server (its own engine, SLA worker running) until the block ends."""
    settings = settings_from_mapping({"data_dir": str(data_dir), "database": {"url": db_url}})
    app = create_core_app(settings, clock=clock)
    setup_tickets(app, ingest=False)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        yield app
    finally:
        await srv.close()


async def swept(worker: SlaWorker, clock: ManualClock) -> None:
    """Until the worker has finished a sweep and gone to sleep on the clock."""
    for _ in range(500):
        if worker.running and clock.sleepers > 0:
            await worker.drain()
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the SLA worker never finished a sweep")


async def breaches(sm: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    async with sm() as s:
        rows = (await s.execute(select(TicketEvent.ticket_id, TicketEvent.data).where(
            TicketEvent.action == "sla_breach").order_by(TicketEvent.id))).all()
        return [(r[0], r[1]["kind"]) for r in rows]


async def test_a_breach_due_while_down_fires_once_after_restart(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    seeded = await seed_directory(sessionmaker)
    data_dir = tmp_path / "data"
    # 1. the first server arms the clocks of two tickets, then stops before any is due
    clock = ManualClock(START)
    async with server(db_url, data_dir, clock) as app:
        await swept(app[SLA_WORKER], clock)
        ids = [(await app[TICKETS].service.create(NewTicket(
            source="agent", category="plumbing", summary=f"漏水 {i}",
            room_id=seeded.room_3_2_1201))).id for i in range(2)]
        async with sessionmaker() as s:
            pending = await s.scalar(select(func.count(SlaTimer.id)).where(
                SlaTimer.state == "pending"))
        assert pending == 6
        assert app[SLA_WORKER].fired == 0
    # 2. nobody runs for 16 minutes; the next server fires both response clocks, once
    clock = ManualClock(START + timedelta(minutes=16))
    async with server(db_url, data_dir, clock) as app:
        await swept(app[SLA_WORKER], clock)
        assert app[SLA_WORKER].fired == 2
        assert await app[SLA_WORKER].run_due() == 0
    assert sorted(await breaches(sessionmaker)) == [(ids[0], "response"), (ids[1], "response")]
    async with sessionmaker() as s:
        notified = (await s.scalars(select(SlaTimer.notified_at).where(
            SlaTimer.kind == "response"))).all()
    assert notified == [START + timedelta(minutes=16)] * 2  # the notice went (to nobody)
    # 3. a second restart a minute later fires nothing again
    clock = ManualClock(START + timedelta(minutes=17))
    async with server(db_url, data_dir, clock) as app:
        await swept(app[SLA_WORKER], clock)
        assert app[SLA_WORKER].fired == 0
    assert len(await breaches(sessionmaker)) == 2
    # 4. and one after the red light's due time fires exactly the red lights
    clock = ManualClock(START + timedelta(hours=2, minutes=1))
    async with server(db_url, data_dir, clock) as app:
        await swept(app[SLA_WORKER], clock)
        assert app[SLA_WORKER].fired == 2
    assert sorted(await breaches(sessionmaker)) == [
        (ids[0], "red_light"), (ids[0], "response"), (ids[1], "red_light"),
        (ids[1], "response")]
