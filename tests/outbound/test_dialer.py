"""The dialer's promises against the stand-in: never over the PBX's limit, each job
dialled once by two servers racing for it, and a pause that stops new calls within
a second."""

from __future__ import annotations

import asyncio
import time

import pytest

from callcenter.outbound.dialer import Verdicts
from callcenter.outbound.models import OutboundHold
from callcenter.simulator import HangUp, Phone, Press, Wait
from tests.ha.pair import until
from tests.outbound.world import Outbound, make_dialer, outbound, peak_calls
from tests.ticketing.workorder_world import world

__all__ = ["outbound", "world"]


def numbers(n: int) -> list[str]:
    return [f"1390000{i:04d}" for i in range(n)]


async def _surveys(o: Outbound, n: int, talk_s: float = 4.0) -> list[str]:
    nums = numbers(n)
    for num in nums:
        o.standin.add_phone(Phone(num, answer_after=1, script=[Wait(talk_s), Press("5"),
                                                               Wait(2), HangUp()]))
        await o.resolved_ticket(number=num)
    await o.w.clock.advance(2 * 3600)
    return nums


async def test_the_limit_of_concurrent_calls_holds(outbound: Outbound) -> None:
    o = outbound
    o.dialer = make_dialer(o.w, o.link, o.survey._verdicts, max_calls=3)
    await _surveys(o, 8)
    for _ in range(10):
        await o.dialer.tick()  # every turn starts what the limit allows, no more
        await asyncio.sleep(0.1)
    await o.dialer.drain()
    while any(j.state != "done" for j in await o.jobs()):
        await o.dialer.tick()
        await o.dialer.drain()
    assert peak_calls(o.standin.events) == 3  # reached, never passed
    assert len(o.dials()) == 8


@pytest.mark.parametrize("db_backend", ["postgresql"])
async def test_two_servers_racing_dial_each_owner_once(outbound: Outbound) -> None:
    o = outbound
    nums = await _surveys(o, 12, talk_s=1.0)
    verdicts = o.survey._verdicts
    assert isinstance(verdicts, Verdicts)
    a = make_dialer(o.w, o.link, verdicts, max_calls=30)
    b = make_dialer(o.w, o.link, verdicts, max_calls=30)
    await asyncio.gather(a.tick(), b.tick())
    await asyncio.gather(a.drain(), b.drain())
    jobs = await o.jobs()
    assert [j.state for j in jobs] == ["done"] * 12
    dialled = [d.split("@")[0].removeprefix("Local/") for d in o.dials()]
    assert sorted(dialled) == sorted(nums)  # each owner once, nobody twice
    servers = set()
    for j in jobs:
        [attempt] = await o.attempts(j.id)
        servers.add(attempt.server)
    assert servers <= {a.server_id, b.server_id}


async def test_a_pause_stops_new_calls_within_a_second(outbound: Outbound) -> None:
    o = outbound
    o.dialer = make_dialer(o.w, o.link, o.survey._verdicts, max_calls=30, pace_s=0.3)
    await _surveys(o, 10)
    await o.dialer.start()
    try:
        await until(lambda: len(o.dials()) >= 2, 10, "the campaign never started")
        async with o.w.sm() as s:
            s.add(OutboundHold(kind="survey", held_by="赵主管"))
            await s.commit()
        paused_at = time.monotonic()
        await asyncio.sleep(1.0)
        settled = len(o.dials())  # what started within the second after the pause
        await asyncio.sleep(2.0)
        assert len(o.dials()) == settled, "a call started more than a second after the pause"
        assert time.monotonic() - paused_at >= 3.0
        queued = [j for j in await o.jobs() if j.state == "queued"]
        assert queued, "the jobs not yet called wait for the resume"
    finally:
        await o.dialer.stop()


async def test_a_job_left_dialing_by_a_dead_server_is_retried_only_once_its_call_is_surely_over(
        outbound: Outbound) -> None:
    """The server that placed a call died before writing its outcome. While the call
    may still be ringing or talking, nobody touches the job; after ring + script +
    a minute it counts as lost (结果未知) and is called again, per the rules."""
    from datetime import timedelta

    from sqlalchemy import update

    from callcenter.outbound.models import OutboundAttempt, OutboundJob

    o = outbound
    [fresh, stale] = await _surveys(o, 2)
    now = o.w.clock.now()
    jobs = await o.jobs()
    async with o.w.sm() as s:
        for job, age in ((jobs[0], 60), (jobs[1], o.dialer.config.stale_s + 5)):
            await s.execute(update(OutboundJob).where(OutboundJob.id == job.id).values(
                state="dialing", claimed_by="dead-server", attempts=1, link="standin",
                claimed_at=now - timedelta(seconds=age)))
            s.add(OutboundAttempt(job_id=job.id, number=job.number, link="standin",
                                  server="dead-server",
                                  started_at=now - timedelta(seconds=age)))
        await s.commit()
    assert await o.run() == 0  # neither is dialled now
    by_number = {j.number: j for j in await o.jobs()}
    assert by_number[fresh].state == "dialing"  # its call may still be up
    assert (by_number[stale].state, by_number[stale].outcome) == ("queued", "lost")
    [lost] = await o.attempts(by_number[stale].id)
    assert lost.outcome == "lost" and "服务器中断" in lost.detail
    assert await o.run(hours=0.6) == 1  # the lost rule's wait, then once more
    assert [d.split("@")[0].removeprefix("Local/") for d in o.dials()] == [stale]
    assert (await o.jobs())[1].state == "done"
