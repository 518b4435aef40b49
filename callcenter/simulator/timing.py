"""Time inside the stand-in: a clock the tests control.

Anything that lasts (a prompt playing, a phone ringing, a caller waiting)
goes through ``Clock.sleep``; ``ScaledClock(speed=50)`` makes the whole
PBX run fifty times faster than real time while the timestamps it reports
still move at scripted pace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from callcenter.clock import Clock, SystemClock
from callcenter.simulator.errors import StandInConfigError

__all__ = ["Clock", "ScaledClock", "SystemClock", "standin_task"]

T = TypeVar("T")


def standin_task(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``create_task`` for the stand-in's own work, named ``standin:…``: a test
    running the server and the stand-in on one event loop can tell the stand-in's
    tasks (Asterisk's side) from the server's."""
    task = asyncio.get_running_loop().create_task(coro)
    task.set_name(f"standin:{task.get_name()}")
    return task


class ScaledClock:
    """Simulated time runs ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise StandInConfigError("speed must be positive", field="speed", details={"value": speed})
        self.speed = speed
        self._t0 = time.monotonic()
        self._start = datetime.now(UTC)

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
