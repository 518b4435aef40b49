"""The composition root: ``create_app(settings)`` builds every part and wires them.

Long-lived objects live under typed keys (``callcenter.appkeys``); each is
started and stopped by a ``cleanup_ctx`` generator, in order, so nothing
outlives shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcenter.appkeys import BUS, CLOCK, ENGINE, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import auth_middleware
from callcenter.bus import EventBus
from callcenter.clock import Clock, SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.health import healthz
from callcenter.settings import Settings
from callcenter.web.errors import error_middleware


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    await migrate(engine)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[BUS].drain()


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=8 * 1024**2)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BUS] = EventBus()
    app[HEALTH_EXTRAS] = []
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_bus)
    app.router.add_get("/healthz", healthz)
    return app
