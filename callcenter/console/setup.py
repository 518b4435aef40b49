"""``setup_console(app, ...)``: sign-in, sessions, CSRF, the console pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from argon2 import PasswordHasher

from callcenter.appkeys import CLOCK, SESSION_RESOLVER, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.passwords import PasswordsFactory, PasswordWorkers, make_hasher
from callcenter.auth.sessions import (
    LoginThrottle,
    SessionStore,
    csrf_middleware_factory,
    session_resolver,
)
from callcenter.console.config import CONSOLE_CONFIG, ConsoleConfig
from callcenter.console.http import add_routes
from callcenter.console.keys import (
    AGENT_HUB,
    AGENT_STATUS,
    LOGIN_THROTTLE,
    ORIGINATE,
    SESSION_STORE,
    SESSION_WATCH,
)
from callcenter.console.ports import AgentStatusPort, OriginatePort
from callcenter.console.presence import SessionWatch
from callcenter.web.templating import setup_templates


def setup_console(app: web.Application, *, hasher: PasswordHasher | None = None,
                  config: ConsoleConfig | None = None, login_limit: int = 5,
                  login_window_s: float = 300.0, agent_status: AgentStatusPort | None = None,
                  originate: OriginatePort | None = None,
                  session_check_s: float = 15.0,
                  passwords: PasswordsFactory = PasswordWorkers) -> None:
    """Call from ``create_app`` after the database ``cleanup_ctx`` (and with the
    auth middleware already in the list: CSRF runs after it).

    ``agent_status`` / ``originate`` may instead be set later under
    ``console.keys.AGENT_STATUS`` / ``ORIGINATE`` (e.g. in the AMI ``cleanup_ctx``).
    ``session_check_s``: how often open WebSockets and queued agents are checked
    against their sessions (``console.presence``). ``passwords`` builds the pool
    that checks passwords (``InlinePasswords``: the benchmark's on-the-loop baseline)."""
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
        http = app[SETTINGS].http
        pool = passwords(hasher or make_hasher(), workers=http.password_workers,
                         queue=http.password_queue)
        app[SESSION_STORE] = SessionStore(
            app[SESSIONMAKER], app[CLOCK], max_age_s=http.session_max_age_s,
            passwords=pool, max_per_user=http.max_sessions_per_user)
        app[LOGIN_THROTTLE] = LoginThrottle(app[CLOCK], free=login_limit,
                                            cap_s=login_window_s)
        await app[SESSION_STORE].purge_expired()
        watch = app[SESSION_WATCH] = SessionWatch(
            app[SESSION_STORE], app[SESSIONMAKER], app[CLOCK], hub=lambda: app.get(AGENT_HUB),
            port=lambda: app.get(AGENT_STATUS), every_s=session_check_s)
        watch.start()
        try:
            yield
        finally:
            await watch.stop()
            pool.close()

    app.cleanup_ctx.append(ctx)
