"""Serve an application until interrupted (``callcenter run``, ``callcenter demo``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from callcenter.heap import settle_heap

log = logging.getLogger(__name__)


async def serve(app: web.Application, host: str, port: int, *,
                on_started: Callable[[int], Awaitable[None]] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Start ``app`` on host:port and wait for SIGINT/SIGTERM (or ``stop``)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            bound = int(addr[1])
            break
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
