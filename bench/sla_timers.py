"""SLA timers at scale: 50,000 open tickets with their three SLA clocks on PostgreSQL.

Creates a scratch database (``cc_bench_sla_<hex>`` on the test server, dropped at
the end), seeds 50,000 open tickets and their 150,000 pending timers, then runs
two ``SlaWorker`` loops as two servers would (each its own engine, the system
clock, the default 1 s poll) in this process, and measures:

- **idle loop cost**: with every timer pending and none due, the event loop's CPU
  time per wall second (``time.process_time``) with both workers sweeping, less the
  same process idle without them; the sweep's own time (``claim_due``, wall) and a
  loop-lag probe (a 5 ms sleep's overshoot);
- **breach lateness**: ``--due`` red-light timers are moved to fall due over
  ``--spread`` seconds; ``fired_at - due_at`` of each, p50/p99/max (``fired_at`` is
  taken in the transaction that fires it, a batch of up to 500 at once), and the
  notice's lateness (sent after that commit, less ``due_at``);
- **exactly once**: breaches written per timer (the ticket's ``sla_breach`` log
  entries) and notices sent per timer, across both workers: duplicates must be 0.

The baseline (same run, same data) is the naive poll the timers replace: every
second load every open ticket and compare its age with its limits in Python
(CPU per poll = CPU per second at a 1 s poll).

Usage: python bench/sla_timers.py [--tickets 50000] [--due 2000] [--spread 10]
       [--idle-seconds 10]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from callcenter.bus import EventBus
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory.models import Community
from ticketing.models import Ticket, TicketEvent
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import KINDS, SlaPolicy
from ticketing.sla_worker import SlaBreach, SlaDelivery, SlaWorker, SlaWorkerConfig
from ticketing.workflow import OPEN_STATES

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


class CountingNotifier:
    """Every notice "delivered" at once; counts how often each timer was told."""

    def __init__(self, counts: Counter[tuple[int, str]],
                 told: dict[tuple[int, str], float]) -> None:
        self.counts = counts
        self.told = told  # when the notice left, less the due time: committed and sent

    async def notify(self, breach: SlaBreach) -> SlaDelivery:
        self.counts[(breach.ticket_id, breach.kind)] += 1
        self.told.setdefault((breach.ticket_id, breach.kind),
                             (datetime.now(UTC) - breach.due_at).total_seconds())
        return SlaDelivery("bench", ("bench",))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sm() as s:
        comm = Community(code="bench", name="基准小区", hotline_numbers=[])
        s.add(comm)
        await s.flush()
        cid = comm.id
        await s.commit()
    chunk = 5000
    for start in range(0, n, chunk):
        rows = [{"number": f"B{i:07d}", "community_id": cid, "source": "agent",
                 "category": "plumbing", "priority": "normal", "department": "engineering",
                 "state": "new", "summary": f"漏水 {i}", "created_at": now, "updated_at": now}
                for i in range(start, min(n, start + chunk))]
        async with sm() as s:
            await s.execute(insert(Ticket), rows)
            await s.commit()
    # Three pending clocks per ticket, due a day out (none falls due while idle).
    async with sm() as s:
        await s.execute(text(
            "INSERT INTO sla_timers (ticket_id, kind, due_at, state, limit_min, working_time,"
            " armed_at) SELECT t.id, k.kind, t.created_at + interval '1 day' + k.mins"
            " * interval '1 minute', 'pending', k.mins, false, t.created_at FROM tickets t"
            " CROSS JOIN (VALUES ('response', 15), ('red_light', 120),"
            " ('escalation', 1440)) AS k(kind, mins)"))
        await s.commit()
        await s.execute(text("ANALYZE tickets"))
        await s.execute(text("ANALYZE sla_timers"))
    await engine.dispose()


async def naive_poll(url: str, polls: int) -> dict[str, Any]:
    """The baseline: load every open ticket, compare its age with its three limits."""
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    policy = SlaPolicy()
    cpu: list[float] = []
    wall: list[float] = []
    found = 0
    for _ in range(polls):
        c0, w0 = time.process_time(), time.perf_counter()
        now = datetime.now(UTC)
        async with sm() as s:
            rows = (await s.execute(select(
                Ticket.id, Ticket.created_at, Ticket.category, Ticket.priority)
                .where(Ticket.state.in_(sorted(OPEN_STATES))))).all()
        due = 0
        for _tid, created, category, priority in rows:
            limits = policy.limits("bench", category, priority)
            for kind in KINDS:
                if created + limits.of(kind) <= now:
                    due += 1
        found = len(rows)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    await engine.dispose()
    return {"what": "every 1 s: SELECT every open ticket, compare created_at + limit in Python",
            "tickets_loaded_per_poll": found,
            "cpu_ms_per_poll_p50": round(statistics.median(cpu), 1),
            "wall_ms_per_poll_p50": round(statistics.median(wall), 1),
            "cpu_ms_per_s_at_1s_poll": round(statistics.median(cpu), 1)}


class LagProbe:
    """Sleeps 5 ms again and again; the overshoot is how long the loop was busy."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append((time.perf_counter() - t0 - 0.005) * 1000)

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return {"p50_ms": round(pct(self.lags, 0.5), 2), "p99_ms": round(pct(self.lags, 0.99), 2),
                "max_ms": round(max(self.lags), 2)}


async def cpu_per_s(seconds: float) -> float:
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (time.process_time() - c0) * 1000 / (time.perf_counter() - w0)


