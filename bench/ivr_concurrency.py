"""Concurrent IVR calls on one server process: 1,000 simultaneous callers over
FastAGI, each walking three menu levels.

The driver plays Asterisk on real sockets, in its own process: it answers each AGI command after
0.2-1 s (a prompt playing, a caller thinking; all 1,000 calls overlap) and measures the server's added latency per command (from the driver's reply
to the next command arriving), calls completed, and memory per call (traced
Python allocations at peak, divided by the number of calls in flight).
Prints one JSON line. Targets (issue 4): p99 under 5 ms, no call lost, under
100 KB per call.
Usage: python bench/ivr_concurrency.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import time
import tracemalloc
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from zoneinfo import ZoneInfo

from callcenter.clock import ManualClock
from callcenter.heap import settle_heap
from ivr.channel import Channel
from ivr.engine import CallerInfo, IvrEngine, RoomRef, VoicemailContext
from ivr.fastagi import FastAgiChannel, FastAgiServer
from ivr.menus import MenuStore
from ivr.timeconditions import TimeModes

MENUS = DEFAULT = Path(__file__).resolve().parent.parent / "ivr" / "menus" / "default.toml"
THREE_LEVELS = """
[menus.repair_water]
label = "水电"
prompts = ["repair-options"]
fallback = { action = "queue", queue = "frontdesk" }
[menus.repair_water.options]
"1" = { label = "漏水", action = "queue", queue = "frontdesk" }
"""


def write_three_level_menus(folder: Path) -> Path:
    """The sample menus with a third level under 报修 → 水电 (→ 漏水 → queue)."""
    path = folder / "menus.toml"
    path.write_text(DEFAULT.read_text(encoding="utf-8").replace(
        '"1" = { label = "水电", action = "queue", queue = "frontdesk" }',
        '"1" = { label = "水电", action = "menu", menu = "repair_water" }') + THREE_LEVELS,
        encoding="utf-8")
    return path


class Services:
    """In-memory services: the bench measures the engine and the transport."""

    async def identify_caller(self, number: str) -> CallerInfo:
        return CallerInfo("业主", (RoomRef(1, "3栋1201室"),))

    async def queue(self, channel: Channel, queue: str) -> str | None:
        await channel.exec("Queue", f"{queue},r,,,300")
        return None

    async def route_oncall(self, channel: Channel, community: str | None, role: str,
                           context: VoicemailContext | None = None) -> str:
        return "answered"

    async def voicemail(self, channel: Channel, mailbox: str,
                        context: VoicemailContext | None = None) -> None:
        return None

    async def emergency(self, channel: Channel, *, community: str | None, category: str,
                        caller: str, room: RoomRef | None, call_id: str) -> None:
        return None

    async def transfer(self, channel: Channel, extension: str) -> None:
        return None

    async def ticket_status(self, digits: str) -> str | None:
        return None

    async def fee_balance(self, room_id: int) -> Decimal | None:
        return Decimal(0)

    async def find_rooms(self, community: str | None, building: str, room: str,
                         unit: str | None = None) -> list[RoomRef]:
        return []

    async def record_choice(self, call_id: str, label: str) -> None:
        return None


HEADER = ("agi_network: yes\nagi_network_script: hotline\nagi_channel: PJSIP/trunk-{n}\n"
          "agi_uniqueid: 1700000000.{n}\nagi_callerid: 13812345678\n\n")


async def caller(n: int, port: int, keys: list[str], latencies: list[float]) -> bool:
    rng = random.Random(n)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER.format(n=n).encode())
    await writer.drain()
    pending = list(keys)
    sent_at = 0.0  # the first command (after connect + header) is not a reply latency
    try:
        while True:
            line = await reader.readline()
            if not line:
                return True
            if sent_at:
                latencies.append(time.perf_counter() - sent_at)
            cmd = line.decode()
            if cmd.startswith("STREAM FILE") and not cmd.rstrip().endswith('""') and pending:
                reply = f"200 result={ord(pending.pop(0))} endpos=100\n"
            elif cmd.startswith("GET VARIABLE CHANNEL(linkedid)"):
                reply = f"200 result=1 (1700000000.{n})\n"
            elif cmd.startswith("EXEC Queue"):
                reply = "200 result=0\n"
                writer.write(reply.encode())
                await writer.drain()
                return True
            else:
                reply = "200 result=0\n"
            # A prompt plays for a while before the caller's key comes back.
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            sent_at = time.perf_counter()
            writer.write(reply.encode())
            await writer.drain()
    finally:
        writer.close()


def drive(port: int, calls: int) -> tuple[list[float], int]:
    """Asterisk's side: ``calls`` callers at once, in this (child) process."""

    async def go() -> tuple[list[float], int]:
        latencies: list[float] = []
        results = await asyncio.gather(*(caller(i, port, ["1", "1", "1"], latencies)
                                         for i in range(calls)))
        return latencies, sum(results)

    import gc
    import resource

    # The driver stands in for Asterisk, which is C and has no garbage collector:
    # a collection pause here would be counted against the server.
    gc.disable()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * calls + 256)), hard))
    return asyncio.run(go())


async def run(calls: int, *, trace: bool = False) -> dict[str, object]:
    with TemporaryDirectory() as tmp:
        store = MenuStore(write_three_level_menus(Path(tmp)))
        store.current()
        clock = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        engine = IvrEngine(store, Services(), TimeModes(), clock=clock)
        completed = 0
        all_done = asyncio.Event()

        async def handler(ch: FastAgiChannel) -> None:
            nonlocal completed
            await engine.run(ch, call_id=ch.uniqueid)
            completed += 1
            if completed == calls:
                all_done.set()

        server = FastAgiServer(handler, "127.0.0.1", 0)
        await server.start()
        settle_heap()  # as callcenter.server.serve does once the server is up
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        # The driver (Asterisk's side) runs in its own process, as Asterisk would.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            latencies, ok = await asyncio.get_running_loop().run_in_executor(
                None, pool.apply, drive, (server.port, calls))
        results = [True] * ok
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        try:
            await asyncio.wait_for(all_done.wait(), 30)
        except TimeoutError:
            pass  # reported: completed < calls
        if trace:
            tracemalloc.stop()
        await server.stop()
    lat = sorted(latencies)
    return {
        "bench": "ivr_concurrency", "transport": "fastagi", "calls": calls,
        "completed": completed, "driver_ok": sum(results), "menu_levels": 3,
        "agi_commands": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 3),
        "wall_s": round(wall, 2),
        "memory_per_call_kb": round(peak / calls / 1024, 1),
        "targets": {"p99_ms": 5, "memory_per_call_kb": 100},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    # Latency without tracing (tracemalloc slows every allocation), then memory.
    result = asyncio.run(run(args.calls))
    result["memory_per_call_kb"] = asyncio.run(run(args.calls, trace=True))["memory_per_call_kb"]
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
