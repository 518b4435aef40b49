"""The outage notices' wiring: ``setup_outages(app)``, called by ``create_app``.

Builds ``OutageNotices`` (under ``OUTAGES``) once the database is up, with the
prompts' directory (``<data_dir>/sounds``, where ``callcenter prompts build``
renders every prompt) for the notices' audio, and adds ``/api/outages`` and the
``/outages`` page. The IVR reads the notices through ``HotlineServices``; a group
incident's page posts them through ``ticketing.group_outages.GROUP_OUTAGES``,
which the composition root points at the same service."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.web.templating import setup_templates
from ivr.outages import http
from ivr.outages.http import OUTAGES
from ivr.outages.services import OutageNotices


def setup_outages(app: web.Application) -> None:
    """Call after ``create_core_app`` (its database context must run first)."""
    setup_templates(app)
    http.add_routes(app)

    async def outages_ctx(app: web.Application) -> AsyncIterator[None]:
        app[OUTAGES] = OutageNotices(app[SESSIONMAKER], app[CLOCK],
                                     sounds=app[SETTINGS].data_dir / "sounds")
        yield

    app.cleanup_ctx.append(outages_ctx)
