"""Screen-pop latency: AMI event in → WebSocket frame at the agent's browser.

100,000 owners in the directory, 200 agents connected over real WebSockets,
100 calls/s. Each call is the AMI events of a real queue call
(``Newchannel`` with the caller's number and ``Newstate`` Up as the IVR answers,
then ``--ivr-seconds`` later ``QueueCallerJoin`` and ``AgentCalled`` ringing one
agent's extension) encoded as AMI bytes and fed through the real ``FrameParser`` and
``CallTracker``; the tracker publishes ``call.started`` and ``call.ringing`` on
the bus and the call log writes its rows; the hub builds the pop from the
database (directory, household, open tickets, last calls) when the call comes
in, and on ringing writes the audit row and pushes the frame. With
``--ivr-seconds 0`` all of them arrive together and the pop is built on the
ringing path (the cold case; a real queue call always spends seconds in the IVR
first). Latency is measured from handing the ``QueueCallerJoin`` + ``AgentCalled`` bytes
to the parser to the client's receipt of the decoded pop frame (the TCP read
from Asterisk is not included). The 200 agents' WebSockets run in a separate
process (as browsers would be elsewhere); both sides read the same system-wide
monotonic clock. A ``Hangup`` ends each call 2 s later.

Prints one JSON line per backend.
Usage: python bench/screenpop_latency.py [--backend sqlite|postgresql|both]
       [--owners 100000] [--agents 200] [--rate 100] [--seconds 20] [--ivr-seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from callcenter.ami.parser import Frame, FrameParser, encode_frame
from callcenter.app import create_app
from callcenter.appkeys import BUS, SESSIONMAKER
from callcenter.auth.sessions import SESSION_COOKIE
from callcenter.calls.tracker import CallTracker
from callcenter.console.keys import AGENT_HUB, SESSION_STORE
from callcenter.db.engine import make_engine, migrate
from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    StaffCommunity,
    StaffUser,
    Unit,
)
from callcenter.heap import settle_heap
from callcenter.settings import DatabaseSettings, FastAgiSettings, Settings

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK = 5000


PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "186", "187", "188")


def owner_number(i: int) -> str:
    """A valid, distinct mainland mobile number per owner."""
    return f"{PREFIXES[i % len(PREFIXES)]}{i:08d}"


async def seed(url: str, owners: int, agents: int) -> None:
    engine = make_engine(url)
    await migrate(engine)
    rng = random.Random(7)
    async with engine.begin() as conn:
        await conn.execute(insert(Community), [{"id": 1, "code": "bench", "name": "基准小区",
                                                "timezone": "Asia/Shanghai",
                                                "hotline_numbers": []}])
        per_building = 400  # 4 units x 25 floors x 4 rooms
        buildings = (owners + per_building - 1) // per_building
        await conn.execute(insert(Building), [{"id": b + 1, "community_id": 1, "name": str(b + 1)}
                                              for b in range(buildings)])
        await conn.execute(insert(Unit), [{"id": b * 4 + u + 1, "building_id": b + 1,
                                           "name": str(u + 1)}
                                          for b in range(buildings) for u in range(4)])
        now = datetime.now(UTC)
        for start in range(0, owners, CHUNK):
            ids = range(start, min(owners, start + CHUNK))
            await conn.execute(insert(Room), [
                {"id": i + 1, "unit_id": i // 100 + 1,
                 "number": f"{(i % 100) // 4 + 1}{i % 4 + 1:02d}"} for i in ids])
            await conn.execute(insert(FeeAccount), [
                {"id": i + 1, "room_id": i + 1, "area_m2": Decimal("95.20"),
                 "arrears": Decimal(rng.choice(("0", "0", "0", "1200.50")))} for i in ids])
            await conn.execute(insert(Person), [
                {"id": i + 1, "name": f"业主{i}", "note": "", "created_at": now, "updated_at": now}
                for i in ids])
            await conn.execute(insert(PersonPhone), [
                {"id": i + 1, "person_id": i + 1, "number": "+86" + owner_number(i),
                 "raw": owner_number(i), "kind": "mobile", "position": 0} for i in ids])
            await conn.execute(insert(PersonRoom), [
                {"id": i + 1, "person_id": i + 1, "room_id": i + 1, "role": "owner"} for i in ids])
        await conn.execute(insert(StaffUser), [
            {"id": a + 1, "username": f"agent{a}", "display_name": f"坐席{a}", "role": "agent",
             "extension": str(7000 + a), "mobile": None, "community_id": None,
             "password_hash": None, "active": True, "notify": {}, "created_at": now}
            for a in range(agents)])
        # agents work for the bench community (a pop reaches only its own community's)
        await conn.execute(insert(StaffCommunity), [
            {"user_id": a + 1, "community_id": 1} for a in range(agents)])
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            for table in ("rooms", "fee_accounts", "people", "person_phones", "person_rooms",
                          "staff_users", "buildings", "units", "communities"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))")
            await conn.exec_driver_sql("ANALYZE")
    await engine.dispose()


def frames_for(call: int, number: str, agent: int) -> tuple[bytes, bytes, bytes]:
    """(the call comes in and the IVR answers it, the queue rings an agent, hang-up),
    each as the AMI bytes Asterisk sends (fields as in shared/asterisk/05_queue.txt)."""
    lid = f"1763800000.{call}"
    chan = f"PJSIP/trunk-{call:08x}"
    who = [("CallerIDNum", number), ("CallerIDName", ""), ("ConnectedLineNum", ""),
           ("ConnectedLineName", ""), ("Language", "zh"), ("AccountCode", "")]
    newchannel = encode_frame([
        ("Event", "Newchannel"), ("Channel", chan), ("ChannelState", "4"),
        ("ChannelStateDesc", "Ring"), *who, ("Context", "from-trunk"),
        ("Exten", "075588886666"), ("Priority", "1"), ("Uniqueid", lid), ("Linkedid", lid)])
    answered = encode_frame([
        ("Event", "Newstate"), ("Channel", chan), ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"), *who, ("Context", "from-trunk"),
        ("Exten", "075588886666"), ("Priority", "2"), ("Uniqueid", lid), ("Linkedid", lid)])
    join = encode_frame([
        ("Event", "QueueCallerJoin"), ("Channel", chan), ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"), *who, ("Context", "queue-entry"), ("Exten", "s"),
        ("Priority", "3"), ("Uniqueid", lid), ("Linkedid", lid), ("Queue", "frontdesk"),
        ("Position", "1"), ("Count", "1")])
    agent_called = encode_frame([
        ("Event", "AgentCalled"), ("Channel", chan), ("CallerIDNum", number),
        ("Uniqueid", lid), ("Linkedid", lid), ("DestChannel", f"Local/{7000 + agent}@agents-1;1"),
        ("DestUniqueid", f"{lid}1"), ("Queue", "frontdesk"),
        ("Interface", f"Local/{7000 + agent}@agents/n"), ("MemberName", f"Agent {7000 + agent}")])
    hangup = encode_frame([
        ("Event", "Hangup"), ("Channel", chan), ("Uniqueid", lid), ("Linkedid", lid),
        ("CallerIDNum", number), ("Cause", "16"), ("Cause-txt", "Normal Clearing")])
    return newchannel + answered, join + agent_called, hangup


async def run(url: str, backend: str, owners: int, agents: int, rate: float,
              seconds: float, tmp: Path, ivr_seconds: float = 3.0) -> dict[str, Any]:
    t_seed = time.perf_counter()
    await seed(url, owners, agents)
    seed_s = time.perf_counter() - t_seed
    settings = Settings(data_dir=tmp, database=DatabaseSettings(url=url),
                        fastagi=FastAgiSettings(enabled=False))
    app = create_app(settings, transcribe=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settle_heap()  # as callcenter.server.serve does once the server is up
    base = f"http://127.0.0.1:{port}"

    sent_at: dict[str, float] = {}
    received: dict[str, float] = {}
    queued: list[float] = []  # server side: bytes in → frame in the connection's outbox
    seen_queued: set[str] = set()

    def on_frame(call_id: str, _n: int) -> None:
        t0 = sent_at.get(call_id)
        if t0 is not None and call_id not in seen_queued:
            seen_queued.add(call_id)
            queued.append(time.monotonic() - t0)

    app[AGENT_HUB].on_frame_sent = on_frame
    expected = int(rate * seconds)

    async with app[SESSIONMAKER]() as s:
        users = (await s.scalars(select(StaffUser).order_by(StaffUser.id))).all()
    store = app[SESSION_STORE]
    tokens = [(await store.create(u)).token for u in users]
    tokens_file = tmp / "tokens.txt"
    await asyncio.to_thread(tokens_file.write_text, "\n".join(tokens))
    client = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", base, str(tokens_file),
        stdout=asyncio.subprocess.PIPE, limit=1 << 20)
    assert client.stdout is not None
    ready = await asyncio.wait_for(client.stdout.readline(), timeout=120)
    assert ready.strip() == b"READY", ready
    all_in = asyncio.Event()

    async def collect() -> None:
        assert client.stdout is not None
        while line := await client.stdout.readline():
            call_id, _, t = line.decode().strip().partition(" ")
            received[call_id] = float(t)
            if len(received) >= expected:
                all_in.set()

    collector = asyncio.create_task(collect())
    parser = FrameParser()
    tracker = CallTracker("bench", app[BUS].publish, community="bench")
    hangups: list[asyncio.TimerHandle] = []
    loop = asyncio.get_running_loop()

    def feed(data: bytes) -> None:
        for f in parser.feed(data):
            if isinstance(f, Frame):
                tracker.handle(f, datetime.now(UTC))

    rng = random.Random(11)
    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.monotonic()
    def ring(call: int, agent_called: bytes, hangup: bytes) -> None:
        sent_at[f"1763800000.{call}"] = time.monotonic()
        feed(agent_called)
        if not os.environ.get("BENCH_NO_HANGUP"):
            hangups.append(loop.call_later(2.0, feed, hangup))

    for call in range(expected):
        target = start + call / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        number = owner_number(rng.randrange(owners))
        comes_in, agent_called, hangup = frames_for(call, number, rng.randrange(agents))
        feed(comes_in)
        if ivr_seconds > 0:
            # The caller hears the greeting and presses a key before the queue rings.
            hangups.append(loop.call_later(ivr_seconds, ring, call, agent_called, hangup))
        else:
            ring(call, agent_called, hangup)
    await asyncio.sleep(ivr_seconds)
    achieved_rate = expected / (time.monotonic() - start - ivr_seconds)
    try:
        await asyncio.wait_for(all_in.wait(), timeout=60)
    except TimeoutError:
        pass
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    for h in hangups:
        h.cancel()
    client.terminate()
    await client.wait()
    collector.cancel()
    await asyncio.gather(collector, return_exceptions=True)
    await app[AGENT_HUB].settle()
    audit_rows = app[AGENT_HUB]._audit.written if app[AGENT_HUB]._audit else 0
    await runner.cleanup()
    latencies = [received[c] - t0 for c, t0 in sent_at.items() if c in received]
    if os.environ.get("BENCH_SERIES"):
        series = [(int(c.rsplit(".", 1)[1]), round((received[c] - t0) * 1000))
                  for c, t0 in sent_at.items() if c in received]
        print(sorted(series)[::10], file=sys.stderr)
    lat_ms = sorted(x * 1000 for x in latencies)
    q_ms = sorted(x * 1000 for x in queued)

    def pct(p: float) -> float:
        return round(lat_ms[min(len(lat_ms) - 1, int(p * len(lat_ms)))], 2) if lat_ms else -1.0

    return {
        "bench": "screenpop_latency", "backend": backend, "owners": owners, "agents": agents,
        "rate_per_s": rate, "ivr_seconds": ivr_seconds, "achieved_rate_per_s": round(achieved_rate, 1), "calls": expected,
        "received": len(lat_ms), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": round(lat_ms[-1], 2) if lat_ms else -1,
        "mean_ms": round(statistics.fmean(lat_ms), 2) if lat_ms else -1,
        "server_p50_ms": round(q_ms[len(q_ms) // 2], 2) if q_ms else -1,
        "server_p99_ms": round(q_ms[min(len(q_ms) - 1, int(0.99 * len(q_ms)))], 2) if q_ms else -1,
        "audit_rows": audit_rows,
        "seed_seconds": round(seed_s, 1),
        "measured_from": "QueueCallerJoin+AgentCalled bytes handed to FrameParser (+CallTracker, bus, pop build, "
                         "audit) to pop frame decoded by the agent's WebSocket client",
    }


async def main_async(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/bench.sqlite3"
                result = await run(url, backend, args.owners, args.agents, args.rate,
                                   args.seconds, Path(tmp), args.ivr_seconds)
            else:
                name = f"cc_bench_{uuid.uuid4().hex[:8]}"
                conn = await asyncpg.connect(PG_ADMIN, timeout=10)
                await conn.execute(f'CREATE DATABASE "{name}"')
                await conn.close()
                url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
                try:
                    result = await run(url, backend, args.owners, args.agents, args.rate,
                                       args.seconds, Path(tmp), args.ivr_seconds)
                finally:
                    conn = await asyncpg.connect(PG_ADMIN, timeout=10)
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await conn.close()
        print(json.dumps(result, ensure_ascii=False), flush=True)


async def client_main(base: str, tokens: list[str]) -> None:
    """The agents' side: one WebSocket per token; prints ``READY``, then
    ``<call_id> <monotonic time>`` for each ringing pop received."""
    out = sys.stdout
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await http.ws_connect(f"{base}/ws/agent",
                                         headers={"Cookie": f"{SESSION_COOKIE}={t}"})
                   for t in tokens]

        async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data.get("type") == "pop" and data["call"]["state"] == "ringing":
                    out.write(f"{data['call']['call_id']} {time.monotonic()}\n")
                    out.flush()

        # The agents' side stands in for browsers, which have no pauses of CPython's
        # collector: settle this process's heap as the server settles its own.
        settle_heap()
        out.write("READY\n")
        out.flush()
        await asyncio.gather(*(reader(ws) for ws in sockets))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        asyncio.run(client_main(sys.argv[2], Path(sys.argv[3]).read_text().split()))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--owners", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--ivr-seconds", type=float, default=3.0,
                    help="time between a call coming in (Newchannel) and ringing an agent "
                         "(AgentCalled): the greeting and a key press; 0 rings at once, "
                         "so the pop is built on the ringing path (the cold case)")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
