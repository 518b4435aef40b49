"""Wiring of tickets and voicemail ingest into the app: ``setup_tickets(app, ...)``.

Adds the API, the pages and the recording download, and a ``cleanup_ctx``
that builds the ticket and recording services (``TICKETS``, ``RECORDINGS``)
and runs the voicemail ingest (``VOICEMAIL_INGEST``): subscribed to
``voicemail.left`` on the bus and scanning the spool on start and every
``voicemail.scan_interval_s``.

``incident.requested`` for an emergency voicemail is published in memory after
its ticket commits, so a crash in between, a paging service not yet listening
at start-up, or a failure in opening the incident would lose the page.
``UnpagedEmergencies`` makes it durable: once the app has started and every
``voicemail.scan_interval_s`` after, it finds emergency voicemail tickets that
are still new and that no incident report references (paging stores the ticket
number as the report's ``reference``), and requests their incident again.
Paging joins a second request for the same place and category to the open
incident, so nobody is paged twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.appkeys import BUS, CLOCK, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.bus import EventBus
from callcenter.clock import Clock, SystemClock
from callcenter.directory.services import community_by_code, lookup_by_number
from callcenter.paging.models import IncidentReport
from callcenter.settings import Settings
from callcenter.web.templating import setup_templates
from recordings import http as recordings_http
from recordings.http import RECORDINGS
from recordings.ingest import Transcriber, TriageFn, TriageLike, VoicemailIngest
from recordings.services import RecordingService
from ticketing import http as tickets_http
from ticketing import pages as tickets_pages
from ticketing.http import TICKETS, TicketsFeature
from ticketing.models import Ticket
from ticketing.services import TicketService

log = logging.getLogger(__name__)

VOICEMAIL_INGEST = web.AppKey("voicemail_ingest", VoicemailIngest)


class UnpagedEmergencies:
    """Emergency voicemail tickets whose ``incident.requested`` was lost.

    A ticket counts when it came from voicemail, is an emergency, is still
    ``new`` (once someone dispatched it, a person is on it), was created at
    least ``grace_s`` ago (its live request has had time to open the incident)
    and at most ``lookback_s`` ago, and no incident report has its number.

    One older than ``lookback_s`` (the server was down for a day) is not paged:
    ringing an engineer at night about yesterday's burst pipe helps nobody. It
    is logged as an error once and listed in ``/healthz`` (``emergencies.stale``)
    until someone dispatches or closes it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], tickets: TicketService,
                 clock: Clock, *, interval_s: float = 60.0, grace_s: float = 60.0,
                 lookback_s: float = 24 * 3600.0) -> None:
        self._sm = sessionmaker
        self._tickets = tickets
        self._clock = clock
        self._interval = interval_s
        self._grace = timedelta(seconds=grace_s)
        self._lookback = timedelta(seconds=lookback_s)
        self.stale: list[str] = []  # numbers of the tickets too old to page, last pass
        self._reported: set[str] = set()

    def _unpaged(self) -> Any:
        paged = exists().where(IncidentReport.reference == Ticket.number)
        return (Ticket.source == "voicemail", Ticket.priority == "emergency",
                Ticket.state == "new", ~paged)

    async def find(self) -> list[int]:
        now = self._clock.now()
        async with self._sm() as session:
            rows = await session.scalars(
                select(Ticket.id).where(
                    *self._unpaged(), Ticket.created_at <= now - self._grace,
                    Ticket.created_at >= now - self._lookback,
                ).order_by(Ticket.id))
            return list(rows.all())

    async def find_stale(self, limit: int = 50) -> list[str]:
        """Numbers of unpaged emergency tickets older than the look-back, oldest first."""
        now = self._clock.now()
        async with self._sm() as session:
            rows = await session.scalars(
                select(Ticket.number).where(*self._unpaged(),
                                            Ticket.created_at < now - self._lookback)
                .order_by(Ticket.created_at, Ticket.id).limit(limit))
            return list(rows.all())

    async def report_stale(self) -> list[str]:
        """Log each stale ticket once (per process); keep the list for ``/healthz``."""
        self.stale = await self.find_stale()
        for number in self.stale:
            if number not in self._reported:
                self._reported.add(number)
                log.error("emergency ticket %s was never paged and is older than %d h: "
                          "not paging it now; dispatch or close it by hand", number,
                          self._lookback.total_seconds() // 3600)
        return self.stale

    async def health(self) -> dict[str, object]:
        """A ``HEALTH_EXTRAS`` section."""
        return {"emergencies": {"stale": list(self.stale)}}

    async def request_missing(self) -> list[int]:
        """Request an incident for each such ticket; returns their ids."""
        ids = await self.find()
        for ticket_id in ids:
            view = await self._tickets.get(ticket_id)
            log.warning("emergency ticket %s has no incident: requesting one again", view.number)
            self._tickets.request_incident(view)
        return ids

    async def run(self, started: asyncio.Event) -> None:
        """Once ``started`` is set (paging listens by then), now and every interval."""
        await started.wait()
        while True:
            try:
                await self.request_missing()
                await self.report_stale()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for unpaged emergency tickets failed")
            await self._clock.sleep(self._interval)

TranscriberSource = Transcriber | Callable[[web.Application], Transcriber | None] | None


def default_triage(lexicon_dir: Path | None = None) -> TriageFn | None:
    """The triage rules of ``ticketing.triage`` when present, with the company
    lexicon in ``lexicon_dir`` (``[triage] lexicon``, checked when the settings
    were loaded) or the built-in one."""
    try:
        from ticketing.triage import load_lexicon, triage
    except ImportError:
        log.warning("ticketing.triage is missing: voicemail tickets are filed as 'other'")
        return None
    if lexicon_dir is None:
        fn: TriageFn = triage
        return fn
    lexicon = load_lexicon(lexicon_dir)
    log.info("triage uses the lexicon in %s", lexicon_dir)

    def with_lexicon(text: str) -> TriageLike:
        return triage(text, lexicon)

    return with_lexicon


@asynccontextmanager
async def transcriber_from_settings(settings: Settings) -> AsyncIterator[Transcriber | None]:
    """The vosk pool when a model is configured (``[vosk] model_path``) or unpacked
    under ``<data_dir>/models`` by ``callcenter vosk download``; started and stopped
    around the block."""
    model_path: Path | str | None = settings.vosk.model_path
    if model_path is None:
        from recordings.errors import ModelNotFound
        from recordings.vosk_model import model_in_data_dir

        try:
            model_path = model_in_data_dir(settings.data_dir)
        except ModelNotFound as exc:
            log.error("%s: voicemail is not transcribed", exc)
            yield None
            return
        if model_path is None:
            log.warning("no Vosk model (set vosk.model_path or run `callcenter vosk download`): "
                        "voicemail is not transcribed")
            yield None
            return
        log.info("using the Vosk model in %s", model_path)
    try:
        from recordings.transcribe import TranscriberPool
    except ImportError:
        log.warning("recordings.transcribe is missing: voicemail is not transcribed")
        yield None
        return
    from recordings.errors import RecordingError

    try:
        pool = TranscriberPool(model_path, workers=settings.vosk.workers,
                               recycle_after=settings.vosk.recycle_after,
                               job_timeout=settings.vosk.job_timeout_s)
        await pool.start()
    except (RecordingError, OSError) as exc:
        log.error("vosk transcriber did not start (%s): voicemail is not transcribed", exc)
        yield None
        return
    try:
        yield pool
    finally:
        await pool.close()


async def build_ingest(settings: Settings, sm: async_sessionmaker[AsyncSession],
                       transcriber: Transcriber | None, triage_fn: TriageFn | None, *,
                       service: TicketService | None = None, bus: EventBus | None = None,
                       clock: Clock | None = None, spool_dir: Path | None = None
                       ) -> VoicemailIngest:
    clock = clock or SystemClock()
    service = service or TicketService(sm, bus or EventBus(), clock, timezone=settings.timezone)
    vm = settings.voicemail
    default_community_id = None
    if settings.default_community:
        async with sm() as session:
            community = await community_by_code(session, settings.default_community)
        default_community_id = community.id if community else None
    return VoicemailIngest(
        sm, spool_dir or vm.spool_dir, settings.data_dir, transcriber, triage_fn, service,
        lookup_by_number, clock, scan_interval_s=vm.scan_interval_s,
        retention_days=vm.retention_days, default_community_id=default_community_id,
        contexts=(vm.context,), mailboxes=vm.mailboxes or None,
        transcribe_timeout_s=settings.vosk.job_timeout_s + 30.0,
    )


def setup_tickets(app: web.Application, *, transcriber: TranscriberSource = None,
                  triage_fn: TriageFn | None = None, ingest: bool = True) -> None:
    """Call after ``create_app`` (its database context must run first).

    ``transcriber`` is the vosk pool, or a function of the app returning it at
    start-up (when the pool lives under its own AppKey and cleanup_ctx,
    registered before this one). Without one, voicemail still becomes tickets
    that say "请收听录音". ``triage_fn`` defaults to ``ticketing.triage.triage``
    with the lexicon of ``[triage] lexicon``."""
    setup_templates(app)  # the pages use the console's layout (a no-op when it is there)
    tickets_http.add_routes(app)
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
        service = TicketService(sm, app[BUS], app[CLOCK], timezone=settings.timezone)
        recordings = RecordingService(sm, settings.data_dir)
        app[TICKETS] = TicketsFeature(service, recordings, ZoneInfo(settings.timezone))
        app[RECORDINGS] = recordings

        async def health() -> dict[str, object]:
            return {"transcription_jobs": await recordings.job_counts()}

        app[HEALTH_EXTRAS].append(health)
        if not ingest:
            yield
            return
        source: Any = transcriber
        pool: Transcriber | None = source(app) if callable(source) else source
        triage = triage_fn if triage_fn is not None else default_triage(settings.triage.lexicon)
        running = await build_ingest(settings, sm, pool, triage, service=service,
                                     clock=app[CLOCK])
        app[VOICEMAIL_INGEST] = running
        unsubscribe = app[BUS].subscribe("voicemail.left", running.on_voicemail_left)
        unpaged = UnpagedEmergencies(sm, service, app[CLOCK],
                                     interval_s=settings.voicemail.scan_interval_s)
        app[HEALTH_EXTRAS].append(unpaged.health)
        app_started.clear()
        recovery = asyncio.get_running_loop().create_task(unpaged.run(app_started),
                                                          name="unpaged-emergencies")
        await running.start()
        try:
            yield
        finally:
            unsubscribe()
            recovery.cancel()
            try:
                await recovery
            except asyncio.CancelledError:
                pass
            await running.stop()

    app.cleanup_ctx.append(tickets_ctx)
