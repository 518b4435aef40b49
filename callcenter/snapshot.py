"""A small table kept in memory and re-read in the background (staff, hotline numbers).

Hot paths (ringing a phone, answering a call) ask ``await snapshot.get()``: the
first time waits for the load; afterwards an expired copy is returned at once
while a background task re-reads it, so a call never waits for the database.
After ``invalidate()`` (someone changed the table) the next ``get`` waits for the
fresh copy. A failed re-read keeps the old copy and is logged."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from callcenter.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(self, load: Callable[[], Awaitable[T]], clock: Clock, *, ttl_s: float,
                 name: str = "snapshot") -> None:
        self._load = load
        self._clock = clock
        self._ttl = ttl_s
        self._name = name
        self._value: T | None = None
        self._loaded_at: float | None = None
        self._reloading: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        self._loaded_at = None

    async def get(self) -> T:
        now = self._clock.monotonic()
        if self._value is not None and self._loaded_at is not None:
            if now - self._loaded_at >= self._ttl and (
                    self._reloading is None or self._reloading.done()):
                # For every caller, not the one (call) whose read found it stale.
                self._reloading = asyncio.get_running_loop().create_task(
                    self._background(), context=contextvars.Context())
            return self._value
        return await self._refresh()

    async def _refresh(self) -> T:
        started = self._clock.monotonic()
        value = await self._load()
        self._value, self._loaded_at = value, started
        return value

    async def _background(self) -> None:
        try:
            await self._refresh()
        except Exception:
            log.warning("%s not re-read; the old copy stays", self._name, exc_info=True)

    async def close(self) -> None:
        """Let a re-read under way finish (shutdown: the engine is disposed next)."""
        if self._reloading is not None:
            await asyncio.gather(self._reloading, return_exceptions=True)
