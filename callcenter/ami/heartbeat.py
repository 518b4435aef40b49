"""The server's heartbeat in Asterisk's AstDB: ``callcenter/alive`` = epoch seconds.

``AGI(agi:async)`` waits forever when no AMI client takes the channel, so the
printed hotline (``callcenter asterisk-config``) checks this key against
``${EPOCH}`` before it and sends the caller to the duty phone or voicemail when
the heartbeat is older than ``STALE_AFTER_INTERVALS`` intervals. Each link
writes it (``DBPut``) at every login and every ``interval_s`` while connected,
and deletes it (``DBDel``) on a clean shutdown, so a stopped server is noticed
at once and a killed one within three intervals.

Wall-clock seconds (``time.time``), not the app's clock: ``${EPOCH}`` is the
PBX host's clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from callcenter.ami.client import AmiLink
from callcenter.ami.errors import AmiError

log = logging.getLogger(__name__)

FAMILY = "callcenter"
KEY = "alive"
STALE_AFTER_INTERVALS = 3


def stale_after_s(interval_s: float) -> int:
    """How old a heartbeat may be before the hotline stops trusting it."""
    return int(round(STALE_AFTER_INTERVALS * interval_s))


def agi_wait_s(interval_s: float) -> int:
    """How long the printed hotline lets a call wait in ``AGI(agi:async)`` for a server
    (``Set(TIMEOUT(absolute)=...)``; then exten ``T``: the fallback). A heartbeat is
    trusted for ``stale_after_s``: a server killed just before the call leaves one that
    fresh, and a caller hears silence for at most this long (15 s at the default 5 s
    interval) before the duty phone or the voicemail; a server restarted within it
    adopts the call. The server lifts the timeout when it takes the call."""
    return stale_after_s(interval_s)


class Heartbeat:
    def __init__(self, link: AmiLink, interval_s: float, *,
                 epoch: Callable[[], float] = time.time,
                 enabled: Callable[[], bool] = lambda: True) -> None:
        """``enabled()``: whether this server takes calls now (an AGI handler is set)."""
        self.link = link
        self.interval_s = interval_s
        self._epoch = epoch
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self.beats = 0

    async def beat(self) -> bool:
        """One ``DBPut``; False (logged) when the link cannot take it now."""
        if not self._enabled() or not self.link.connected:
            return False
        try:
            await self.link.send_action(
                {"Action": "DBPut", "Family": FAMILY, "Key": KEY,
                 "Val": str(int(self._epoch()))},
                timeout_s=min(self.interval_s, self.link.config.action_timeout))
        except AmiError as exc:
            log.debug("%s: heartbeat not written: %s", self.link.name, exc)
            return False
        self.beats += 1
        return True

    async def on_connected(self, link: AmiLink) -> None:
        """An ``AmiLink.on_connected`` hook: beat at once after a login."""
        await self.beat()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"ami-heartbeat-{self.link.name}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.beat()

    async def stop(self) -> None:
        """Stop beating and delete the key, so calls go to the fallback at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.link.connected:
            try:
                await self.link.send_action({"Action": "DBDel", "Family": FAMILY, "Key": KEY},
                                            timeout_s=1.0)
            except AmiError as exc:
                log.debug("%s: heartbeat not cleared: %s", self.link.name, exc)
