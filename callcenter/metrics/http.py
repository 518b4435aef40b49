"""``GET /metrics``: the Prometheus text exposition of one server.

Who may scrape (``[http]`` settings; docs/DEPLOY.md, "Metrics"):

* ``metrics_token``: the main listener serves ``/metrics`` to
  ``Authorization: Bearer <metrics_token>`` and to nobody else (401; a person's
  session or API token does not open it, and no person's token is needed);
* ``metrics_port``: a listener of its own on 127.0.0.1 serves ``/metrics``
  without a token (a scraper on the same machine, or through a tunnel);
* neither: the main listener answers ``/metrics`` with 404, as for any unknown page.

Figures kept in the database (the transcription backlog, overdue tickets) are
read by an async query just before rendering, with a time limit; when that
fails the last figures are shown and ``callcenter_metrics_refresh_errors_total``
goes up. Rendering reads memory only, in a thread (prometheus_client's metrics
take their own locks), so a scrape never holds up the event loop for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Metric, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.appkeys import SETTINGS
from callcenter.auth.middleware import METRICS_ACCESS_KEY
from callcenter.clock import Clock
from callcenter.errors import Unauthorized
from callcenter.metrics.registry import Metrics
from callcenter.metrics.transcription import backlog_counts
from ticketing.sla import overdue_counts

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 5.0


class WithoutCreated(Collector):
    """``registry`` without the ``*_created`` timestamps prometheus_client adds to
    each counter and histogram: in the text format they read as gauges of their
    own (``callcenter_calls_created`` is no count of calls) and double the lines."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class MetricsEndpoint:
    """Renders ``metrics``; ``refresh`` reads the database-kept figures first."""

    def __init__(self, metrics: Metrics,
                 sessionmaker: Callable[[], async_sessionmaker[AsyncSession]], clock: Clock, *,
                 refresh_timeout_s: float = REFRESH_TIMEOUT_S) -> None:
        self.metrics = metrics
        self._sm = sessionmaker
        self._clock = clock
        self._timeout = refresh_timeout_s
        self.port: int | None = None
        """The bound port of the ``[http] metrics_port`` listener, once it runs."""
        self._failing = False

    async def refresh(self) -> None:
        m = self.metrics
        try:
            async with asyncio.timeout(self._timeout), self._sm()() as session:
                backlog = await backlog_counts(session)
                overdue = await overdue_counts(session, self._clock.now())
        except Exception:  # the database is down or slow: show the last figures
            if not self._failing:  # once per outage, not once per scrape
                log.warning("metrics: database figures not read; showing the last ones",
                            exc_info=True)
            self._failing = True
            m.scrape_refresh_errors.inc()
            return
        if self._failing:
            log.info("metrics: database figures read again")
            self._failing = False
        for state, n in backlog.items():
            m.transcription_backlog.labels(state).set(n)
        for priority, n in overdue.items():
            m.tickets_overdue.labels(priority).set(n)

    async def render(self) -> bytes:
        await self.refresh()
        # ~14 µs a sample (8 ms for a busy server's ~600): off the event loop.
        return await asyncio.to_thread(generate_latest, WithoutCreated(self.metrics.registry))

    async def response(self) -> web.Response:
        return web.Response(body=await self.render(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


METRICS_ENDPOINT = web.AppKey("metrics_endpoint", MetricsEndpoint)


async def metrics_page(request: web.Request) -> web.Response:
    """``/metrics`` on the main listener: only with the ``[http] metrics_token``."""
    if not request.app[SETTINGS].http.metrics_token:
        raise web.HTTPNotFound()
    if not request.get(METRICS_ACCESS_KEY):
        raise Unauthorized("scrape /metrics with Authorization: Bearer <[http] metrics_token>")
    return await request.app[METRICS_ENDPOINT].response()
