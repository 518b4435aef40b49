"""A server whose process stops running past its lease deadline (a stalled event
loop, a paused VM) checks the lease before it drops a call: the same epoch back
means nobody else can have driven the link. The lease here is an in-memory table
with the database's rule (renew while live, else a new epoch to whoever asks),
so the stall can be timed to the millisecond; the real PostgreSQL lease and a
keeper cut off from it are in ``test_lease.py``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from callcenter.ha.lease import Grant
from callcenter.ha.owner import LeaseKeeper
from tests.ha.pair import until

TTL, RENEW, MARGIN = 1.0, 0.2, 0.3  # the keeper's deadline: 0.7 s after a renewal starts


class MemoryLease:
    """One link's lease row, by this process's clock (the test's "database")."""

    def __init__(self) -> None:
        self.holder = ""
        self.epoch = 0
        self.expires = 0.0
        self.last_take = 0.0

    async def take(self, link: str, me: str, ttl_s: float) -> Grant | None:
        now = time.monotonic()
        live = self.expires >= now
        if live and self.holder != me:
            return None
        if not (live and self.holder == me):
            self.epoch += 1
        self.holder, self.expires, self.last_take = me, now + ttl_s, now
        at = datetime.now(UTC)
        return Grant(link, self.epoch, at, at)


async def _owner(lease: MemoryLease, changes: list[tuple[bool, int]]) -> LeaseKeeper:
    async def on_change(owned: bool, epoch: int) -> None:
        changes.append((owned, epoch))
    keeper = LeaseKeeper(lease, "hupan-pbx", "server-a", ttl_s=TTL,  # type: ignore[arg-type]
                         renew_s=RENEW, safety_margin_s=MARGIN, on_change=on_change,
                         stall_s=0.1)
    assert await keeper.try_once() and keeper.owns()
    keeper.start()
    await asyncio.sleep(0.5)  # a few renewals
    return keeper


def _stall_until(lease: MemoryLease, after_take: float) -> None:
    """Block the whole event loop until ``after_take`` after the last renewal."""
    time.sleep(max(lease.last_take + after_take - time.monotonic(), 0.0))


async def test_a_stall_shorter_than_the_lease_keeps_every_call() -> None:
    lease, changes = MemoryLease(), []
    keeper = await _owner(lease, changes)
    try:
        sender = asyncio.ensure_future(keeper.confirm())  # a session's action, due at wake
        _stall_until(lease, 0.9)  # past the keeper's deadline (0.7), inside the lease (1.0)
        assert not keeper.owns()
        assert await sender  # the action is sent, after one renewal
        await asyncio.sleep(0.3)
        assert keeper.owns() and keeper.stalls == 1
        assert changes == [(True, 1)]  # never dropped, same term
    finally:
        await keeper.stop(release=False)


async def test_a_stall_longer_than_the_lease_drops_the_calls_and_starts_a_new_term() -> None:
    lease, changes = MemoryLease(), []
    keeper = await _owner(lease, changes)
    try:
        _stall_until(lease, 1.3)  # the lease ran out: another server could have taken it
        await asyncio.sleep(0.3)
        assert keeper.owns() and keeper.epoch == 2
        assert changes == [(True, 1), (False, 1), (True, 2)]  # dropped, then adopted back
    finally:
        await keeper.stop(release=False)


async def test_a_deadline_met_on_time_ends_ownership_at_once() -> None:
    """Renewals that fail while the process runs: no confirmation, no delay."""
    lease, changes = MemoryLease(), []
    keeper = await _owner(lease, changes)
    hang = asyncio.Event()

    async def hanging(link: str, me: str, ttl_s: float) -> Grant | None:
        await hang.wait()
        return None
    lease.take = hanging  # type: ignore[method-assign]
    cut = time.monotonic()
    try:
        await until(lambda: not keeper.owns(), 2.0, "the keeper never stopped owning", 0.005)
        await asyncio.sleep(0.02)
        assert changes == [(True, 1), (False, 1)]
        assert not await keeper.confirm() and keeper.stalls == 0
        assert time.monotonic() - cut <= 0.7 + 0.05
    finally:
        hang.set()
        await keeper.stop(release=False)
