"""Time inside the stand-in: a clock the tests control.

Anything that lasts (a prompt playing, a phone ringing, a caller waiting)
goes through ``Clock.sleep``; ``ScaledClock(speed=50)`` makes the whole
PBX run fifty times faster than real time while the timestamps it reports
still move at scripted pace."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from callcenter.clock import Clock, SystemClock
from callcenter.simulator.errors import StandInConfigError

__all__ = ["Clock", "ScaledClock", "SystemClock"]


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
