"""``setup_cluster(app)``: on PostgreSQL, the bus between this server and the others.

On SQLite (a single server) it does nothing. The server's id is
``CALLCENTER_SERVER_ID`` when set, else made at start (host, process, a random
part): a restarted server is a new one to the others. Its LISTEN connection shows
in ``pg_stat_activity`` as ``application_name`` ``callcenter-bus <id>``.
``CALLCENTER_BUS_RETRY_S``: the first wait before a reconnect (0.2 s; it doubles
up to 10 s).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from sqlalchemy.engine import make_url

from callcenter.appkeys import BUS, SESSIONMAKER, SETTINGS
from callcenter.cluster.bridge import PgBus
from callcenter.console.agent_states import AgentStateStore
from callcenter.console.keys import AGENT_HUB

PG_BUS: web.AppKey[PgBus] = web.AppKey("pg_bus")


def listen_dsn(database_url: str) -> str | None:
    """The asyncpg DSN of a PostgreSQL URL (``postgresql+asyncpg://`` too); None
    for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def new_server_id() -> str:
    return os.environ.get("CALLCENTER_SERVER_ID") or \
        f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def application_name(server_id: str) -> str:
    return f"callcenter-bus {server_id}"[:63]


def setup_cluster(app: web.Application) -> None:
    """Call from ``create_app`` after ``setup_screenpop`` and before the AMI links."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        dsn = listen_dsn(app[SETTINGS].database_url)
        if dsn is None:
            yield
            return
        server_id = new_server_id()

        async def connect(dsn: str) -> Any:
            return await asyncpg.connect(dsn, timeout=5, server_settings={
                "application_name": application_name(server_id)})

        bus = PgBus(dsn, app[BUS], server_id=server_id, connect=connect,
                    retry_base_s=float(os.environ.get("CALLCENTER_BUS_RETRY_S") or 0.2))
        hub = app.get(AGENT_HUB)
        if hub is not None:
            hub.join_cluster(bus.server_id, AgentStateStore(app[SESSIONMAKER]))
            bus.on_connected(hub.reread_shared)
        app[PG_BUS] = bus
        await bus.start()
        try:
            yield
        finally:
            await bus.stop()

    app.cleanup_ctx.append(ctx)
