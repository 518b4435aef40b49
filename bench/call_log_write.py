"""Call-log write cost: CPU per ``call.*`` event, ours against the ORM unit of work.

Every AMI event of a call becomes a ``call.*`` event the call log merges into
the call's row, on the same event loop that rings agents' screens; at 100
calls/s that is about 400 events a second. Both sides get the same events:
2,000 calls of four events each (``started``, ``ivr_choice``, ``ringing``,
``ended``) in the order a hotline sends them at 100 calls/s (3 s in the IVR,
2 s ringing), cut into the 50 ms batches the server writes in one transaction,
with 10,000 people in the directory whose numbers the callers have.

- ours: ``CallLogService.handle`` for each event of a batch (the real batching:
  one transaction per batch, prebuilt Core statements, the batch's new numbers
  matched in one query);
- baseline: the same merge written through the ORM unit of work, each new
  number matched with its own query (how the call log wrote until 2026-12-01).

The rows both write are compared column by column. Times are CPU time of the
whole process (``process_time``: aiosqlite's thread included), best of
``--rounds``. Prints one JSON line per backend.

    python bench/call_log_write.py [--backend sqlite|postgresql|both] [--calls 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent
from callcenter.calls import services as call_services
from callcenter.calls.models import CallLog
from callcenter.calls.services import CallLogService
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory.models import Person, PersonPhone

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PEOPLE = 10_000
BATCH_S = 0.05
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def number_of(i: int) -> str:
    return f"+86138{i:08d}"


def hotline_events(calls: int, rate: float = 100.0) -> list[list[DomainEvent]]:
    """The calls' events in arrival order, cut into ``BATCH_S`` windows."""
    timed: list[tuple[float, int, DomainEvent]] = []
    for c in range(calls):
        t = c / rate
        base = {"asterisk": "bench", "linkedid": f"1764554400.{c}", "community": "bench",
                "started_at": T0 + timedelta(seconds=t),
                "caller_number": number_of(c * 7 % PEOPLE)[3:]}  # as the trunk sends it
        ring = {"target": f"{7000 + c % 200}", "kind": "queue", "queue": "frontdesk",
                "interface": f"Local/{7000 + c % 200}@agents/n",
                "member_name": f"Agent {7000 + c % 200}"}
        timed += [
            (t, 0, DomainEvent("call.started", dict(base))),
            (t + 2.5, 1, DomainEvent("call.ivr_choice", dict(base, ivr_path=["报修"]))),
            (t + 3.0, 2, DomainEvent("call.ringing", dict(base, ivr_path=["报修"], **ring),
                                     at=T0 + timedelta(seconds=t + 3))),
            (t + 5.0, 3, DomainEvent("call.ended", dict(
                base, ivr_path=["报修"], outcome="abandoned", wait_s=5.0,
                ended_at=T0 + timedelta(seconds=t + 5)))),
        ]
    timed.sort(key=lambda x: (x[0], x[1]))
    batches: dict[int, list[DomainEvent]] = {}
    for t, _, event in timed:
        batches.setdefault(int(t / BATCH_S), []).append(event)
    return [batches[k] for k in sorted(batches)]


async def ours(sm: async_sessionmaker[AsyncSession], batches: list[list[DomainEvent]]) -> None:
    service = CallLogService(sm, batch_delay_s=0)
    for batch in batches:
        await asyncio.gather(*(service.handle(e) for e in batch))


async def orm_unit_of_work(sm: async_sessionmaker[AsyncSession],
                           batches: list[list[DomainEvent]]) -> None:
    """The baseline: rows loaded as ORM objects, the same merge, one lookup per number."""
    columns = [c for c in call_services._MERGED]
    for batch in batches:
        keys = sorted({e.data["linkedid"] for e in batch})
        async with sm() as session, session.begin():
            rows = {r.linkedid: r for r in (await session.scalars(select(CallLog).where(
                CallLog.asterisk == "bench", CallLog.linkedid.in_(keys)))).all()}
            for event in batch:
                d = event.data
                row = rows.get(d["linkedid"])
                if row is None:
                    row = rows[d["linkedid"]] = CallLog(linkedid=d["linkedid"], asterisk="bench",
                                                        started_at=d["started_at"], ivr_path=[],
                                                        rung=[])
                    session.add(row)
                merged = {c: getattr(row, c) for c in columns}
                if call_services._apply(merged, event):
                    ids = (await session.scalars(
                        select(PersonPhone.person_id).where(
                            PersonPhone.number == merged["caller_number"])
                        .distinct().limit(2))).all()
                    merged["person_id"] = ids[0] if len(ids) == 1 else None
                for c in columns:
                    if merged[c] != getattr(row, c):
                        setattr(row, c, merged[c])


async def measure(url: str, backend: str, calls: int, rounds: int) -> dict[str, Any]:
    engine = make_engine(url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(Person), [{"id": i + 1, "name": f"业主{i}", "note": "",
                                             "created_at": now, "updated_at": now}
                                            for i in range(PEOPLE)])
        await conn.execute(insert(PersonPhone), [
            {"id": i + 1, "person_id": i + 1, "number": number_of(i), "raw": number_of(i)[3:],
             "kind": "mobile", "position": 0} for i in range(PEOPLE)])
    batches = hotline_events(calls)
    events = sum(len(b) for b in batches)

    async def snapshot() -> list[tuple[Any, ...]]:
        async with sm() as s:
            cols = [getattr(CallLog, c) for c in ("linkedid", *call_services._MERGED)]
            return [tuple(r) for r in (await s.execute(select(*cols).order_by(
                CallLog.linkedid))).all()]

    async def best(writer: Callable[..., Awaitable[None]]) -> tuple[float, list[Any]]:
        times = []
        rows: list[Any] = []
        for _ in range(rounds):
            async with sm() as s, s.begin():
                await s.execute(delete(CallLog))
            c0 = time.process_time()
            await writer(sm, batches)
            times.append(time.process_time() - c0)
            rows = await snapshot()
        return min(times), rows

    ours_s, ours_rows = await best(ours)
    base_s, base_rows = await best(orm_unit_of_work)
    await engine.dispose()
    matched = sum(1 for r in ours_rows if r[call_services._MERGED.index("person_id") + 1])
    return {
        "bench": "call_log_write", "backend": backend, "calls": calls, "events": events,
        "batches": len(batches), "rows": len(ours_rows), "rows_matched_to_a_person": matched,
        "same_rows": ours_rows == base_rows,
        "ours_cpu_us_per_event": round(ours_s / events * 1e6, 1),
        "orm_unit_of_work_cpu_us_per_event": round(base_s / events * 1e6, 1),
        "speedup": round(base_s / ours_s, 2),
    }


async def main_async(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                result = await measure(f"sqlite:///{tmp}/bench.sqlite3", backend, args.calls,
                                       args.rounds)
        else:
            name = f"cc_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(PG_ADMIN, timeout=10)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            try:
                url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
                result = await measure(url, backend, args.calls, args.rounds)
            finally:
                conn = await asyncpg.connect(PG_ADMIN, timeout=10)
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()
        print(json.dumps(result, ensure_ascii=False), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
