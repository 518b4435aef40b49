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

A deadline that passes while the keeper cannot run is not the same as one that
passes while it watches. The keeper always wakes at its deadline; if it (or an
action asking ``confirm()``) finds the deadline more than ``stall_s`` behind
it, this process was not running then (a stalled event loop, a paused VM, a
swap storm), and one renewal decides before any call is dropped: the same
epoch back means the lease never ran out in the database, so no other server
can have driven the link and the sessions simply go on. Nothing is sent while
that renewal is out. A deadline met on time (renewals failing: the database is
gone or slow) ends ownership at once, as before.
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
                 monotonic: Callable[[], float] = time.monotonic,
                 stall_s: float = 0.2) -> None:
        self.store = store
        self.link = link
        self.me = me
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.safety_margin_s = safety_margin_s
        self.stall_s = stall_s
        self._on_change = on_change
        self._mono = monotonic
        self._deadline = 0.0
        self._owned = False  # what on_change was last told
        self.epoch = 0
        self.takeovers = 0
        self.failures = 0
        self.stalls = 0
        """Deadlines found passed while this process was not running (``confirm``)."""
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stray: set[asyncio.Future[Grant | None]] = set()
        self._confirming: asyncio.Future[bool] | None = None

    def owns(self) -> bool:
        """Whether this server may drive the link now (its own clock, no I/O)."""
        return self._mono() < self._deadline

    def _stalled(self) -> bool:
        """Still counted the owner although the deadline is well past: the keeper,
        which wakes at the deadline, did not run then."""
        return self._owned and self._mono() > self._deadline + self.stall_s

    async def confirm(self) -> bool:
        """Whether this server may drive the link, asked when ``owns()`` said no.
        After a stall, one renewal first (shared by every caller); else ``owns()``."""
        if self.owns():
            return True
        if self._confirming is None:
            if not self._stalled():
                return False
            self.stalls += 1
            log.warning("%s: this process did not run for %.1fs past its lease deadline: "
                        "checking the lease before dropping any call", self.link,
                        self._mono() - self._deadline)
            self._confirming = asyncio.ensure_future(self._reconfirm())
        return await asyncio.shield(self._confirming)

    async def _reconfirm(self) -> bool:
        try:
            await self.try_once()  # same epoch: nothing changes; else _settle drops
        finally:
            self._confirming = None
        return self.owns()

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
        ownership on time (the sessions are dropped then, not when the query fails).
        After a stall, or while ``confirm`` asks, the answer decides instead."""
        task = asyncio.ensure_future(self.store.take(self.link, self.me, self.ttl_s))
        try:
            while not task.done():
                watch = self._owned and self._confirming is None and not self._stalled()
                wake = min(give_up_at, self._deadline + 0.001) if watch else give_up_at
                await asyncio.wait({task}, timeout=max(wake - self._mono(), 0.0))
                if task.done():
                    break
                if watch and not self.owns() and not self._stalled():
                    await self._settle()
                if self._mono() >= give_up_at:
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
                if self._owned and not self.owns() and not await self.confirm():
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
