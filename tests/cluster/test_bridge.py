"""The bus between servers on a real PostgreSQL: NOTIFY out, LISTEN in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from callcenter.bus import DomainEvent, EventBus
from callcenter.cluster.bridge import PgBus
from callcenter.cluster.codec import MAX_PAYLOAD, REREAD, encode
from callcenter.cluster.setup import listen_dsn

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])


class Node:
    """One server's bus and its bridge; ``heard``: remote events its subscriber got."""

    def __init__(self, dsn: str, name: str) -> None:
        self.bus = EventBus()
        self.bridge = PgBus(dsn, self.bus, server_id=name, retry_base_s=0.05, keepalive_s=1.0)
        self.heard: asyncio.Queue[DomainEvent] = asyncio.Queue()
        self.local_only: list[DomainEvent] = []
        self.resyncs: asyncio.Queue[int] = asyncio.Queue()

        async def remote(event: DomainEvent) -> None:
            if event.origin:
                self.heard.put_nowait(event)

        async def local(event: DomainEvent) -> None:
            self.local_only.append(event)

        async def hook() -> None:
            self.resyncs.put_nowait(self.bridge.connects)

        self.bus.subscribe("*", remote, remote=True)
        self.bus.subscribe("*", local)
        self.bridge.on_connected(hook)

    async def next(self, within_s: float = 10.0) -> DomainEvent:
        return await asyncio.wait_for(self.heard.get(), within_s)


@pytest.fixture
async def nodes(db_url: str) -> AsyncIterator[tuple[Node, Node]]:
    dsn = listen_dsn(db_url)
    assert dsn is not None
    a, b = Node(dsn, "server-a"), Node(dsn, "server-b")
    await a.bridge.start()
    await b.bridge.start()
    # Both LISTEN (their hooks ran after it was in place).
    assert await asyncio.wait_for(a.resyncs.get(), 10) == 1
    assert await asyncio.wait_for(b.resyncs.get(), 10) == 1
    try:
        yield a, b
    finally:
        await a.bridge.stop()
        await b.bridge.stop()
        await a.bus.drain()
        await b.bus.drain()


async def _terminate(db_url: str, pid: int) -> None:
    conn = await asyncpg.connect(listen_dsn(db_url))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_ticket_created_on_one_server_is_heard_on_the_other_as_remote(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    at = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    a.bus.publish(DomainEvent("ticket.created", {"ticket_id": 7, "person_id": 3,
                                                 "summary": "厨房漏水", "created_at": at}, at=at))
    got = await b.next()
    assert got.name == "ticket.created" and got.origin == "server-a"
    assert got.data == {"ticket_id": 7, "person_id": 3, "summary": "厨房漏水", "created_at": at}
    assert got.at == at
    await b.bus.drain()
    # B's ordinary handlers (call log, paging, notices) never see it: nothing done twice.
    assert [e.name for e in b.local_only] == []
    # A does not hear its own event back.
    assert a.heard.empty() and a.bridge.received == 0


async def test_call_events_every_server_derives_from_ami_are_not_forwarded(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.bus.publish(DomainEvent("call.started", {"linkedid": "1.1"}))
    a.bus.publish(DomainEvent("incident.requested", {"ticket_id": 1}))
    a.bus.publish(DomainEvent("call.ivr_choice", {"linkedid": "1.1", "ivr_path": ["报修"]}))
    got = await b.next()
    # The first to arrive is the IVR step: the two before it never left A.
    assert (got.name, got.data["ivr_path"]) == ("call.ivr_choice", ["报修"])


async def test_events_arrive_in_the_order_they_were_published(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    for i in range(50):
        a.bus.publish(DomainEvent("agent.state", {"user_id": 1, "state": f"s{i}"}))
    got = [(await b.next()).data["state"] for _ in range(50)]
    assert got == [f"s{i}" for i in range(50)]


async def test_an_event_too_big_for_notify_goes_as_its_ids_to_be_re_read(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    path = [f"第{i}层菜单选项" for i in range(2000)]
    assert len(encode(DomainEvent("call.ivr_choice", {"ivr_path": path}), "x").encode()) \
        <= MAX_PAYLOAD
    a.bus.publish(DomainEvent("call.ivr_choice", {"linkedid": "9.9", "asterisk": "pbx1",
                                                  "ivr_path": path}))
    got = await b.next()
    assert got.data == {"linkedid": "9.9", "asterisk": "pbx1", REREAD: True}


async def test_after_its_listen_connection_is_killed_a_server_reconnects_and_re_reads(
        nodes: tuple[Node, Node], db_url: str) -> None:
    a, b = nodes
    pid = b.bridge.backend_pid
    assert pid is not None
    await _terminate(db_url, pid)
    # Reconnected, LISTEN again, and the re-read hook ran once more.
    assert await asyncio.wait_for(b.resyncs.get(), 15) == 2
    assert b.bridge.backend_pid not in (None, pid)
    a.bus.publish(DomainEvent("ticket.changed", {"ticket_id": 1, "state": "dispatched"}))
    assert (await b.next()).data["state"] == "dispatched"


async def test_what_a_server_publishes_while_its_connection_is_down_goes_out_after(
        nodes: tuple[Node, Node], db_url: str) -> None:
    a, b = nodes
    pid = a.bridge.backend_pid
    assert pid is not None
    await _terminate(db_url, pid)
    a.bus.publish(DomainEvent("incident.acknowledged", {"incident_id": 4}))
    got = await b.next(15)
    assert got.data == {"incident_id": 4} and got.origin == "server-a"
    assert a.bridge.connects == 2


class _FailsOnce:
    """A real connection whose first NOTIFY fails the way asyncpg does when a
    connection dies in the middle of a query (seen under load in CI)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    async def execute(self, *args: object, **kwargs: object) -> str:
        if not self.failed:
            self.failed = True
            raise asyncpg.InternalClientError(
                "cannot switch to state 11; another operation (2) is in progress")
        return await self._conn.execute(*args, **kwargs)


async def test_an_unexpected_client_error_on_send_is_a_lost_connection_not_a_dead_bus(
        db_url: str) -> None:
    dsn = listen_dsn(db_url)
    assert dsn is not None
    wrapped: list[_FailsOnce] = []

    async def connect(dsn: str) -> object:
        conn = await asyncpg.connect(dsn, timeout=5)
        if wrapped:  # the reconnect gets a plain connection
            return conn
        wrapped.append(_FailsOnce(conn))
        return wrapped[0]

    a = Node(dsn, "server-a")
    a.bridge = PgBus(dsn, a.bus, server_id="server-a", connect=connect, retry_base_s=0.05,
                     keepalive_s=1.0)
    b = Node(dsn, "server-b")
    await a.bridge.start()
    await b.bridge.start()
    try:
        await asyncio.wait_for(b.resyncs.get(), 10)
        await asyncio.wait_for(a.bridge.connected.wait(), 10)
        a.bus.publish(DomainEvent("incident.resolved", {"incident_id": 9}))
        got = await b.next(15)
        # The event that met the error was kept and went out on the new connection.
        assert got.data == {"incident_id": 9} and got.origin == "server-a"
        assert wrapped[0].failed and a.bridge.connects == 2
    finally:
        await a.bridge.stop()
        await b.bridge.stop()