def timed_sweeps(worker: SlaWorker, into: list[float]) -> None:
    """Record each ``claim_due``'s wall time (the worker's loop calls it)."""
    inner = worker.claim_due

    async def claim_due(limit: int | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            return await inner(limit)
        finally:
            into.append((time.perf_counter() - t0) * 1000)

    worker.claim_due = claim_due  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cc_bench_sla_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=10)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    engines = []
    try:
        t0 = time.perf_counter()
        await seed(url, args.tickets)
        seed_s = time.perf_counter() - t0
        baseline = await naive_poll(url, 5)

        # CPU and loop lag measured in separate windows (the probe costs CPU itself).
        probe = LagProbe()
        idle_without = await cpu_per_s(args.idle_seconds / 2)
        probe.start()
        await asyncio.sleep(args.idle_seconds / 2)
        lag_without = await probe.stop()

        clock, bus = SystemClock(), EventBus()
        notices: Counter[tuple[int, str]] = Counter()
        told: dict[tuple[int, str], float] = {}
        workers = []
        sweeps: list[float] = []
        for label in ("a", "b"):
            engine = make_engine(url)
            engines.append(engine)
            worker = SlaWorker(make_sessionmaker(engine), clock, bus, CountingNotifier(notices, told),
                               config=SlaWorkerConfig(), worker_id=f"bench-{label}")
            timed_sweeps(worker, sweeps)
            workers.append(worker)
        for w in workers:
            await w.start()
        await asyncio.sleep(2)  # connections open, first sweeps done
        sweeps.clear()
        idle_with = await cpu_per_s(args.idle_seconds)
        idle_sweeps = list(sweeps)
        probe.start()
        await asyncio.sleep(args.idle_seconds / 2)
        lag_with = await probe.stop()
        assert sum(w.fired for w in workers) == 0, "a timer fell due while idle"

        # A batch falls due: --due red-light clocks over --spread seconds from now + 2 s.
        sm = make_sessionmaker(engines[0])
        first = datetime.now(UTC) + timedelta(seconds=2)
        async with sm() as s:
            await s.execute(text(
                "UPDATE sla_timers SET due_at = CAST(:first AS timestamptz) + (ticket_id % :spread_ms)"
                " * interval '1 millisecond' WHERE kind = 'red_light' AND ticket_id IN"
                " (SELECT id FROM tickets ORDER BY random() LIMIT :n)"),
                {"first": first, "spread_ms": max(1, int(args.spread * 1000)), "n": args.due})
            await s.commit()
        deadline = time.perf_counter() + args.spread + 60
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            if sum(w.fired for w in workers) >= args.due:
                break
        for w in workers:
            await w.drain()
        for w in workers:
            await w.stop()
        async with sm() as s:
            rows = (await s.execute(select(SlaTimer.due_at, SlaTimer.fired_at).where(
                SlaTimer.state == "fired"))).all()
            logged = Counter((r[0], r[1]["kind"]) for r in (await s.execute(select(
                TicketEvent.ticket_id, TicketEvent.data).where(
                TicketEvent.action == "sla_breach"))).all())
            still = await s.scalar(select(func.count(SlaTimer.id)).where(
                SlaTimer.state == "pending", SlaTimer.due_at <= datetime.now(UTC)))
        late = [(f - d).total_seconds() for d, f in rows if f is not None]
        fired_by = {w.worker_id: w.fired for w in workers}
        return {
            "bench": "sla_timers", "backend": "postgresql", "tickets": args.tickets,
            "timers": args.tickets * 3, "seed_s": round(seed_s, 1),
            "idle": {
                "seconds": args.idle_seconds, "workers": 2, "poll_interval_s": 1.0,
                "process_cpu_ms_per_s_without_workers": round(idle_without, 2),
                "process_cpu_ms_per_s_with_workers": round(idle_with, 2),
                "sweep_cpu_ms_per_s": round(idle_with - idle_without, 2),
                "sweeps": len(idle_sweeps),
                "sweep_wall_ms_p50": round(pct(idle_sweeps, 0.5), 2) if idle_sweeps else None,
                "sweep_wall_ms_max": round(max(idle_sweeps), 2) if idle_sweeps else None,
                "loop_lag_without_workers": lag_without, "loop_lag_with_workers": lag_with,
            },
            "baseline_naive_poll": baseline,
            "batch": {
                "due": args.due, "spread_s": args.spread, "fired": len(late),
                "fired_by_worker": fired_by, "left_due_unfired": still,
                "lateness_s_p50": round(pct(late, 0.5), 3) if late else None,
                "lateness_s_p99": round(pct(late, 0.99), 3) if late else None,
                "lateness_s_max": round(max(late), 3) if late else None,
                "notice_lateness_s_p99": round(pct(list(told.values()), 0.99), 3)
                if told else None,
                "notice_lateness_s_max": round(max(told.values()), 3) if told else None,
                "breaches_per_timer_max": max(logged.values(), default=0),
                "duplicate_breaches": sum(c - 1 for c in logged.values()),
                "duplicate_notices": sum(c - 1 for c in notices.values()),
                "timers_notified": len(notices),
            },
        }
    finally:
        for engine in engines:
            await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    logging.getLogger("ticketing.sla_worker").setLevel(logging.ERROR)  # one line per breach
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=50_000)
    ap.add_argument("--due", type=int, default=2000)
    ap.add_argument("--spread", type=float, default=10.0)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    print(json.dumps(asyncio.run(run(ap.parse_args())), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
