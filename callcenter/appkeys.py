"""Typed keys for the long-lived objects the application holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import Clock
from callcenter.settings import Settings

if TYPE_CHECKING:
    from callcenter.auth.identity import Identity

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", EventBus)
CLOCK = web.AppKey("clock", Clock)
SessionResolver = Callable[[web.Request], Awaitable["Identity | None"]]
SESSION_RESOLVER: web.AppKey[SessionResolver] = web.AppKey("session_resolver")
LinkStatus = Callable[[], dict[str, str]]
LINK_STATUS: web.AppKey[LinkStatus] = web.AppKey("link_status")
"""Returns ``{pbx name: "connected" | "disconnected" | ...}`` for /healthz."""
HealthExtra = Callable[[], Awaitable[dict[str, object]]]
HEALTH_EXTRAS: web.AppKey[list[HealthExtra]] = web.AppKey("health_extras")
"""Features add sections to /healthz (holiday data coverage, transcription workers...)."""

if TYPE_CHECKING:
    from callcenter.ami.links import AmiLinks
AMI_LINKS: web.AppKey[AmiLinks] = web.AppKey("ami_links")
"""Every AMI link with its call tracker (``callcenter.ami.setup.setup_ami``)."""

if TYPE_CHECKING:
    from callcenter.calls.services import CallLogService
CALL_LOG: web.AppKey[CallLogService] = web.AppKey("call_log")
"""Writes and searches the call log (``callcenter.calls.http.setup_calls``)."""

if TYPE_CHECKING:
    from callcenter.calls.callbacks import CallbackService
CALLBACKS: web.AppKey[CallbackService] = web.AppKey("callbacks")
"""The callback worklist (``callcenter.calls.callbacks_http.setup_callbacks``)."""
