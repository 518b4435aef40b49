"""Issue 14, one owner per Asterisk link: two real server processes on one
PostgreSQL and one Asterisk stand-in running the hotline over AsyncAGI (both
servers logged in, both see every ``AsyncAGIStart``).

Only the lease holder drives each call's AGI; kill -9 of the holder during calls
gives the link to the standby, which adopts the callers waiting in AsyncAGI within
5 s and takes them to the queue; a server whose database connection is cut (a
proxy in the test, black-holed) stops sending on the link by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from callcenter.demo import free_port
from callcenter.simulator import AsteriskStandIn, Caller, Press, Wait
from tests.cluster.serve_node import settings_for
from tests.ha.pair import AgiSpy, Node, lease_holder, reached, until
from tests.ha.proxy import TcpProxy
from tests.integration.demo_db import seed_demo_db

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])
LINK = "standin"


def caller(i: int) -> Caller:
    # presses 1 every 0.8 s: 报修, then 水电, whichever menu is playing (the menu
    # starts again from its greeting after a takeover)
    return Caller(number=f"1381234{i:04d}", name="王建国", did="4008001234",
                  script=[s for _ in range(20) for s in (Wait(0.8), Press("1"))] + [Wait(60)])


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[AsteriskStandIn, AgiSpy, int]]:
    await seed_demo_db(db_url, datetime.now(UTC).date())
    ami_port = free_port()
    settings = settings_for(db_url, tmp_path / "a", 0, ami_port, free_port())
    standin = AsteriskStandIn.from_settings(settings, ivr_transport="asyncagi",
                                            prompt_seconds=0.05)
    spy = AgiSpy().install()
    await standin.start()
    try:
        yield standin, spy, ami_port
    finally:
        spy.restore()
        await standin.stop()


async def test_one_server_drives_each_call_and_the_standby_adopts_them_after_a_kill_9(
        world: tuple[AsteriskStandIn, AgiSpy, int], db_url: str, tmp_path: Path) -> None:
    standin, spy, ami_port = world
    a = Node("server-a", db_url, tmp_path / "a", ami_port, tmp_path / "a.log")
    b = Node("server-b", db_url, tmp_path / "b", ami_port, tmp_path / "b.log")
    try:
        await a.start()
        await until(lambda: lease_holder(db_url, LINK), 10, "nobody took the lease")
        await b.start()
        holder, epoch = await lease_holder(db_url, LINK)
        assert holder == "server-a"
        owner, standby = a, b
        calls = [standin.place_call(caller(i)) for i in range(6)]
        names = [c.app.name for c in calls]
        # every call's menu is driven, by one AMI session only
        await until(lambda: all(spy.sessions_of(n) for n in names), 20, "a call was not driven")
        await asyncio.sleep(0.5)
        assert all(len(spy.sessions_of(n)) == 1 for n in names)
        assert len({s for n in names for s in spy.sessions_of(n)}) == 1
        first_session = next(iter(spy.sessions_of(names[0])))
        owner.kill9()
        killed_at = time.monotonic()
        # the standby drives AGI again: a command from another session
        await until(lambda: any(t > killed_at and s != first_session for t, s, _, _ in spy.sent),
                    8, "the standby never drove AGI after the kill")
        resumed = min(t for t, s, _, _ in spy.sent if t > killed_at and s != first_session)
        assert resumed - killed_at <= 5.0
        await until(lambda: all(reached(standin, n) for n in names), 40,
                    lambda: f"calls not in the queue or the mailbox: "
                            f"{[n for n in names if not reached(standin, n)]}")
        assert spy.duplicates() == 0
        new_holder, new_epoch = await lease_holder(db_url, LINK)
        assert new_holder == standby.name and new_epoch > epoch
        guard = standin.pbx.hotline_guard
        assert guard is not None and guard.fallbacks == []  # nobody fell to the fallback
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_a_server_cut_off_from_the_database_stops_sending_on_the_link(
        world: tuple[AsteriskStandIn, AgiSpy, int], db_url: str, tmp_path: Path) -> None:
    standin, spy, ami_port = world
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    via_proxy = url.set(port=port).render_as_string(hide_password=False)
    a = Node("server-a", via_proxy, tmp_path / "a", ami_port, tmp_path / "a.log")
    b = Node("server-b", db_url, tmp_path / "b", ami_port, tmp_path / "b.log")
    try:
        await a.start()
        await until(lambda: lease_holder(db_url, LINK), 10, "nobody took the lease")
        await b.start()
        assert (await lease_holder(db_url, LINK))[0] == "server-a"
        call = standin.place_call(Caller(number="13812340001", name="王建国", did="4008001234",
                                         script=[Wait(120)]))  # listens to the menu, no key
        await until(lambda: spy.sessions_of(call.app.name), 20, "the call was not driven")
        a_session = next(iter(spy.sessions_of(call.app.name)))
        proxy.hang()
        cut_at = time.monotonic()
        # A falls silent by its own clock, within the lease's TTL (3 s) minus the margin,
        # while its AMI link to Asterisk is still up; B takes over after the TTL.
        await until(lambda: any(t > cut_at and s != a_session for t, s, c, _ in spy.sent
                                if c == call.app.name), 10, "B never took the call over")
        taken = min(t for t, s, c, _ in spy.sent if t > cut_at and s != a_session)
        a_last = max(t for t, s, _, _ in spy.sent if s == a_session)
        assert a_last < taken  # A's last AGI command came before B's first
        assert a_last - cut_at <= 3.0 - 0.5 + 0.2  # A stopped within TTL - safety margin
        await asyncio.sleep(2.0)
        assert max(t for t, s, _, _ in spy.sent if s == a_session) == a_last  # and stays quiet
        assert (await lease_holder(db_url, LINK))[0] == "server-b"
        assert a.proc is not None and a.proc.returncode is None  # A is alive, only cut off
    finally:
        await asyncio.gather(a.stop(), b.stop())
        await proxy.close()
