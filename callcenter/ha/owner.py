"""``LeaseKeeper``: one task per Asterisk link that takes and keeps its lease.

Every ``renew_s`` it runs the lease's single ``UPDATE`` (``LeaseStore.take``),
which renews the lease of its holder or gives an expired one to whoever asks.
The keeper considers this server the link's owner only until

    (start of the last successful renewal) + ttl - safety_margin

by its own monotonic clock. The database set the lease's end at its ``now()``
(later than that start) + ttl, so the server stops sending at least
``safety_margin_s`` before any other server can take the link: a server that
loses its database connection falls silent by itself, with no word from anyone.
``owns()`` reads that clock at each call, so the AMI link refuses an action the
instant the time is up even if this task is stuck.

``on_change(owned, epoch)`` is awaited when the server becomes the owner (a new
epoch: adopt the calls waiting in AsyncAGI, beat, re-read) and when it stops
being one (drop the AsyncAGI sessions at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from callcenter.ha.lease import Grant, LeaseStore

log = logging.getLogger(__name__)

OwnerChange = Callable[[bool, int], Awaitable[None]]


class LeaseKeeper:
    def __init__(self, store: LeaseStore, link: str, me: str, *, ttl_s: float,
                 renew_s: float, safety_margin_s: float,
                 on_change: OwnerChange | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.link = link
        self.me = me
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.safety_margin_s = safety_margin_s
        self._on_change = on_change
        self._mono = monotonic
        self._deadline = 0.0
        self._owned = False  # what on_change was last told
        self.epoch = 0
        self.takeovers = 0
        self.failures = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stray: set[asyncio.Future[Grant | None]] = set()

    def owns(self) -> bool:
        """Whether this server may drive the link now (its own clock, no I/O)."""
        return self._mono() < self._deadline

    async def try_once(self) -> bool:
        """One take-or-renew; True if the lease is ours now."""
        started = self._mono()
        try:
            grant = await self._take(started + self.renew_s)
        except Exception as exc:  # the database is gone or slow: keep the old deadline
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:200] if str(exc) \
                else type(exc).__name__
            log.warning("%s: lease not renewed: %s", self.link, self.last_error)
            await self._settle()
            return False
        if grant is None:
            self._deadline = 0.0  # another server holds it live
            await self._settle()
            return False
        self.last_error = None
        new_epoch = grant.epoch != self.epoch
        if new_epoch and self._owned:
            # our lease ran out and we took it again: a new term, start over
            await self._notify(False)
        self.epoch = grant.epoch
        self._deadline = started + self.ttl_s - self.safety_margin_s
        await self._settle()
        return True

    async def _take(self, give_up_at: float) -> Grant | None:
        """``store.take`` with a timeout; while it hangs, the deadline still ends
        ownership on time (the sessions are dropped then, not when the query fails)."""
        task = asyncio.ensure_future(self.store.take(self.link, self.me, self.ttl_s))
        try:
            while not task.done():
                wake = give_up_at
                if self._owned:
                    wake = min(wake, self._deadline + 0.001)
                await asyncio.wait({task}, timeout=max(wake - self._mono(), 0.0))
                if self._owned and not self.owns():
                    await self._settle()
                if not task.done() and self._mono() >= give_up_at:
                    raise TimeoutError(f"no answer within {self.renew_s:g}s")
            return task.result()
        finally:
            if not task.done():
                # not awaited: cancelling a query on a dead connection can hang in the
                # driver's clean-up, and this loop must go on keeping time
                task.cancel()
                self._stray.add(task)
                task.add_done_callback(self._stray.discard)

    async def _settle(self) -> None:
        owned = self.owns()
        if owned != self._owned:
            if owned:
                self.takeovers += 1
                log.warning("%s: this server now drives the link (lease epoch %d)",
                            self.link, self.epoch)
            else:
                log.warning("%s: lease lost or not renewed in time: this server stops "
                            "sending on the link (standby)", self.link)
            await self._notify(owned)

    async def _notify(self, owned: bool) -> None:
        self._owned = owned
        if self._on_change is not None:
            try:
                await self._on_change(owned, self.epoch)
            except Exception:
                log.exception("%s: owner change handler failed", self.link)

    async def run(self) -> None:
        while True:
            next_try = self._mono() + self.renew_s
            await self.try_once()
            # wake at the deadline too: the sessions are dropped the moment it passes
            while (left := next_try - self._mono()) > 0:
                if self._owned:
                    left = min(left, max(self._deadline - self._mono(), 0.0) + 0.001)
                await asyncio.sleep(left)
                if self._owned and not self.owns():
                    await self._settle()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"ha-lease-{self.link}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop renewing; with ``release`` end the lease in the database now so the
        other server takes the link at its next try (a clean stop)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        was_owner = self.owns()
        self._deadline = 0.0
        if self._owned:
            await self._notify(False)
        if release and was_owner:
            try:
                async with asyncio.timeout(2.0):
                    await self.store.release(self.link, self.me, self.epoch)
            except Exception as exc:
                log.warning("%s: lease not released (it runs out by itself): %s",
                            self.link, exc)
