"""``setup_metrics(app, links)``: one registry per app, its recorders, ``/metrics``.

``create_app`` calls it before the AMI links start, and wraps with the returned
``Metrics`` the two things it builds itself: the AGI entry point
(``metrics.agi.timed_sessions``) and the Vosk pool
(``metrics.transcription.timed_transcriber``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.console.keys import AGENT_HUB
from callcenter.metrics.http import METRICS_ENDPOINT, MetricsEndpoint, metrics_page
from callcenter.metrics.recorders import BusRecorder, LinkRecorder
from callcenter.metrics.registry import Metrics

METRICS = web.AppKey("metrics", Metrics)
LISTEN_HOST = "127.0.0.1"


def setup_metrics(app: web.Application, links: AmiLinks) -> Metrics:
    """Call after the screen-pop's setup (its hub reports pops) and before the
    links start (``setup_ami``)."""
    metrics = Metrics()
    app[METRICS] = metrics
    for name in links.names():
        LinkRecorder(metrics, name).attach(links.get(name))
    bus = BusRecorder(metrics)
    endpoint = MetricsEndpoint(metrics, lambda: app[SESSIONMAKER], app[CLOCK])
    app[METRICS_ENDPOINT] = endpoint
    app.router.add_get("/metrics", metrics_page)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        bus.subscribe(app[BUS])
        hub = app.get(AGENT_HUB)
        if hub is not None:
            hub.on_frame_sent = bus.on_pop_sent
        runner = await _own_listener(app, endpoint)
        yield
        if runner is not None:
            await runner.cleanup()
        bus.close()

    app.cleanup_ctx.append(lifecycle)
    return metrics


async def _own_listener(app: web.Application, endpoint: MetricsEndpoint
                        ) -> web.AppRunner | None:
    """The ``[http] metrics_port`` listener on 127.0.0.1: ``/metrics``, no token."""
    port = app[SETTINGS].http.metrics_port
    if port is None:
        return None

    async def scrape(request: web.Request) -> web.Response:
        return await endpoint.response()

    side = web.Application()
    side.router.add_get("/metrics", scrape)
    runner = web.AppRunner(side, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, LISTEN_HOST, port)
    await site.start()
    endpoint.port = next(int(a[1]) for a in runner.addresses if isinstance(a, tuple))
    return runner
