"""``setup_screenpop(app, ...)``: the hub, its notifiers and ``/ws/agent``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.console.audit import AuditWriter
from callcenter.console.keys import AGENT_HUB
from callcenter.db.reader import sqlite_reader
from callcenter.notify.base import DeliveryRecorder, Notifier, RetryPolicy
from callcenter.notify.email import SmtpSettings
from callcenter.notify.staff import StaffNotifiers
from callcenter.screenpop.adapters import CallLogHistory, TicketTableSource
from callcenter.screenpop.builder import PopBuilder
from callcenter.screenpop.http import agent_socket
from callcenter.screenpop.hub import AgentHub
from callcenter.screenpop.sources import CallHistorySource, OpenTicketsSource
from callcenter.screenpop.staff import StaffDirectory

STAFF_NOTIFIERS = web.AppKey("staff_notifiers", StaffNotifiers)


def setup_screenpop(app: web.Application, *, tickets: OpenTicketsSource | None = None,
                    calls: CallHistorySource | None = None,
                    notify_default: Notifier | None = None,
                    notify_policy: RetryPolicy | None = None,
                    notify_recorder: DeliveryRecorder | None = None,
                    smtp: SmtpSettings | None = None,
                    wall_debounce_s: float = 0.2, audit_flush_s: float = 0.2,
                    pop_fresh_s: float = 20.0) -> None:
    """Call from ``create_app`` after the database ``cleanup_ctx`` is in place.

    ``tickets`` / ``calls`` give the pop open repairs and the caller's last calls;
    by default they read the tickets and call-log tables."""
    tickets = tickets if tickets is not None else TicketTableSource()
    calls = calls if calls is not None else CallLogHistory()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sm = app[SESSIONMAKER]
        clock = app[CLOCK]
        http = aiohttp.ClientSession()
        notifiers = StaffNotifiers(http, clock, policy=notify_policy, recorder=notify_recorder,
                                   smtp=smtp, default=notify_default)
        reader = sqlite_reader(app[SETTINGS].database_url)
        builder = PopBuilder(sm, tickets=tickets, calls=calls, reader=reader,
                             timezone=app[SETTINGS].timezone)
        hub = AgentHub(sessionmaker=sm, builder=builder,
                       staff=StaffDirectory(sm, clock), clock=clock,
                       timezone=app[SETTINGS].timezone, notifiers=notifiers,
                       audit=AuditWriter(sm, flush_every_s=audit_flush_s),
                       wall_debounce_s=wall_debounce_s, pop_fresh_s=pop_fresh_s,
                       default_community=app[SETTINGS].default_community)
        await hub.load_today()
        hub.subscribe(app[BUS])
        app[AGENT_HUB] = hub
        app[STAFF_NOTIFIERS] = notifiers
        try:
            yield
        finally:
            await hub.close()
            await http.close()
            if reader is not None:
                reader.dispose()

    app.cleanup_ctx.append(ctx)
    app.router.add_get("/ws/agent", agent_socket)

