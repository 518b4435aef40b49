"""The lease of a link on real PostgreSQL: take, renew, expiry, fencing, release,
and a keeper that loses its database connection falling silent before the other
server can take the link."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import make_engine
from callcenter.ha.lease import LeaseStore
from callcenter.ha.owner import LeaseKeeper
from tests.ha.proxy import TcpProxy

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])


@pytest.fixture
async def store(engine: AsyncEngine) -> LeaseStore:
    s = LeaseStore(engine)
    await s.ensure(["hupan-pbx", "binjiang-pbx"])
    return s


async def test_the_first_taker_holds_the_lease_and_the_other_is_refused_until_it_runs_out(
        store: LeaseStore) -> None:
    a = await store.take("hupan-pbx", "server-a", 0.6)
    assert a is not None and a.epoch == 1
    assert await store.take("hupan-pbx", "server-b", 0.6) is None
    # renewing keeps the epoch (same term) and pushes the end by the database's clock
    renewed = await store.take("hupan-pbx", "server-a", 0.6)
    assert renewed is not None and renewed.epoch == 1 and renewed.expires_at > a.expires_at
    assert renewed.acquired_at == a.acquired_at
    # the other link is a lease of its own
    other = await store.take("binjiang-pbx", "server-b", 0.6)
    assert other is not None and other.epoch == 1
    await asyncio.sleep(0.8)
    b = await store.take("hupan-pbx", "server-b", 0.6)
    assert b is not None and b.epoch == 2  # a new term: the fencing number moved
    rows = {r.link: r for r in await store.read()}
    assert rows["hupan-pbx"].holder == "server-b" and rows["hupan-pbx"].live


async def test_a_holder_whose_lease_ran_out_gets_a_new_epoch_and_cannot_release_the_new_term(
        store: LeaseStore) -> None:
    a = await store.take("hupan-pbx", "server-a", 0.3)
    assert a is not None
    await asyncio.sleep(0.5)
    again = await store.take("hupan-pbx", "server-a", 0.3)
    assert again is not None and again.epoch == a.epoch + 1  # its old term is over
    # A release with the stale epoch changes nothing.
    assert not await store.release("hupan-pbx", "server-a", a.epoch)
    assert await store.take("hupan-pbx", "server-b", 5) is None
    assert await store.release("hupan-pbx", "server-a", again.epoch)
    b = await store.take("hupan-pbx", "server-b", 5)  # released: taken at once
    assert b is not None and b.epoch == again.epoch + 1


async def test_two_servers_racing_for_a_free_lease_never_both_get_it(
        store: LeaseStore, db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    try:
        stores = [LeaseStore(e) for e in engines]
        for _ in range(10):
            grants = await asyncio.gather(*(s.take("binjiang-pbx", f"s{i}", 0.2)
                                            for i, s in enumerate(stores)))
            assert sum(g is not None for g in grants) <= 1
            await asyncio.sleep(0.25)
        rows = {r.link: r for r in await store.read()}
        assert rows["binjiang-pbx"].epoch >= 1
    finally:
        for e in engines:
            await e.dispose()


@pytest.fixture
async def proxied_engine(db_url: str) -> AsyncIterator[tuple[AsyncEngine, TcpProxy]]:
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    engine = make_engine(url.set(port=port).render_as_string(hide_password=False))
    try:
        yield engine, proxy
    finally:
        await proxy.close()
        await engine.dispose()


async def test_a_keeper_cut_off_from_the_database_stops_owning_before_the_standby_takes_over(
        store: LeaseStore, proxied_engine: tuple[AsyncEngine, TcpProxy]) -> None:
    engine, proxy = proxied_engine
    changes: list[tuple[str, bool, float]] = []

    def record(name: str):  # type: ignore[no-untyped-def]
        async def on_change(owned: bool, epoch: int) -> None:
            changes.append((name, owned, time.monotonic()))
        return on_change

    a = LeaseKeeper(LeaseStore(engine), "hupan-pbx", "server-a", ttl_s=1.5, renew_s=0.3,
                    safety_margin_s=0.3, on_change=record("a"))
    b = LeaseKeeper(store, "hupan-pbx", "server-b", ttl_s=1.5, renew_s=0.3,
                    safety_margin_s=0.3, on_change=record("b"))
    assert await a.try_once() and a.owns()
    assert not await b.try_once() and not b.owns()
    a.start()
    b.start()
    try:
        await asyncio.sleep(1.0)
        assert a.owns() and not b.owns()  # renewed all along
        proxy.hang()
        cut_at = time.monotonic()
        async with asyncio.timeout(5):
            while not b.owns():
                await asyncio.sleep(0.01)
                # never two owners at once, by either server's own judgement
                assert not (a.owns() and b.owns())
        took_at = time.monotonic()
    finally:
        await a.stop(release=False)
        await b.stop()
    lost = next(t for n, owned, t in changes if n == "a" and not owned)
    gained = next(t for n, owned, t in changes if n == "b" and owned)
    assert lost < gained  # a fell silent first
    assert gained - lost >= 0.3 - 0.05  # by about the safety margin at least
    assert lost - cut_at <= 1.5  # a stopped within its TTL by its own clock
    assert took_at - cut_at <= 1.5 + 0.3 + 0.3  # TTL + one retry + the query
