"""Screen-pop latency across two servers: AMI event in → pop frame at an agent signed in
on the other server, with the IVR path only server A knows.

As ``bench/screenpop_latency.py`` (100,000 owners, 200 agents, 100 calls/s, the same
AMI frames), but the servers are real processes (``create_app``) connected over real
AMI to one Asterisk stand-in (in this process) and to one PostgreSQL database. Each
call: ``Newchannel`` + ``Newstate`` Up reach both servers; 1.5 s later server A records
the caller's menu step (``AmiLinks.record_ivr_choice``, what A's IVR calls, reached
here through a bench-only route of the server process, as no IVR runs); ``--ivr-seconds``
after the call came in, ``QueueCallerJoin`` + ``AgentCalled`` ring one agent. Latency is
measured from writing those bytes to the servers' AMI sockets to the agent's client
decoding the ringing pop; ``with_path`` counts pops that showed the IVR step.

Two phases in one run: the baseline, server A alone with all 200 agents; then A and B,
100 agents signed in on each (the figure asked for is the agents on B).
Prints one JSON line.
Usage: python bench/screenpop_cluster.py [--owners 100000] [--agents 200] [--rate 100]
       [--seconds 20] [--ivr-seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenpop_latency import frames_for, owner_number, seed

from callcenter.appkeys import AMI_LINKS, SESSIONMAKER
from callcenter.auth.sessions import SESSION_COOKIE
from callcenter.console.keys import SESSION_STORE
from callcenter.demo import free_port
from callcenter.heap import settle_heap
from callcenter.settings import (
    AsteriskSettings,
    DatabaseSettings,
    FastAgiSettings,
    Secret,
    Settings,
)
from callcenter.simulator import AsteriskStandIn

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]


def server_settings(url: str, data_dir: Path, http_port: int, ami_port: int) -> Settings:
    return Settings(data_dir=data_dir, database=DatabaseSettings(url=url),
                    fastagi=FastAgiSettings(enabled=False),
                    asterisk=(AsteriskSettings(name="bench", port=ami_port, username="cc",
                                               secret=Secret("bench"), community="bench"),))


# ---------------------------------------------------------------------- server process

async def serve(url: str, data_dir: Path, http_port: int, ami_port: int,
                tokens_file: str) -> None:
    from sqlalchemy import select

    from callcenter.app import create_app
    from callcenter.directory.models import StaffUser

    app = create_app(server_settings(url, data_dir, http_port, ami_port), transcribe=False)

    async def ivr_step(request: web.Request) -> web.Response:
        body = await request.json()
        request.app[AMI_LINKS].record_ivr_choice(body["linkedid"], body["step"])
        return web.Response(status=204)

    app.router.add_post("/bench/ivr", ivr_step)  # bench only: what the IVR would call
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    if tokens_file:
        async with app[SESSIONMAKER]() as s:
            users = (await s.scalars(select(StaffUser).order_by(StaffUser.id))).all()
        tokens = [(await app[SESSION_STORE].create(u)).token for u in users]
        await asyncio.to_thread(Path(tokens_file).write_text, "\n".join(tokens))
    settle_heap()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await runner.cleanup()


# ---------------------------------------------------------------------- agents' process

async def agents(base: str, tokens: list[str]) -> None:
    """One WebSocket per token; prints ``<call id> <monotonic time> <has path>`` for each
    ringing pop."""
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
                    path = 1 if data["pop"].get("ivr_path") else 0
                    out.write(f"{data['call']['call_id']} {time.monotonic()} {path}\n")
                    out.flush()

        settle_heap()
        out.write("READY\n")
        out.flush()
        await asyncio.gather(*(reader(ws) for ws in sockets))


# ---------------------------------------------------------------------- driver

class Proc:
    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, ready: bytes) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *self.args, cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        assert line.strip() == ready, line

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.terminate()
            await self.proc.wait()


async def phase(standin: AsteriskStandIn, a_url: str, sides: list[tuple[str, list[str]]],
                rate: float, seconds: float, ivr_seconds: float, owners: int, n_agents: int,
                first_call: int) -> dict[str, Any]:
    """``sides``: (server URL, the tokens of the agents signed in there)."""
    received: dict[str, tuple[float, int, int]] = {}  # call id → (t, side, has path)
    clients = [Proc("--agents", url, ",".join(tokens)) for url, tokens in sides]
    for c in clients:
        await c.start(b"READY")
    agent_side = {}
    index = 0
    for side, (_url, tokens) in enumerate(sides):
        for _ in tokens:
            agent_side[index] = side
            index += 1

    async def collect(side: int, proc: Proc) -> None:
        assert proc.proc is not None and proc.proc.stdout is not None
        while line := await proc.proc.stdout.readline():
            call_id, t, path = line.decode().split()
            received.setdefault(call_id, (float(t), side, int(path)))

    collectors = [asyncio.create_task(collect(i, c)) for i, c in enumerate(clients)]
    loop = asyncio.get_running_loop()
    rng = random.Random(first_call)
    sent_at: dict[str, float] = {}
    pending: list[asyncio.Task[Any]] = []
    handles: list[asyncio.TimerHandle] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50))

    async def ivr(lid: str) -> None:
        async with http.post(a_url + "/bench/ivr", json={"linkedid": lid, "step": "报修"}) as r:
            assert r.status == 204

    def ring(lid: str, frames: bytes, hangup: bytes) -> None:
        sent_at[lid] = time.monotonic()
        standin.send_raw(frames)
        handles.append(loop.call_later(2.0, standin.send_raw, hangup))

    expected = int(rate * seconds)
    start = time.monotonic()
    for i in range(expected):
        call = first_call + i
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lid = f"1763800000.{call}"
        comes_in, agent_called, hangup = frames_for(call, owner_number(rng.randrange(owners)),
                                                    rng.randrange(n_agents))
        standin.send_raw(comes_in)
        handles.append(loop.call_later(ivr_seconds / 2, lambda lid=lid: pending.append(
            asyncio.ensure_future(ivr(lid)))))
        handles.append(loop.call_later(ivr_seconds, ring, lid, agent_called, hangup))
    await asyncio.sleep(ivr_seconds + 3)
    await asyncio.gather(*pending, return_exceptions=True)
    for h in handles:
        h.cancel()
    await http.close()
    for c in clients:
        if c.proc is not None:
            c.proc.terminate()
            await c.proc.wait()
    # Read what the clients wrote up to the end (the pipe keeps it): this loop may lag.
    await asyncio.gather(*collectors, return_exceptions=True)

    def stats(side: int | None) -> dict[str, Any]:
        lat = sorted((received[c][0] - t0) * 1000 for c, t0 in sent_at.items()
                     if c in received and (side is None or received[c][1] == side))
        paths = sum(received[c][2] for c in sent_at if c in received
                    and (side is None or received[c][1] == side))

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else -1.0

        return {"received": len(lat), "with_path": paths, "p50_ms": pct(0.5),
                "p90_ms": pct(0.9), "p99_ms": pct(0.99),
                "max_ms": round(lat[-1], 2) if lat else -1.0}

    out: dict[str, Any] = {"calls": expected, "all": stats(None)}
    if len(sides) > 1:
        out["agents_on_a"] = stats(0)
        out["agents_on_b"] = stats(1)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN, timeout=10)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    servers: list[Proc] = []
    standin: AsteriskStandIn | None = None
    try:
        await seed(url, args.owners, args.agents)
        ami_port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            standin = AsteriskStandIn.from_settings(
                server_settings(url, Path(tmp) / "a", 0, ami_port), prompt_seconds=0.05)
            await standin.start()
            tokens_file = Path(tmp) / "tokens.txt"
            ports = [free_port(), free_port()]
            a = Proc("--server", url, str(Path(tmp) / "a"), str(ports[0]), str(ami_port),
                     str(tokens_file))
            servers.append(a)
            await a.start(b"ready")
            tokens = tokens_file.read_text().split()[:args.agents]
            a_url, b_url = (f"http://127.0.0.1:{p}" for p in ports)
            await asyncio.sleep(2)  # the link logs in and resyncs
            single = await phase(standin, a_url, [(a_url, tokens)], args.rate, args.seconds,
                                 args.ivr_seconds, args.owners, args.agents, 0)
            b = Proc("--server", url, str(Path(tmp) / "b"), str(ports[1]), str(ami_port), "")
            servers.append(b)
            await b.start(b"ready")
            await asyncio.sleep(2)
            half = args.agents // 2
            pair = await phase(standin, a_url, [(a_url, tokens[:half]), (b_url, tokens[half:])],
                               args.rate, args.seconds, args.ivr_seconds, args.owners,
                               args.agents, 1_000_000)
            for s in servers:
                await s.stop()
            await standin.stop()
            standin = None
        if not single["all"]["received"] or not pair["all"]["received"]:
            # a figure of nothing is no figure (agents outside the call's community get none)
            raise SystemExit("screenpop_cluster: no pop reached an agent")
        return {"bench": "screenpop_cluster", "backend": "postgresql", "owners": args.owners,
                "agents": args.agents, "rate_per_s": args.rate, "ivr_seconds": args.ivr_seconds,
                "single_server": single, "two_servers": pair,
                "measured_from": "QueueCallerJoin+AgentCalled bytes written to the servers' AMI "
                                 "sockets to the ringing pop decoded by the agent's client"}
    finally:
        for s in servers:
            await s.stop()
        if standin is not None:
            await standin.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--server":
        url, data_dir, http_port, ami_port, tokens_file = sys.argv[2:7]
        asyncio.run(serve(url, Path(data_dir), int(http_port), int(ami_port), tokens_file))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--agents":
        asyncio.run(agents(sys.argv[2], sys.argv[3].split(",")))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--owners", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--ivr-seconds", type=float, default=3.0)
    print(json.dumps(asyncio.run(run(ap.parse_args())), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
