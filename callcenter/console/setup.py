"""``setup_console(app, ...)``: sign-in, sessions, CSRF, the console pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from argon2 import PasswordHasher

from callcenter.appkeys import CLOCK, SESSION_RESOLVER, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.passwords import make_hasher
from callcenter.auth.sessions import (
    LoginThrottle,
    SessionStore,
    csrf_middleware_factory,
    session_resolver,
)
from callcenter.console.config import CONSOLE_CONFIG, ConsoleConfig
from callcenter.console.http import add_routes
from callcenter.console.keys import AGENT_STATUS, LOGIN_THROTTLE, ORIGINATE, SESSION_STORE
from callcenter.console.ports import AgentStatusPort, OriginatePort
from callcenter.web.templating import setup_templates


def setup_console(app: web.Application, *, hasher: PasswordHasher | None = None,
                  config: ConsoleConfig | None = None, login_limit: int = 5,
                  login_window_s: float = 300.0, agent_status: AgentStatusPort | None = None,
                  originate: OriginatePort | None = None) -> None:
    """Call from ``create_app`` after the database ``cleanup_ctx`` (and with the
    auth middleware already in the list: CSRF runs after it).

    ``agent_status`` / ``originate`` may instead be set later under
    ``console.keys.AGENT_STATUS`` / ``ORIGINATE`` (e.g. in the AMI ``cleanup_ctx``)."""
    app.middlewares.append(csrf_middleware_factory())
    app[CONSOLE_CONFIG] = config or ConsoleConfig()
    if agent_status is not None:
        app[AGENT_STATUS] = agent_status
    if originate is not None:
        app[ORIGINATE] = originate
    setup_templates(app)
    add_routes(app)

    async def resolve(request: web.Request) -> Identity | None:
        store = request.app.get(SESSION_STORE)
        return await session_resolver(store)(request) if store is not None else None

    app[SESSION_RESOLVER] = resolve

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION_STORE] = SessionStore(
            app[SESSIONMAKER], app[CLOCK], max_age_s=app[SETTINGS].http.session_max_age_s,
            hasher=hasher or make_hasher())
        app[LOGIN_THROTTLE] = LoginThrottle(app[CLOCK], limit=login_limit,
                                            window_s=login_window_s)
        await app[SESSION_STORE].purge_expired()
        yield

    app.cleanup_ctx.append(ctx)
