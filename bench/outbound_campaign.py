"""A 10,000-owner 催缴 campaign against the Asterisk stand-in, 30 calls at a time.

The directory holds ``--owners`` owners in arrears (one room each, SQLite file or
``--db`` PostgreSQL); ``fees.build_campaign`` queues one reminder per owner; the
dialer (``callcenter.outbound.dialer``, the server's own) calls them through a real
AMI link into the stand-in, whose phones answer and listen (70 %), ring out (10 %),
are busy (8 %), are answering machines (AMD: MACHINE, 7 %), or unreachable (5 %).
The fee reminder runs over AsyncAGI for every answered call.

The dialer's clock is injected: it starts at 20:40 in Shanghai, so the campaign
runs twenty minutes, holds through the quiet hours (21:00–08:30) and goes on next
morning; each dialer turn moves it on by ``--step`` seconds. Measured:

- ``peak_calls``: most owner phones off the hook at once, from the stand-in's own
  channel events (target: never over ``--limit``, 30);
- ``quiet_hour_calls``: attempts started inside 21:00–08:30 (target 0);
- ``not_final``: jobs not in a final state at the end (target 0);
- ``answered_twice``: owners who answered and were called again (target 0), and
  ``concurrent_twice``: owners with two calls at once (target 0);
- ``calls_per_min``: started calls per minute of wall time while dialling, against
  the ideal of the limit (``limit × 60 / mean call seconds``), the baseline.

Prints one JSON line.
Usage: python bench/outbound_campaign.py [--owners 10000] [--limit 30] [--db URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher  # noqa: E402
from callcenter.ami.client import AmiLink  # noqa: E402
from callcenter.bus import EventBus  # noqa: E402
from callcenter.clock import ManualClock  # noqa: E402
from callcenter.db.engine import make_engine, make_sessionmaker, migrate  # noqa: E402
from callcenter.directory import models as dm  # noqa: E402
from callcenter.outbound.calling_hours import CallingHours  # noqa: E402
from callcenter.outbound.dialer import Dialer, DialerConfig, Verdicts  # noqa: E402
from callcenter.outbound.entry import OutboundCalls  # noqa: E402
from callcenter.outbound.fee_call import FeeCall  # noqa: E402
from callcenter.outbound.fees import FEE, FeeRules, build_campaign, still_wanted  # noqa: E402
from callcenter.outbound.models import FINAL, OutboundAttempt, OutboundJob  # noqa: E402
from callcenter.outbound.rules import ANSWERED  # noqa: E402
from callcenter.paging.ami_originator import AmiOriginator  # noqa: E402
from callcenter.simulator import AsteriskStandIn, HangUp, Phone, ScaledClock, Wait  # noqa: E402
from callcenter.simulator.scenario import Answer  # noqa: E402
from ivr.holidays import HolidayCalendar  # noqa: E402
from tests.ami.fakeami import FakeSettings  # noqa: E402
from tests.outbound.world import peak_calls  # noqa: E402

START = datetime(2026, 12, 1, 12, 40, tzinfo=UTC)  # 20:40 in Shanghai, a Tuesday


def number(i: int) -> str:
    return f"1370{i:07d}"


async def seed(sm: Any, owners: int) -> None:
    async with sm() as s:
        c = dm.Community(code="hupan", name="湖畔花园", hotline_numbers=[])
        s.add(c)
        await s.flush()
        b = dm.Building(community_id=c.id, name="3")
        s.add(b)
        await s.flush()
        u = dm.Unit(building_id=b.id, name="1")
        s.add(u)
        await s.flush()
        await s.execute(insert(dm.Room), [{"unit_id": u.id, "number": f"{i:05d}"}
                                          for i in range(owners)])
        rooms = list((await s.scalars(select(dm.Room.id).order_by(dm.Room.id))).all())
        await s.execute(insert(dm.Person), [{"name": f"业主{i}", "note": ""}
                                            for i in range(owners)])
        people = list((await s.scalars(select(dm.Person.id).order_by(dm.Person.id))).all())
        await s.execute(insert(dm.PersonPhone), [
            {"person_id": p, "number": "+86" + number(i), "raw": number(i), "kind": "mobile",
             "position": 0} for i, p in enumerate(people)])
        await s.execute(insert(dm.PersonRoom), [
            {"person_id": p, "room_id": r, "role": "owner"} for p, r in zip(people, rooms,
                                                                            strict=True)])
        await s.execute(insert(dm.FeeAccount), [
            {"room_id": r, "arrears": Decimal("120") + i % 900} for i, r in enumerate(rooms)])
        await s.commit()


def phones(owners: int, rng: random.Random) -> list[Phone]:
    out = []
    for i in range(owners):
        roll = rng.random()
        listen = [Wait(25), HangUp()]  # the whole reminder, then they hang up
        if roll < 0.70:
            out.append(Phone(number(i), answer_after=2, script=listen))
        elif roll < 0.80:
            out.append(Phone(number(i), behaviour=Answer.NO_ANSWER))
        elif roll < 0.88:
            out.append(Phone(number(i), behaviour=Answer.BUSY, answer_after=1))
        elif roll < 0.95:
            out.append(Phone(number(i), answer_after=2, script=listen, amd="MACHINE"))
        else:
            out.append(Phone(number(i), behaviour=Answer.UNREACHABLE))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
    url = args.db or f"sqlite:///{tmp / 'bench.sqlite3'}"
    engine = make_engine(url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    await seed(sm, args.owners)
    clock = ManualClock(START)
    hours = CallingHours(holidays=HolidayCalendar())
    async with sm() as s:
        built = await build_campaign(s, hours, community="hupan", rules=FeeRules(Decimal(100), 0),
                                     by="bench", now=clock.now())
    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp / "vm",
                              clock=ScaledClock(args.speed), prompt_seconds=0.4,
                              phones=phones(args.owners, random.Random(7)),
                              event_log_size=5_000_000)  # every event, for the peak count
    await standin.start()
    link = AmiLink(replace(FakeSettings(port=standin.ami_port), secret="ccsecret", action_timeout=10.0),
                   rng=random.Random(5), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(5)
    verdicts = Verdicts()
    fee = FeeCall(sm, verdicts, clock.now)
    calls = OutboundCalls({FEE: fee.handle})

    async def on_agi(chan: AsyncAgiChannel) -> None:
        await calls.handle(chan)

    dispatcher = AsyncAgiDispatcher(link, on_agi, command_timeout_s=30)
    dispatcher.attach()

    async def originate(community: str, channel: str, context: str, exten: str,
                        variables: Any, ring_s: float, caller_id: str) -> Any:
        return await AmiOriginator(link, caller_id=caller_id).originate(
            channel, context, exten, variables, ring_s, community=community)

    dialer = Dialer(sm, originate, clock, EventBus(), verdicts, hours=hours,
                    config=DialerConfig(max_calls=args.limit, pace_s=0.0, ring_s=30,
                                        trunk="Local/{number}@phones", batch=args.limit * 2,
                                        caller_id="4008001234"),
                    link_for=lambda c: "standin", still_wanted={FEE: still_wanted})
    call_s: list[float] = []
    real_call = dialer._call

    async def timed_call(job: OutboundJob) -> None:
        t0 = time.monotonic()
        try:
            await real_call(job)
        finally:
            call_s.append(time.monotonic() - t0)
    dialer._call = timed_call  # type: ignore[method-assign]
    started_wall = time.monotonic()
    dialling_s = 0.0
    turns = 0
    try:
        while True:
            async with sm() as s:
                left = await s.scalar(select(func.count()).select_from(OutboundJob).where(
                    OutboundJob.state.notin_(list(FINAL))))
            if not left:
                break
            t0 = time.monotonic()
            started = await dialer.tick()
            busy = bool(started or dialer._calls)
            await asyncio.sleep(args.turn_s)
            if busy:
                dialling_s += time.monotonic() - t0
            # the injected clock: a few seconds per busy turn, ten minutes per idle one
            await clock.advance(args.busy_step if busy else args.step)
            turns += 1
            if time.monotonic() - started_wall > args.max_s:
                break
        await dialer.drain()
    finally:
        await dialer.stop()
        await dispatcher.close()
        await link.stop()
        await standin.stop()
    async with sm() as s:
        attempts = list((await s.execute(select(
            OutboundAttempt.job_id, OutboundAttempt.started_at, OutboundAttempt.ended_at,
            OutboundAttempt.outcome, OutboundAttempt.detail))).all())
        jobs = {j.id: j for j in (await s.scalars(select(OutboundJob))).all()}
    await engine.dispose()
    tz = ZoneInfo(hours.timezone)
    quiet = [a for a in attempts if hours.quiet.covers(a.started_at.astimezone(tz).time())]
    per_job: dict[int, list[Any]] = {}
    for a in attempts:
        per_job.setdefault(a.job_id, []).append(a)
    answered_twice = sum(1 for rows in per_job.values()
                         if any(r.outcome == ANSWERED for r in rows[:-1]))
    concurrent = 0
    for rows in per_job.values():
        rows.sort(key=lambda r: r.started_at)
        for x, y in zip(rows, rows[1:], strict=False):
            if x.ended_at is None or y.started_at < x.ended_at:
                concurrent += 1
    states = Counter(j.state for j in jobs.values())
    mean_call_s = sum(call_s) / len(call_s) if call_s else 0.0
    return {
        "bench": "outbound_campaign", "owners": args.owners, "queued": built.queued,
        "limit": args.limit, "db": "postgresql" if args.db else "sqlite",
        "peak_calls": peak_calls(standin.events), "attempts": len(attempts),
        "quiet_hour_calls": len(quiet), "not_final": sum(1 for j in jobs.values()
                                                         if j.state not in FINAL),
        "answered_twice": answered_twice, "concurrent_twice": concurrent,
        "states": dict(states), "outcomes": dict(Counter(a.outcome for a in attempts)),
        "details": dict(Counter(a.detail for a in attempts).most_common(5)), "wall_s": round(time.monotonic() - started_wall, 1),
        "dialling_s": round(dialling_s, 1),
        "calls_per_min": round(len(attempts) / dialling_s * 60, 1) if dialling_s else None,
        # the baseline: the limit always full, each call as long as the mean measured
        "baseline_ideal_calls_per_min": round(args.limit * 60 / mean_call_s, 1)
        if mean_call_s else None,
        "mean_call_wall_s": round(mean_call_s, 3),
        "turns": turns,
        "days": (clock.now() - START) / timedelta(days=1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--owners", type=int, default=10_000)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--speed", type=float, default=50.0, help="the stand-in's clock scale")
    ap.add_argument("--step", type=float, default=600.0,
                    help="injected seconds per idle dialer turn")
    ap.add_argument("--busy-step", type=float, default=1.0,
                    help="injected seconds per dialer turn with calls up")
    ap.add_argument("--turn-s", type=float, default=0.05)
    ap.add_argument("--max-s", type=float, default=3600.0)
    ap.add_argument("--db", default=None)
    print(json.dumps(asyncio.run(run(ap.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
