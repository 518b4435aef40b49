"""The bus between servers: PostgreSQL ``LISTEN`` / ``NOTIFY`` on one channel.

Both servers are connected to the same Asterisk, so each derives the ``call.*``
events from AMI itself; forwarding those would show every call twice. What a
server learns on its own is forwarded: the IVR path of the calls it ran
(``call.ivr_choice``), agents' states and presence (``agent.state``), tickets and
incidents (``FORWARDED``). Received events are published on the local bus with
``origin`` set to their server's id (``EventBus`` gives them only to handlers
that asked for remote events), never forwarded again, and a server skips its own.

One dedicated asyncpg connection LISTENs and sends, reconnecting with backoff
(``retry_base_s`` doubling up to ``retry_cap_s``) and checked every
``keepalive_s`` by a ``SELECT 1`` (a connection killed with
``pg_terminate_backend`` or a dead network is noticed then at the latest).
Events to send wait in order while it is down and go out after the reconnect.
What other servers sent meanwhile is lost to the bus: after every (re)connect,
once LISTEN is in place, the ``on_connected`` hooks run so each consumer that
keeps state re-reads it from the database instead of trusting the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from callcenter.bus import DomainEvent, EventBus
from callcenter.cluster.codec import BadPayload, decode, encode

log = logging.getLogger(__name__)

CHANNEL = "callcenter_bus"
FORWARDED = frozenset({
    "call.ivr_choice",  # only the server that ran the IVR knows the path
    "agent.state",  # 就绪 / 小休 / 话后 and signed-in, set on either server
    "ticket.created", "ticket.changed",
    "incident.opened", "incident.acknowledged", "incident.resolved",
    "holidays.changed",  # an admin's edit: the other server re-reads the holiday file
    "callback.changed",  # the worklist changed (no number in it): lists refresh
})
"""Events a server originates itself. ``incident.requested`` is not among them: each
server's paging would open the incident again."""

Connect = Callable[[str], Awaitable[Any]]
Hook = Callable[[], Awaitable[None]]


async def _connect(dsn: str) -> Any:
    return await asyncpg.connect(dsn, timeout=5)


class PgBus:
    def __init__(self, dsn: str, bus: EventBus, *, server_id: str,
                 names: frozenset[str] = FORWARDED, channel: str = CHANNEL,
                 connect: Connect = _connect, retry_base_s: float = 0.2,
                 retry_cap_s: float = 10.0, keepalive_s: float = 5.0,
                 max_pending: int = 10_000) -> None:
        self._dsn = dsn
        self._bus = bus
        self.server_id = server_id
        self._names = names
        self._channel = channel
        self._connect = connect
        self._retry_base_s, self._retry_cap_s = retry_base_s, retry_cap_s
        self._keepalive_s = keepalive_s
        self._pending: deque[str] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._hooks: list[Hook] = []
        self._task: asyncio.Task[None] | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._conn: Any = None
        self.connected = asyncio.Event()
        self.connects = 0
        """(Re)connects so far (tests, /healthz)."""
        self.resynced = 0
        """Completed rounds of ``on_connected`` hooks."""
        self.sent = 0
        self.received = 0

    def on_connected(self, hook: Hook) -> None:
        """Run ``hook`` after every (re)connect, once LISTEN is in place."""
        self._hooks.append(hook)

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the LISTEN connection (tests terminate it)."""
        conn = self._conn
        return int(conn.get_server_pid()) if conn is not None and not conn.is_closed() else None

    async def start(self) -> None:
        self._unsubscribe = self._bus.subscribe("*", self._forward)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [t for t in (self._task, *self._hook_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    # ------------------------------------------------------------------ sending

    async def _forward(self, event: DomainEvent) -> None:
        # No await before the append: events go out in the order they were published.
        if event.origin or event.name not in self._names:
            return
        if len(self._pending) == self._pending.maxlen:
            log.warning("bus: %d events waiting for the database; the oldest is dropped",
                        len(self._pending))
        self._pending.append(encode(event, self.server_id))
        self._wake.set()

    async def _pump(self, conn: Any, lost: asyncio.Event) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self._keepalive_s):
                        await self._wake.wait()
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=self._keepalive_s)
                    continue
            if lost.is_set() or conn.is_closed():
                raise ConnectionError("the LISTEN connection closed")
            if not self._pending:
                continue
            payload = self._pending[0]
            await conn.execute("SELECT pg_notify($1, $2)", self._channel, payload,
                               timeout=self._keepalive_s)
            self._pending.popleft()
            self.sent += 1

    # ------------------------------------------------------------------ receiving

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = decode(payload)
        except BadPayload as exc:
            log.warning("bus: ignored a payload on %s: %s", self._channel, exc)
            return
        if event.origin == self.server_id:
            return
        self.received += 1
        self._bus.publish(event)

    # ------------------------------------------------------------------ connection

    async def _run(self) -> None:
        delay = self._retry_base_s
        while True:
            try:
                conn = await self._connect(self._dsn)
            except Exception as exc:  # keep trying, whatever the failure
                log.warning("bus: cannot connect to the database (%s); again in %.1f s",
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_cap_s)
                continue
            lost = asyncio.Event()

            def closed(_conn: Any, lost: asyncio.Event = lost) -> None:
                lost.set()
                self._wake.set()

            conn.add_termination_listener(closed)
            self._conn = conn
            try:
                await conn.add_listener(self._channel, self._on_notify)
                self.connects += 1
                if self.connects > 1:
                    log.warning("bus: LISTEN connection back (reconnect %d); re-reading "
                                "shared state", self.connects - 1)
                delay = self._retry_base_s
                self.connected.set()
                self._spawn_hooks()
                await self._pump(conn, lost)
            except Exception as exc:  # the bus outlives any connection error
                # Not only OSError/PostgresError: a connection killed mid-query can also
                # leave asyncpg's protocol in a state it reports as InternalClientError
                # ("cannot switch to state ..."). Whatever it is, this connection is done.
                log.warning("bus: LISTEN connection lost (%r); reconnecting in %.1f s",
                            exc, delay)
            finally:
                self.connected.clear()
                self._conn = None
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_cap_s)

    def _spawn_hooks(self) -> None:
        task = asyncio.get_running_loop().create_task(self._run_hooks())
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    async def _run_hooks(self) -> None:
        for hook in list(self._hooks):
            try:
                await hook()
            except Exception:
                log.exception("bus: re-reading after the (re)connect failed in %r", hook)
        self.resynced += 1
