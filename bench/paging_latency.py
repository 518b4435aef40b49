"""Paging latency: time from an incident opening to its first Originate leaving.

1,000 incidents (different buildings, so none is a duplicate) while the
escalation worker runs its ordinary background loop; the originator only notes
when each Originate arrives. By default each incident opens once the previous
one's Originate has left (latency of one page); ``--burst`` opens them all
back to back (latency under a flood). Prints one JSON line.
Usage: python bench/paging_latency.py [--incidents 1000] [--burst] [--db-url URL]
(--db-url: a scratch database; the bench creates its tables there.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Mapping
from datetime import date

from callcenter.bus import EventBus
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.oncall.services import ShiftInput, create_schedule
from callcenter.paging.originate import OriginateOutcome, OriginateStatus, PageCallRegistry
from callcenter.paging.services import IncidentRequest, PagingService
from callcenter.paging.worker import EscalationWorker, WorkerConfig


class StopwatchOriginator:
    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.done = asyncio.Event()
        self.arrived = asyncio.Event()
        self.expected = 0

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str], timeout: float,  # noqa: ASYNC109
                        *, community: str | None = None) -> OriginateOutcome:
        incident = int(variables["CC_INCIDENT"])
        self.first.setdefault(incident, time.perf_counter())
        self.arrived.set()
        if len(self.first) >= self.expected:
            self.done.set()
        return OriginateOutcome(OriginateStatus.NO_ANSWER, "3")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(n: int, db_url: str | None, burst: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url or f"sqlite:///{tmp}/bench.sqlite3"
        engine = make_engine(url)
        await migrate(engine)
        sm = make_sessionmaker(engine)
        async with sm() as s:
            comm = Community(code="bench", name="基准小区", timezone="Asia/Shanghai",
                             hotline_numbers=[])
            s.add(comm)
            await s.flush()
            eng = StaffUser(username="bench-eng", display_name="值班工程师", role="engineer",
                            mobile="13800000001", active=True, notify={},
                            memberships=[StaffCommunity(community_id=comm.id)])
            s.add(eng)
            await s.commit()
        async with sm() as s:
            await create_schedule(s, community="bench", role="engineer", shifts=[
                ShiftInput("全天", "00:00", "00:00", [eng.id], date(2026, 1, 5))])
        clock, bus = SystemClock(), EventBus()
        service = PagingService(sm, clock, bus)
        await service.set_policy("bench", "plumbing", [{"target": "oncall", "retries": 0}],
                                 max_rounds=1)
        originator = StopwatchOriginator()
        originator.expected = n
        worker = EscalationWorker(sm, originator, clock, bus, PageCallRegistry(),
                                  config=WorkerConfig(poll_interval_s=1.0))
        service.set_wakeup(worker.wake)
        await worker.start()
        opened: dict[int, float] = {}
        t_all = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            res = await service.open_incident(IncidentRequest(
                "bench", "plumbing", "api", building=str(i), caller_number="13911112222"))
            opened[res.incident_id] = t0
            if not burst:
                while res.incident_id not in originator.first:
                    originator.arrived.clear()
                    await asyncio.wait_for(originator.arrived.wait(), 30)
        await asyncio.wait_for(originator.done.wait(), 120)
        wall = time.perf_counter() - t_all
        await worker.stop()
        await bus.drain()
        await engine.dispose()
    lat = [(originator.first[i] - t0) * 1000 for i, t0 in opened.items()]
    return {
        "bench": "paging_latency",
        "backend": url.split(":", 1)[0],
        "incidents": n,
        "mode": "burst" if burst else "one_at_a_time",
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "max_ms": round(max(lat), 2),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--incidents", type=int, default=1000)
    ap.add_argument("--db-url", default=None)
    ap.add_argument("--burst", action="store_true")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.incidents, args.db_url, args.burst)),
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
