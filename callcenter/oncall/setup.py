"""Wiring for the on-call feature: routes and, if a dialer is given, the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from aiohttp import web

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.oncall.http import add_oncall_routes
from callcenter.oncall.router import AgiDialer, Dialer, OnCallRouter, RouterConfig
from callcenter.settings import Settings

ONCALL_ROUTER = web.AppKey("oncall_router", OnCallRouter)


def voicemail_box(settings: Settings) -> str:
    """``mailbox@context`` the chain ends in, or ``""`` with the fallback off.

    The mailbox is ``oncall.voicemail_mailbox`` or else the first of
    ``voicemail.mailboxes`` (the repair intake, whose messages become tickets)."""
    oc = settings.oncall
    if not oc.voicemail_fallback:
        return ""
    mailbox = oc.voicemail_mailbox or (settings.voicemail.mailboxes[0]
                                       if settings.voicemail.mailboxes else "")
    return f"{mailbox}@{settings.voicemail.context}" if mailbox else ""


def router_config_from_settings(app: web.Application, **overrides: Any) -> RouterConfig:
    """``[oncall]`` (ring time, preference, voicemail fallback) and the trunk and
    extension patterns of the first ``[[asterisk]]`` entry."""
    settings = app[SETTINGS]
    pbx = settings.asterisk[0] if settings.asterisk else None
    base = RouterConfig(ring_timeout_s=settings.oncall.ring_timeout_s,
                        prefer=settings.oncall.prefer,
                        voicemail_box=voicemail_box(settings))
    if pbx:
        base = replace(base, trunk=pbx.trunk, extension_channel=pbx.extension_channel)
    return replace(base, **overrides)


def setup_oncall(app: web.Application, *, dialer: Dialer | None = None,
                 config: RouterConfig | None = None) -> None:
    """Add ``/api/oncall/now`` and ``/oncall``; build ``app[ONCALL_ROUTER]`` at
    start (after the database), for the IVR's ``route_oncall`` action."""
    add_oncall_routes(app)

    async def _router(app: web.Application) -> AsyncIterator[None]:
        app[ONCALL_ROUTER] = OnCallRouter(app[SESSIONMAKER], dialer or AgiDialer(), app[CLOCK],
                                          config or router_config_from_settings(app))
        yield

    app.cleanup_ctx.append(_router)
