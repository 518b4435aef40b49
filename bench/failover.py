"""Failover: kill -9 the server driving the Asterisk link during 20 live IVR calls
and a running emergency escalation.

Two real server processes (``tests.cluster.serve_node``, ``create_app``) on one
PostgreSQL database and one AsyncAGI Asterisk stand-in (in this process). Their
clock runs from 10:00 in Shanghai today (office hours: the menu leads to the
front-desk queue), the same shift in both and in the escalation opened here.
Every engineer's phone rings unanswered, so the escalation runs its every step.

While 20 callers are in the menu (pressing 1 every 0.8 s) and the escalation's
second ring is out, the lease holder is killed with SIGKILL. Measured:

- ``resume_s``: from the kill to the first AGI command from another AMI session
  (target ≤ 5 s);
- ``calls_reached``: calls that reached the queue or a mailbox (target: all 20);
- ``agi_sent_twice``: the same command to one channel from two sessions within 1 s
  (``AgiSpy.duplicates``; target 0);
- ``page_steps_twice`` / ``page_steps_skipped``: escalation attempts that rang more
  than once, and steps marked done with no attempt (target 0 each).

Baseline, in the same run: one server and no standby, killed the same way and
started again at once (what ``systemd`` ``Restart=always`` gives): the same figures.

Prints one JSON line.
Usage: python bench/failover.py [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcenter.bus import EventBus  # noqa: E402
from callcenter.db.engine import make_engine, make_sessionmaker  # noqa: E402
from callcenter.demo import DEMO_COMMUNITY_CODE, free_port  # noqa: E402
from callcenter.directory.models import StaffUser  # noqa: E402
from callcenter.paging.models import PageAttempt, PagingTimer  # noqa: E402
from callcenter.paging.services import IncidentRequest, PagingConfig, PagingService  # noqa: E402
from callcenter.simulator import AsteriskStandIn, Caller, Phone, Press, Wait  # noqa: E402
from callcenter.simulator.scenario import Answer  # noqa: E402
from tests.cluster.serve_node import ShiftedClock, office_hours_offset_s, settings_for  # noqa: E402
from tests.ha.pair import AgiSpy, Node, OriginateSpy, lease_holder, reached, until  # noqa: E402
from tests.integration.demo_db import demo_db  # noqa: E402

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LINK = "standin"
STEPS = [{"target": "oncall", "role": "engineer", "ring_timeout_s": 5, "retries": 1},
         {"target": "backup", "role": "engineer", "ring_timeout_s": 5, "retries": 0}]
ROUNDS = 2
EXPECTED_ATTEMPTS = ROUNDS * 3  # (oncall x2, backup x1) per round


def caller(i: int) -> Caller:
    return Caller(number=f"1381234{i:04d}", name="王建国", did="4008001234",
                  script=[s for _ in range(20) for s in (Wait(0.8), Press("1"))] + [Wait(60)])


async def open_escalation(db_url: str, offset_s: float) -> int:
    engine = make_engine(db_url)
    try:
        service = PagingService(make_sessionmaker(engine), ShiftedClock(offset_s), EventBus(),
                                PagingConfig())
        await service.set_policy(DEMO_COMMUNITY_CODE, "plumbing", STEPS, max_rounds=ROUNDS,
                                 restart_wait_s=1)
        opened = await service.open_incident(IncidentRequest(
            community=DEMO_COMMUNITY_CODE, category="plumbing", source="ivr", building="3",
            unit="2", room="1203", caller_number="13911112222", call_id="1700000000.9"))
        return opened.incident_id
    finally:
        await engine.dispose()


async def page_steps(db_url: str, incident_id: int) -> tuple[list[tuple[int, str | None]], int]:
    """(attempt id, outcome) of the incident's phone attempts, and how many of its
    timers are done with no attempt (steps skipped)."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.execute(
                select(PageAttempt.id, PageAttempt.timer_id, PageAttempt.outcome)
                .where(PageAttempt.incident_id == incident_id, PageAttempt.channel == "phone")
                .order_by(PageAttempt.id))).all()
            timers = (await s.scalars(select(PagingTimer).where(
                PagingTimer.incident_id == incident_id))).all()
    finally:
        await engine.dispose()
    skipped = sum(1 for t in timers if t.done and not any(r[1] == t.id for r in rows))
    return [(int(r[0]), r[2]) for r in rows], skipped


