"""``setup_ha(app, links, owned_gauge)``: one owner per Asterisk link.

On PostgreSQL a ``LeaseKeeper`` per ``[[asterisk]]`` link keeps its lease and
gates the link: while another server holds it, this one only listens (the
AMI link refuses every action but the read-only ones, AsyncAGI calls are left
to the owner). On SQLite there is no lease: the single server owns every link,
and the start says that high availability needs PostgreSQL (``/healthz`` too).

The server's id is the bus's (``callcenter.cluster``), so the two agree in
``/healthz`` and ``pg_stat_activity``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import Gauge

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import ENGINE, HEALTH_EXTRAS, SETTINGS
from callcenter.cluster.setup import PG_BUS, listen_dsn, new_server_id
from callcenter.ha.lease import LeaseStore
from callcenter.ha.owner import LeaseKeeper

log = logging.getLogger(__name__)

LEASE_KEEPERS: web.AppKey[dict[str, LeaseKeeper]] = web.AppKey("ha_lease_keepers")
SINGLE_SERVER_NOTE = ("SQLite: one server owns every Asterisk link; "
                      "high availability (two servers) needs PostgreSQL")


def setup_ha(app: web.Application, links: AmiLinks, owned: Gauge) -> None:
    """Call from ``create_app`` after ``setup_cluster`` and before ``setup_ami``:
    the leases are taken before the links log in, released after they stop."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if listen_dsn(settings.database_url) is None:
            log.warning("%s", SINGLE_SERVER_NOTE)
            for name in links.names():
                owned.labels(link=name).set(1)
            app[HEALTH_EXTRAS].append(_single_health(links))
            yield
            return
        bus = app.get(PG_BUS)
        me = bus.server_id if bus is not None else new_server_id()
        store = LeaseStore(app[ENGINE])
        await store.ensure(links.names())
        keepers: dict[str, LeaseKeeper] = {}
        for name in links.names():
            gauge = owned.labels(link=name)
            gauge.set(0)
            keeper = LeaseKeeper(store, name, me, ttl_s=settings.ha.lease_ttl_s,
                                 renew_s=settings.ha.renew_s,
                                 safety_margin_s=settings.ha.safety_margin_s,
                                 on_change=_on_change(links, name, gauge))
            links.set_owner_gate(name, keeper.owns, keeper.confirm)
            keepers[name] = keeper
        app[LEASE_KEEPERS] = keepers
        app[HEALTH_EXTRAS].append(_lease_health(store, keepers, me))
        for keeper in keepers.values():
            await keeper.try_once()  # owner or standby before the first login
            keeper.start()
        log.info("high availability on PostgreSQL as %s: owner of %s", me,
                 ", ".join(n for n, k in keepers.items() if k.owns()) or "no link (standby)")
        try:
            yield
        finally:
            for keeper in keepers.values():
                await keeper.stop(release=True)

    app.cleanup_ctx.append(ctx)


def _on_change(links: AmiLinks, name: str, gauge: Any) -> Any:
    async def changed(owned: bool, epoch: int) -> None:
        gauge.set(1 if owned else 0)
        await links.owner_changed(name, owned)
    return changed


def _single_health(links: AmiLinks) -> Any:
    async def section() -> dict[str, object]:
        return {"ha": {"mode": "single", "note": SINGLE_SERVER_NOTE,
                       "links": {n: {"owned": True} for n in links.names()}}}
    return section


def _lease_health(store: LeaseStore, keepers: dict[str, LeaseKeeper], me: str) -> Any:
    async def section() -> dict[str, object]:
        rows = {r.link: r for r in await store.read()}
        out: dict[str, object] = {}
        for name, keeper in keepers.items():
            row = rows.get(name)
            out[name] = {"owned": keeper.owns(), "holder": row.holder if row and row.live
                         else None, "epoch": row.epoch if row else 0,
                         "expires_at": row.expires_at.isoformat() if row else None,
                         "last_error": keeper.last_error}
        return {"ha": {"mode": "postgresql", "server": me, "links": out}}
    return section
