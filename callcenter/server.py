"""Serve an application until interrupted (``callcenter run``, ``callcenter demo``).

aiohttp reads a request for as long as the client cares to send it, so slow
clients (one header line a minute) hold their connections, and their file
descriptors, forever: with ``ulimit -n 1024`` a thousand of them stop the
server from accepting anything, ``/healthz`` included, while asyncio logs
``Too many open files`` for every refused accept. ``serve`` therefore puts a
``ConnectionGuard`` between the listening socket and aiohttp:

* a request's head must arrive within ``[http] header_timeout_s`` of its first
  byte (or of the connection opening), its body within ``body_timeout_s`` of
  the head; an idle keep-alive connection closes after ``keepalive_timeout_s``
  (aiohttp's own timer). WebSockets are left to their own heartbeat;
* at most ``max_connections`` are open, never more than the open-file limit
  minus a headroom for the database, the AMI links and the voicemail spool.
  A connection beyond that closes the oldest one still waiting for its
  request, or itself when every connection is busy with a request, at once;
* out-of-descriptor errors are logged once per ``LOG_EVERY_S`` with a count.

The guard reads a few attributes of aiohttp's ``RequestHandler`` (whether a
request is being handled, its body complete, the connection upgraded); the
tests in ``tests/core/test_server_limits.py`` run a real server process to
catch a change of those in a new aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callcenter.appkeys import SETTINGS
from callcenter.heap import settle_heap
from callcenter.settings import HttpSettings

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE})


def accept_backlog(soft_limit: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts in
    one go before any of them can be turned away."""
    return max(8, min(128, soft_limit // 8))


def fd_headroom(soft_limit: int) -> int:
    """Descriptors kept free for everything that is not a client connection: the
    database, AMI, the spool, logs, and one accept batch."""
    return accept_backlog(soft_limit) + max(32, soft_limit // 16)


def _soft_nofile() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(wanted: int) -> int:
    """``wanted``, lowered below this process's open-file limit minus the headroom."""
    soft = _soft_nofile()
    return max(1, min(wanted, soft - fd_headroom(soft)))


class OutOfFilesLogFilter(logging.Filter):
    """Lets one "too many open files" record through per ``every_s``, with the
    number of those dropped since; other records pass untouched."""

    def __init__(self, every_s: float = LOG_EVERY_S,
                 now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self._now = now
        self._next_at = 0.0
        self.dropped = 0

    @staticmethod
    def _out_of_files(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and exc.errno in OUT_OF_FDS:
            return True
        return "Too many open files" in record.getMessage()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._out_of_files(record):
            return True
        now = self._now()
        if now < self._next_at:
            self.dropped += 1
            return False
        self._next_at = now + self.every_s
        if self.dropped:
            record.msg = f"{record.msg} ({self.dropped} more like this in the last " \
                         f"{self.every_s:g} s)"
            self.dropped = 0
        return True


_GUARDED_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.access")


@contextlib.contextmanager
def rate_limited_fd_errors(every_s: float = LOG_EVERY_S) -> Any:
    flt = OutOfFilesLogFilter(every_s)
    loggers = [logging.getLogger(name) for name in _GUARDED_LOGGERS]
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield flt
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


class _Guarded(asyncio.Protocol):
    """One client connection: aiohttp's protocol, watched by the guard."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.rejected = False
        self.head_since: float | None = None
        self.body_since: float | None = None
        self._body_of: object = None

    # -- what the connection is doing (aiohttp's RequestHandler, read only)
    def upgraded(self) -> bool:
        return bool(getattr(self.inner, "_upgraded", False)) or \
            getattr(self.inner, "_payload_parser", None) is not None

    def busy(self) -> bool:
        return bool(getattr(self.inner, "_request_in_progress", False)) or \
            bool(getattr(self.inner, "_messages", ()))

    def waiting(self) -> bool:
        return not self.busy() and not self.upgraded()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.guard.admit(self):
            self.rejected = True
            transport.abort()
            return
        self.head_since = self.guard.now()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        before = getattr(self.inner, "_request_count", 0)
        self.inner.data_received(data)
        if getattr(self.inner, "_request_count", 0) != before:
            self.head_since = None  # a whole head arrived
        elif self.head_since is None and self.waiting():
            self.head_since = self.guard.now()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if not self.rejected:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- the guard's verdict
    def overdue(self, now: float, http: HttpSettings) -> str | None:
        if self.upgraded():
            return None
        if self.busy():
            self.head_since = None
            request = getattr(self.inner, "_current_request", None)
            content = getattr(request, "content", None)
            if request is None or content is None or content.is_eof():
                self.body_since = None
                return None
            if self._body_of is not request:
                self._body_of, self.body_since = request, now
            elif self.body_since is not None and now - self.body_since > http.body_timeout_s:
                return "body"
            return None
        if self.head_since is not None and now - self.head_since > http.header_timeout_s:
            return "header"
        return None

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class ConnectionGuard:
    """Wraps aiohttp's protocol factory: limits, timeouts (see the module's text)."""

    def __init__(self, factory: Callable[[], Any], http: HttpSettings, *,
                 max_connections: int | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self.http = http
        self.max_connections = max_connections or connection_limit(http.max_connections)
        self.now = now
        self._live: dict[_Guarded, None] = {}  # oldest first
        self.dropped = {"header": 0, "body": 0, "evicted": 0, "refused": 0}
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> _Guarded:
        return _Guarded(self, self._factory())

    @property
    def open_connections(self) -> int:
        return len(self._live)

    def admit(self, conn: _Guarded) -> bool:
        if len(self._live) >= self.max_connections:
            oldest = next((c for c in self._live if c.waiting()), None)
            if oldest is None:
                self.dropped["refused"] += 1
                return False
            self.dropped["evicted"] += 1
            self._live.pop(oldest, None)
            oldest.drop()
        self._live[conn] = None
        return True

    def forget(self, conn: _Guarded) -> None:
        self._live.pop(conn, None)

    def sweep(self) -> int:
        now = self.now()
        late = [(c, why) for c in list(self._live) if (why := c.overdue(now, self.http))]
        for conn, why in late:
            self.dropped[why] += 1
            self._live.pop(conn, None)
            conn.drop()
        return len(late)

    async def _watch(self) -> None:
        every = max(0.1, min(self.http.header_timeout_s, self.http.body_timeout_s) / 4)
        while True:
            await asyncio.sleep(every)
            self.sweep()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(),
                                                                name="http-connection-guard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose connections pass through a ``ConnectionGuard``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 guard_for: Callable[[Callable[[], Any]], ConnectionGuard]) -> None:
        super().__init__(runner, host, port, backlog=accept_backlog(_soft_nofile()))
        self._guard_for = guard_for
        self.guard: ConnectionGuard | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self.guard = self._guard_for(server)
        self._server = await asyncio.get_running_loop().create_server(
            self.guard, self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        self.guard.start()

    async def stop(self) -> None:
        if self.guard is not None:
            await self.guard.stop()
        await super().stop()


def make_runner(app: web.Application, http: HttpSettings) -> web.AppRunner:
    return web.AppRunner(app, access_log=None, handle_signals=False,
                         keepalive_timeout=http.keepalive_timeout_s)


async def serve(app: web.Application, host: str, port: int, *,
                on_started: Callable[[int], Awaitable[None]] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Start ``app`` on host:port and wait for SIGINT/SIGTERM (or ``stop``)."""
    http = app[SETTINGS].http if SETTINGS in app else HttpSettings()
    with rate_limited_fd_errors():
        runner = make_runner(app, http)
        await runner.setup()
        site = GuardedSite(runner, host, port, lambda factory: ConnectionGuard(factory, http))
        await site.start()
        bound = port
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                bound = int(addr[1])
                break
        assert site.guard is not None
        log.info("serving on %s:%d, at most %d connections", host, bound,
                 site.guard.max_connections)
        log.debug("%d objects frozen after start-up", settle_heap())
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            if on_started is not None:
                await on_started(bound)
            await stop.wait()
        finally:
            log.info("shutting down")
            await runner.cleanup()
