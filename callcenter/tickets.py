"""Wiring of tickets and voicemail ingest into the app: ``setup_tickets(app, ...)``.

Adds the API, the pages and the recording download, and a ``cleanup_ctx``
that builds the ticket and recording services (``TICKETS``, ``RECORDINGS``)
and, when a transcriber and a triage function are given, runs the voicemail
ingest: subscribed to ``voicemail.left`` on the bus and scanning the spool on
start and every ``voicemail.scan_interval_s``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import BUS, CLOCK, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.directory.services import community_by_code, lookup_by_number
from recordings import http as recordings_http
from recordings.http import RECORDINGS
from recordings.ingest import Transcriber, TriageFn, VoicemailIngest
from recordings.services import RecordingService
from ticketing import http as tickets_http
from ticketing import pages as tickets_pages
from ticketing.http import TICKETS, TicketsFeature
from ticketing.services import TicketService

log = logging.getLogger(__name__)

VOICEMAIL_INGEST = web.AppKey("voicemail_ingest", VoicemailIngest)

TranscriberSource = Transcriber | Callable[[web.Application], Transcriber | None] | None


def setup_tickets(app: web.Application, *, transcriber: TranscriberSource = None,
                  triage_fn: TriageFn | None = None) -> None:
    """Call after ``create_app`` built the database context.

    ``transcriber`` is the vosk pool, or a function of the app that returns it
    at start-up (when the pool lives under its own AppKey and cleanup_ctx,
    registered before this one). Without a transcriber or triage function the
    ingest does not run; the API and pages still do."""
    tickets_http.add_routes(app)
    tickets_pages.add_routes(app)
    recordings_http.add_routes(app)

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

        source: Any = transcriber
        pool: Transcriber | None = source(app) if callable(source) else source
        ingest: VoicemailIngest | None = None
        unsubscribe: Callable[[], None] | None = None
        if pool is not None and triage_fn is not None:
            vm = settings.voicemail
            default_community_id = None
            if settings.default_community:
                async with sm() as session:
                    community = await community_by_code(session, settings.default_community)
                default_community_id = community.id if community else None
            ingest = VoicemailIngest(
                sm, vm.spool_dir, settings.data_dir, pool, triage_fn, service, lookup_by_number,
                app[CLOCK], scan_interval_s=vm.scan_interval_s, retention_days=vm.retention_days,
                default_community_id=default_community_id, contexts=(vm.context,),
                mailboxes=vm.mailboxes or None, transcribe_timeout_s=settings.vosk.job_timeout_s,
            )
            app[VOICEMAIL_INGEST] = ingest
            unsubscribe = app[BUS].subscribe("voicemail.left", ingest.on_voicemail_left)
            await ingest.start()
        else:
            log.warning("voicemail ingest is off: no transcriber or triage function configured")
        try:
            yield
        finally:
            if unsubscribe is not None:
                unsubscribe()
            if ingest is not None:
                await ingest.stop()

    app.cleanup_ctx.append(tickets_ctx)
