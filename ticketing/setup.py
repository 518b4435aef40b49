"""The ticketing domain's wiring: ``setup_tickets(app, ...)``, called by ``create_app``
(through ``callcenter.tickets``, which builds the ports below from the rest of
the server).

Adds the API (tickets, work-order actions, departments), the pages and the
recording and photo downloads, and a ``cleanup_ctx``
that builds the ticket and recording services (``TICKETS``, ``RECORDINGS``)
and, when an ingest factory is given, runs the voicemail ingest
(``VOICEMAIL_INGEST``): subscribed to ``voicemail.left`` on the bus and
scanning the spool on start and every ``voicemail.scan_interval_s``.

What this package cannot know arrives as ports: the ingest (the directory's
caller lookup and the speech pool come from the composition root) and the
*watchers*, long-running loops that start once the app has started (paging
listens by then): the composition root's ``UnpagedEmergencies``, and
``ticketing.listen.ListenNotices`` with the notifier that tells night duty or
the front desk to listen to a voicemail nobody's software understood.

It reads only the platform's typed keys (``callcenter.appkeys``); it imports no
other feature of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import BUS, CLOCK, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.bus import DomainEvent
from callcenter.web.templating import setup_templates
from recordings import http as recordings_http
from recordings.http import RECORDINGS
from recordings.ingest import VoicemailIngest
from recordings.services import RecordingService
from recordings.store import RecordingStore
from ticketing import group_pages, groups_http, workorders_http
from ticketing import http as tickets_http
from ticketing import pages as tickets_pages
from ticketing.categories import MAJOR
from ticketing.groups import GroupDetector, TicketGroups
from ticketing.http import TICKETS, TicketsFeature
from ticketing.photos import PhotoStore
from ticketing.services import TicketService
from ticketing.sla_policy import SlaPolicy, WorkingHours
from ticketing.sla_timers import SlaClock
from ticketing.sla_worker import SlaNotifier, SlaWorker, SlaWorkerConfig
from ticketing.workorders import OnCallLookup, WorkOrders

VOICEMAIL_INGEST = web.AppKey("voicemail_ingest", VoicemailIngest)
SLA_WORKER = web.AppKey("sla_worker", SlaWorker)
SLA_CLOCK = web.AppKey("sla_clock", SlaClock)

SlaNotifierFactory = Callable[[web.Application], AbstractAsyncContextManager[SlaNotifier | None]]


@dataclass(frozen=True)
class SlaSetup:
    """The SLA clock's ports: the policy (``ticketing.sla_policy``), office hours for
    categories that count working time only, and the notifier of breaches (entered
    when the worker starts)."""

    policy: SlaPolicy = field(default_factory=SlaPolicy)
    hours: WorkingHours | None = None
    notifier: SlaNotifierFactory | None = None
    config: SlaWorkerConfig = field(default_factory=SlaWorkerConfig)


class Watcher(Protocol):
    """A loop that runs from once the app has started until it stops."""

    async def run(self, started: asyncio.Event) -> None: ...


IngestFactory = Callable[[web.Application, TicketService], Awaitable[VoicemailIngest]]
WatcherFactory = Callable[[web.Application, TicketService], AbstractAsyncContextManager[Watcher | None]]


def setup_tickets(app: web.Application, *, ingest: IngestFactory | None = None,
                  watchers: Sequence[WatcherFactory] = (),
                  on_call: OnCallLookup | None = None, sla: SlaSetup | None = None) -> None:
    """Call after ``create_core_app`` (its database context must run first).

    ``on_call`` answers "the department's on-call person now" for 派单 (None:
    dispatch names a person). ``ingest`` builds the voicemail ingest (None: tickets and recordings only);
    each of ``watchers`` is entered in the context and its ``run`` started, in
    order, once the app has started (watchers run only with an ingest).

    ``sla``: the SLA clock; its timers are armed and moved with every ticket and
    its worker (``SLA_WORKER``) runs from start to shutdown (None: no SLA clock)."""
    setup_templates(app)  # the pages use the console's layout (a no-op when it is there)
    tickets_http.add_routes(app)
    workorders_http.add_routes(app)
    groups_http.add_routes(app)
    group_pages.add_routes(app)
    tickets_pages.add_routes(app)
    recordings_http.add_routes(app)
    # on_startup runs after every cleanup_ctx has started, paging's included.
    app_started = asyncio.Event()

    async def mark_started(app: web.Application) -> None:
        app_started.set()

    app.on_startup.append(mark_started)

    async def tickets_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        sm = app[SESSIONMAKER]
        sla_clock = SlaClock(sla.policy, sla.hours) if sla is not None else None
        if sla_clock is not None:
            app[SLA_CLOCK] = sla_clock
        # 群发事件: detected as each ticket is added; told through the SLA worker.
        detector = GroupDetector(sla.policy if sla is not None else None,
                                 notify=sla is not None)
        service = TicketService(sm, app[BUS], app[CLOCK], timezone=settings.timezone,
                                sla=sla_clock, groups=detector)
        recordings = RecordingService(sm, settings.data_dir)
        photos = PhotoStore(RecordingStore(settings.data_dir))
        workorders = WorkOrders(sm, app[BUS], app[CLOCK], service, photos, on_call=on_call,
                                sla=sla_clock)
        app[TICKETS] = TicketsFeature(service, recordings, ZoneInfo(settings.timezone),
                                      workorders,
                                      TicketGroups(sm, app[BUS], app[CLOCK], sla=sla_clock))
        app[RECORDINGS] = recordings

        async def health() -> dict[str, object]:
            return {"transcription_jobs": await recordings.job_counts()}

        app[HEALTH_EXTRAS].append(health)
        if ingest is None:
            yield
            return
        running = await ingest(app, service)
        app[VOICEMAIL_INGEST] = running
        unsubscribe = app[BUS].subscribe("voicemail.left", running.on_voicemail_left)
        async with contextlib.AsyncExitStack() as stack:
            loops = []
            for factory in watchers:
                watcher = await stack.enter_async_context(factory(app, service))
                if watcher is not None:
                    loops.append(watcher)
            app_started.clear()
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(w.run(app_started), name=f"tickets:{type(w).__name__}")
                     for w in loops]
            await running.start()
            try:
                yield
            finally:
                unsubscribe()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await running.stop()

    app.cleanup_ctx.append(tickets_ctx)
    if sla is not None:
        app.cleanup_ctx.append(_sla_ctx(sla))


def _sla_ctx(sla: SlaSetup) -> Callable[[web.Application], AsyncIterator[None]]:
    async def sla_ctx(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            notifier = (await stack.enter_async_context(sla.notifier(app))
                        if sla.notifier is not None else None)
            worker = SlaWorker(app[SESSIONMAKER], app[CLOCK], app[BUS], notifier,
                               config=sla.config)
            app[SLA_WORKER] = worker

            async def major(event: DomainEvent) -> None:
                # a 重大投诉's notice is due now: do not wait for the next poll
                data = event.data.get("data") or event.data
                if isinstance(data, dict) and MAJOR in (data.get("complaint_grade"),
                                                        data.get("grade")):
                    worker.wake()
                elif event.name == "ticket.created" and event.data.get("group_id"):
                    worker.wake()  # it may have opened a group incident: tell now

            unsubscribe = [app[BUS].subscribe(name, major)
                           for name in ("ticket.created", "ticket.changed")]
            await worker.start()
            try:
                yield
            finally:
                for off in unsubscribe:
                    off()
                await worker.stop()

    return sla_ctx
