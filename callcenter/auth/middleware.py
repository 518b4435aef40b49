"""Authentication for the API and pages: ``Authorization: Bearer`` or a session.

The middleware only identifies; handlers decide with ``require_role``. Web
sessions are resolved by whatever the console installs under
``SESSION_RESOLVER`` (a callable taking the request). The ``[http]
health_token`` is recognised too, but brings no identity: it only opens the
details of ``/healthz`` (``health_access``).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from callcenter.appkeys import SESSION_RESOLVER, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import Identity
from callcenter.auth.tokens import verify_token
from callcenter.errors import Forbidden, Unauthorized

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDENTITY_KEY: web.RequestKey[Identity | None] = web.RequestKey("identity")
HEALTH_ACCESS_KEY = web.RequestKey("health_access", bool)
METRICS_ACCESS_KEY = web.RequestKey("metrics_access", bool)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    identity: Identity | None = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        health = _is_health_token(request, token)
        metrics = _is_service_token(request, token, "metrics_token")
        if health or metrics:
            # Shows /healthz details or /metrics and nothing else: no identity comes with it.
            request[HEALTH_ACCESS_KEY], request[METRICS_ACCESS_KEY] = health, metrics
            request[IDENTITY_KEY] = None
            return await handler(request)
        async with request.app[SESSIONMAKER]() as session:
            identity = await verify_token(session, token)
        if identity is None:
            raise Unauthorized("invalid or revoked API token")
    else:
        resolver = request.app.get(SESSION_RESOLVER)
        if resolver is not None:
            identity = await resolver(request)
    request[IDENTITY_KEY] = identity
    return await handler(request)


def _is_health_token(request: web.Request, token: str) -> bool:
    return _is_service_token(request, token, "health_token")


def _is_service_token(request: web.Request, token: str, key: str) -> bool:
    """Is ``token`` the ``[http] <key>`` (a scraper's or monitor's, not a person's)."""
    settings = request.app.get(SETTINGS)
    expected = getattr(settings.http, key).reveal() if settings is not None else ""
    return bool(expected) and hmac.compare_digest(expected.encode(), token.encode())


def health_access(request: web.Request) -> bool:
    """May this request see ``/healthz`` details: the ``[http] health_token``, or a
    supervisor's or admin's API token or session."""
    if request.get(HEALTH_ACCESS_KEY):
        return True
    ident = current_identity(request)
    return ident is not None and ident.has_role("supervisor")


def current_identity(request: web.Request) -> Identity | None:
    value = request.get(IDENTITY_KEY)
    return value if isinstance(value, Identity) else None


F = TypeVar("F", bound=Handler)


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow the named roles (admin always). No identity → 401; wrong role → 403.

    With no roles named, any signed-in user passes."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            ident = current_identity(request)
            if ident is None:
                raise Unauthorized("sign in or send Authorization: Bearer <token>")
            if roles and not ident.has_role(*roles):
                raise Forbidden(
                    f"role {ident.role!r} may not do this", details={"allowed": list(roles)}
                )
            return await fn(request)

        return wrapper  # type: ignore[return-value]

    return deco
