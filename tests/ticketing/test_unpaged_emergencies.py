"""An emergency voicemail ticket is never left without a page: when its
``incident.requested`` is lost (a crash after the ticket commit, paging not yet
listening, ``open_incident`` failing), the ticket is found again and its
incident opened exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from callcenter.paging.models import Incident, IncidentReport
from callcenter.paging.services import IncidentRequest, OpenResult, PagingService
from callcenter.paging.setup import setup_paging
from callcenter.settings import settings_from_mapping
from callcenter.tickets import UnpagedEmergencies, setup_tickets
from recordings.ingest import VoicemailIngest
from tests.health_access import HEALTH_HEADERS, HEALTH_HTTP
from tests.paging.conftest import ScriptedOriginator
from tests.recordings.fakes import FakeTranscriber, Spool, simple_triage
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.models import Ticket
from ticketing.services import NewTicket, TicketService

BURST = "三 栋 二 单元 一 二 零 一 厨房 水管 爆了 水 到处 都是"
LEAK = "三 栋 二 单元 一 二 零 一 厨房 水管 在 滴水"
T0 = datetime(2026, 11, 22, 2, 40, tzinfo=UTC)


@dataclass
class World:
    sm: async_sessionmaker[AsyncSession]
    clock: ManualClock
    spool: Spool
    data_dir: Path
    seeded: Seeded

    async def voicemail_tickets(self, *texts: str) -> list[int]:
        """Each text as a voicemail through the real ingest, with nobody listening
        for ``incident.requested``: the requests are lost."""
        transcriber = FakeTranscriber()
        for i, text in enumerate(texts):
            transcriber.say(self.spool.add(freq=300 + 50 * i), text)
        bus = EventBus()
        ingest = VoicemailIngest(self.sm, self.spool.root, self.data_dir, transcriber,
                                 simple_triage, TicketService(self.sm, bus, self.clock),
                                 lookup_by_number, self.clock,
                                 default_community_id=self.seeded.community_id)
        report = await ingest.scan_and_process()
        await bus.drain()
        return [j.ticket_id for j in report.jobs if j.ticket_id is not None]

    def restarted(self, paging_cls: type[PagingService] = PagingService
                  ) -> tuple[UnpagedEmergencies, EventBus, PagingService]:
        """A fresh process: its own bus, with paging listening on it."""
        bus = EventBus()
        paging = paging_cls(self.sm, self.clock, bus)
        bus.subscribe("incident.requested", paging.on_incident_requested)
        return UnpagedEmergencies(self.sm, TicketService(self.sm, bus, self.clock),
                                  self.clock), bus, paging

    async def counts(self) -> tuple[int, int]:
        async with self.sm() as s:
            return (int(await s.scalar(select(func.count(Incident.id))) or 0),
                    int(await s.scalar(select(func.count(IncidentReport.id))) or 0))


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> World:
    return World(sessionmaker, ManualClock(T0), Spool(tmp_path / "spool"), tmp_path / "data",
                 await seed_directory(sessionmaker))


async def test_a_lost_request_is_found_after_a_restart_and_opens_one_incident(
        world: World) -> None:
    [tid] = await world.voicemail_tickets(BURST)
    assert await world.counts() == (0, 0)  # the page was lost

    unpaged, bus, _ = world.restarted()
    assert await unpaged.request_missing() == []  # too fresh: its live request may be in flight
    await world.clock.advance(61)
    assert await unpaged.request_missing() == [tid]
    await bus.drain()
    async with world.sm() as s:
        incident = (await s.scalars(select(Incident))).one()
        report = (await s.scalars(select(IncidentReport))).one()
        ticket = await s.get(Ticket, tid)
    assert ticket is not None and ticket.priority == "emergency"
    assert (incident.category, incident.building, incident.source) == ("plumbing", "3", "voicemail")
    assert incident.state == "open" and incident.callers == ["13912345678"]
    assert report.reference == ticket.number and not report.duplicate

    # Later passes, and another restart, find nothing more to page.
    for _ in range(3):
        await world.clock.advance(60)
        again, bus2, _ = world.restarted()
        assert await again.request_missing() == []
        await bus2.drain()
    assert await world.counts() == (1, 1)


async def test_a_failing_open_incident_is_retried_on_the_next_pass(world: World) -> None:
    class FailsOnce(PagingService):
        failures = 0

        async def open_incident(self, req: IncidentRequest) -> OpenResult:
            if not self.failures:
                self.failures += 1
                raise ConnectionError("database went away")
            return await super().open_incident(req)

    [tid] = await world.voicemail_tickets(BURST)
    await world.clock.advance(61)
    unpaged, bus, paging = world.restarted(FailsOnce)
    assert await unpaged.request_missing() == [tid]
    await bus.drain()
    assert await world.counts() == (0, 0) and isinstance(paging, FailsOnce)
    assert paging.failures == 1  # failed, and only logged by paging
    await world.clock.advance(60)
    assert await unpaged.request_missing() == [tid]
    await bus.drain()
    assert await unpaged.request_missing() == []
    assert await world.counts() == (1, 1)


async def test_only_new_unpaged_emergency_voicemail_tickets_are_requested(world: World) -> None:
    burst, leak, handled, old = await world.voicemail_tickets(BURST, LEAK, BURST, BURST)
    tickets = TicketService(world.sm, EventBus(), world.clock)
    await tickets.transition(handled, "dispatched", actor="值班员")  # a person is on it
    async with world.sm() as s:  # from before the look-back window
        row = await s.get(Ticket, old)
        assert row is not None
        row.created_at = T0 - timedelta(days=2)
        await s.commit()
    # An emergency typed in by an agent pages at once through its own door.
    await tickets.create(NewTicket(source="agent", category="gas", priority="emergency",
                                   summary="燃气味", created_by="agent1",
                                   community_id=world.seeded.community_id))
    await world.clock.advance(61)
    unpaged, bus, _ = world.restarted()
    assert await unpaged.request_missing() == [burst]
    await bus.drain()
    assert leak not in await unpaged.request_missing()


async def test_an_emergency_paged_live_is_not_requested_again(world: World) -> None:
    """The live path (paging listening when the ticket commits) leaves a report
    whose reference is the ticket number; that is what the recovery looks for."""
    bus = EventBus()
    paging = PagingService(world.sm, world.clock, bus)
    bus.subscribe("incident.requested", paging.on_incident_requested)
    transcriber = FakeTranscriber()
    transcriber.say(world.spool.add(freq=700), BURST)
    ingest = VoicemailIngest(world.sm, world.spool.root, world.data_dir, transcriber,
                             simple_triage, TicketService(world.sm, bus, world.clock),
                             lookup_by_number, world.clock,
                             default_community_id=world.seeded.community_id)
    await ingest.scan_and_process()
    await bus.drain()
    assert await world.counts() == (1, 1)
    await world.clock.advance(3600)
    unpaged, bus2, _ = world.restarted()
    assert await unpaged.request_missing() == []
    await bus2.drain()
    assert await world.counts() == (1, 1)


async def eventually(cond: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(500):
        if await cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_the_server_pages_a_ticket_left_unpaged_once_it_has_started(
        world: World, db_url: str) -> None:
    """The crash: ticket committed, event lost. The restarted server (tickets
    set up before paging, as ``create_app`` does) opens its incident once."""
    [tid] = await world.voicemail_tickets(BURST)
    clock = ManualClock(T0 + timedelta(minutes=10))
    settings = settings_from_mapping({
        "data_dir": str(world.data_dir), "database": {"url": db_url}, "http": HEALTH_HTTP,
        "voicemail": {"spool_dir": str(world.spool.root), "context": "default",
                      "mailboxes": ["8000"], "scan_interval_s": 30},
    })
    app = create_core_app(settings, clock=clock)
    setup_tickets(app, transcriber=lambda _app: FakeTranscriber(), triage_fn=simple_triage)
    setup_paging(app, originator=lambda _app: ScriptedOriginator(), start_worker=False)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        async def opened() -> bool:
            return (await world.counts())[0] == 1

        await eventually(opened)
        for _ in range(3):  # the periodic passes after it
            await clock.advance(30)
            await asyncio.sleep(0.05)
        assert await world.counts() == (1, 1)
        async with world.sm() as s:
            report = (await s.scalars(select(IncidentReport))).one()
            ticket = await s.get(Ticket, tid)
        assert ticket is not None and report.reference == ticket.number
        # Nothing too old to page: the health check says so.
        health = await (await client.get("/healthz", headers=HEALTH_HEADERS)).json()
        assert health["emergencies"] == {"stale": []}
    finally:
        await client.close()


async def test_an_emergency_found_by_the_first_scan_is_paged_at_once(
        world: World, db_url: str) -> None:
    """A burst-pipe message left while the server was down: the first spool scan at
    start-up makes its ticket, and paging (set up before the ingest starts, as
    ``create_app`` orders them) opens the incident then, not a recovery pass later."""
    transcriber = FakeTranscriber()
    transcriber.say(world.spool.add(freq=400), BURST)
    settings = settings_from_mapping({
        "data_dir": str(world.data_dir), "database": {"url": db_url},
        "voicemail": {"spool_dir": str(world.spool.root), "context": "default",
                      "mailboxes": ["8000"], "scan_interval_s": 30},
    })
    app = create_core_app(settings, clock=world.clock)
    setup_paging(app, originator=lambda _app: ScriptedOriginator(), start_worker=False)
    setup_tickets(app, transcriber=lambda _app: transcriber, triage_fn=simple_triage)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        async def opened() -> bool:
            return (await world.counts())[0] == 1

        await eventually(opened)  # the clock never moves: no recovery pass ran
        assert await world.counts() == (1, 1)
    finally:
        await client.close()


def test_create_app_starts_paging_before_the_voicemail_ingest(tmp_path: Path) -> None:
    from callcenter.app import create_app

    app = create_app(settings_from_mapping({"data_dir": str(tmp_path)}), transcribe=False)
    names = [getattr(ctx, "__qualname__", "") for ctx in app.cleanup_ctx]
    paging = next(i for i, n in enumerate(names) if "_paging" in n)
    tickets = next(i for i, n in enumerate(names) if "tickets_ctx" in n)
    assert paging < tickets, names


async def test_an_emergency_too_old_to_page_is_reported_once_and_listed_in_health(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """After a day down, yesterday's burst pipe is not rung through at night: it is
    logged once as an error and listed in ``/healthz`` until a person takes it."""
    old, fresh = await world.voicemail_tickets(BURST, BURST)
    async with world.sm() as s:
        row = await s.get(Ticket, old)
        assert row is not None
        row.created_at = T0 - timedelta(days=2)
        number = row.number
        await s.commit()
    await world.clock.advance(61)
    unpaged, bus, _ = world.restarted()
    assert await unpaged.request_missing() == [fresh]
    await bus.drain()
    assert await world.counts() == (1, 1)  # only the fresh one was paged
    with caplog.at_level("ERROR", logger="callcenter.tickets"):
        assert await unpaged.report_stale() == [number]
        assert await unpaged.report_stale() == [number]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and number in errors[0].getMessage()
    assert await unpaged.health() == {"emergencies": {"stale": [number]}}
    await TicketService(world.sm, EventBus(), world.clock).transition(
        old, "dispatched", actor="值班员")
    assert await unpaged.report_stale() == []
    assert await unpaged.health() == {"emergencies": {"stale": []}}
    assert await world.counts() == (1, 1)