async def case(db_url: str, tmp: Path, calls_n: int, *, standby: bool) -> dict[str, Any]:
    offset = office_hours_offset_s()
    async with demo_db(db_url, (datetime.now(UTC) + timedelta(seconds=offset)).date()) as sm, \
            sm() as s:
        staff = (await s.scalars(select(StaffUser))).all()
        numbers = [n for u in staff for n in (u.mobile, u.extension) if n]
    ami_port = free_port()
    standin = AsteriskStandIn.from_settings(settings_for(db_url, tmp / "a", 0, ami_port,
                                                         free_port()),
                                            ivr_transport="asyncagi", prompt_seconds=0.05)
    for number in numbers:
        standin.add_phone(Phone(number, behaviour=Answer.NO_ANSWER))
    agi, orig = AgiSpy().install(), OriginateSpy().install()
    env = {"CALLCENTER_TEST_CLOCK_OFFSET_S": f"{offset:.3f}"}
    a = Node("server-a", db_url, tmp / "a", ami_port, tmp / "a.log", env)
    b = Node("server-b", db_url, tmp / "b", ami_port, tmp / "b.log", env)
    await standin.start()
    try:
        await a.start()
        await until(lambda: lease_holder(db_url, LINK), 10, "nobody took the lease")
        if standby:
            await b.start()
        await asyncio.sleep(1.0)
        incident_id = await open_escalation(db_url, offset)
        calls = [standin.place_call(caller(i)) for i in range(calls_n)]
        names = [c.app.name for c in calls]
        await until(lambda: all(agi.sessions_of(n) for n in names), 30, "a call was not driven")
        await until(lambda: len(orig.sent) >= 2, 30, "the escalation never rang twice")
        await asyncio.sleep(0.5)
        first = {s for _, s, _, _ in agi.sent}
        a.kill9()
        killed = time.monotonic()
        if not standby:
            await a.start()  # Restart=always
        await until(lambda: any(t > killed and s not in first for t, s, _, _ in agi.sent),
                    30, "nobody drove AGI after the kill")
        resume_s = min(t for t, s, _, _ in agi.sent if t > killed and s not in first) - killed

        async def finished() -> bool:
            rows, _ = await page_steps(db_url, incident_id)
            real = [r for r in rows if r[1] != "deferred"]
            return len(real) >= EXPECTED_ATTEMPTS and all(r[1] is not None for r in rows)

        try:
            await until(finished, 120, "escalation unfinished", step_s=0.5)
            finished_ok = True
        except AssertionError:
            finished_ok = False
        try:
            await until(lambda: all(reached(standin, n) for n in names), 60, "calls stuck")
        except AssertionError:
            pass
        rows, skipped = await page_steps(db_url, incident_id)
        real = [att for att, outcome in rows if outcome != "deferred"]
        rang = Counter(att for _, _, _, att in orig.sent)
        guard = standin.pbx.hotline_guard
        return {
            "resume_s": round(resume_s, 3),
            "calls": calls_n,
            "calls_reached": sum(1 for n in names if reached(standin, n)),
            "calls_to_fallback": len(guard.fallbacks) if guard is not None else 0,
            "agi_sent_twice": agi.duplicates(),
            "page_attempts": len(real),
            "page_attempts_expected": EXPECTED_ATTEMPTS,
            "escalation_finished": finished_ok,
            "page_steps_twice": sum(1 for att in real if rang[str(att)] > 1),
            "page_steps_skipped": skipped,
            "holder_after": (await lease_holder(db_url, LINK))[0],
        }
    finally:
        agi.restore()
        orig.restore()
        await asyncio.gather(a.stop(), b.stop())
        await standin.stop()


async def with_database(fn: Any) -> Any:
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=10)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await fn(make_url(PG_ADMIN).set(database=name)
                        .render_as_string(hide_password=False)
                        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "failover", "backend": "postgresql", "calls": args.calls}
    for label, standby in (("restart_only", False), ("standby", True)):
        with tempfile.TemporaryDirectory() as tmp:
            out[label] = await with_database(
                lambda url, s=standby, t=tmp: case(url, Path(t), args.calls, standby=s))
    out["baseline"] = "restart_only: one server, kill -9, started again at once"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
