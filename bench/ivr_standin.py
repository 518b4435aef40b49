"""The whole server against the Asterisk stand-in: 1,000 simultaneous callers
over FastAGI, each walking three menu levels (主菜单 → 报修 → 水电 → 漏水 → queue).

Unlike ``ivr_concurrency.py`` (the engine and transport alone, against a bare
driver), this runs ``create_app`` as ``callcenter run`` would: the directory on
SQLite (the demo community), the AMI link receiving every event of the 1,000
calls, the call log, the screen-pop hub building each caller's pop, and the IVR
over FastAGI. The stand-in runs in its own process, as Asterisk would.

Latency is measured twice. As Asterisk sees it: on each channel, from the
stand-in writing an AGI result (``AGIExecEnd``) to the server's next command
arriving (``AGIExecStart``), which includes the stand-in's own event loop (a
Python process playing 1,000 calls on one core; Asterisk is C, a thread per
channel). Inside the server (``server_*``): from the IVR reading a reply to it
writing the next command, which includes the server's event loop queueing. Memory per call is the server's
peak resident set during the calls minus its resident set before, over the
number of calls. Prints one JSON line.
Usage: ulimit -n 8192; python bench/ivr_standin.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import resource
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory
from zoneinfo import ZoneInfo

from aiohttp import web
from ivr_concurrency import write_three_level_menus  # bench/, beside this script

from callcenter.app import create_app
from callcenter.appkeys import AMI_LINKS, CALL_LOG
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.demo import demo_callers, demo_settings, seed_directory, seed_staff
from callcenter.heap import settle_heap
from callcenter.settings import Settings
from ivr.agi import AgiResult
from ivr.fastagi import FastAgiChannel

OFFICE_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class OfficeHoursClock(SystemClock):
    """Real time, but the IVR always finds it Monday 10:00 (the office menus)."""

    def now(self) -> datetime:
        return OFFICE_HOURS


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def asterisk_side(settings: Settings, numbers: list[str], calls: int, conn: Connection) -> None:
    """The stand-in in this (child) process: wait for "go", place the calls, measure."""
    import gc

    from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Press, Wait

    gc.disable()  # it stands in for Asterisk, which has no collector pauses
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8 * calls + 256)), hard))

    async def go() -> dict[str, object]:
        standin = AsteriskStandIn.from_settings(settings, ivr_transport="fastagi",
                                                prompt_seconds=1.0, event_log_size=10)
        ended: dict[str, tuple[float, str]] = {}
        latencies: list[float] = []
        by_command: dict[str, list[float]] = {}
        placed: dict[str, float] = {}
        setup: list[float] = []
        joined = 0
        emit = standin.pbx.emit

        def timed(fields: object) -> None:
            nonlocal joined
            d = dict(fields)  # type: ignore[call-overload]
            event = d.get("Event")
            if event == "AGIExecEnd":
                ended[d["Channel"]] = (time.perf_counter(), d.get("Command", "").split(" ")[0])
            elif event == "AGIExecStart":
                first = placed.pop(d["Channel"], None)
                if first is not None:
                    setup.append(time.perf_counter() - first)
                sent = ended.pop(d["Channel"], None)
                if sent is not None:
                    gap = time.perf_counter() - sent[0]
                    latencies.append(gap)
                    by_command.setdefault(sent[1], []).append(gap)
            elif event == "QueueCallerJoin":
                joined += 1
            emit(fields)  # type: ignore[arg-type]

        standin.pbx.emit = timed  # type: ignore[method-assign]
        await standin.start()
        conn.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
        rng = random.Random(4)
        t0 = time.perf_counter()
        for i in range(calls):
            # The greeting and the main menu's prompt last 2 s, each later prompt 1 s;
            # a key comes while the menu waits for it (6 s), as a caller's would.
            think = [rng.uniform(3.0, 4.0), rng.uniform(1.5, 2.5), rng.uniform(1.5, 2.5)]
            call = standin.place_call(Caller(
                number=numbers[i % len(numbers)], did="4008001234",
                script=[Wait(think[0]), Press("1"), Wait(think[1]), Press("1"),
                        Wait(think[2]), Press("1"), Wait(4.0), HangUp()]))
            placed[call.app.name] = time.perf_counter()
        while standin.pbx.channels and time.perf_counter() - t0 < 120:  # noqa: ASYNC110 (polls the PBX)
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - t0
        left = len(standin.pbx.channels)
        await standin.stop()
        slowest = {c: round(max(v) * 1000, 1) for c, v in by_command.items()}
        setup.sort()
        return {"latencies": latencies, "joined": joined,
                "setup_p50_ms": round(statistics.median(setup) * 1000, 1) if setup else None,
                "setup_p99_ms": round(setup[int(len(setup) * 0.99) - 1] * 1000, 1)
                if setup else None, "slowest_after_ms": slowest, "wall_s": wall, "channels_left": left}

    conn.send(asyncio.run(go()))


def time_the_server(latencies: list[float]) -> None:
    """Inside the server: from a reply read by the IVR to its next command written."""
    read_at: dict[int, float] = {}
    send = FastAgiChannel.send_command

    async def timed(self: FastAgiChannel, command: str) -> AgiResult:
        last = read_at.pop(id(self), None)
        if last is not None:
            latencies.append(time.perf_counter() - last)
        try:
            return await send(self, command)
        finally:
            read_at[id(self)] = time.perf_counter()

    FastAgiChannel.send_command = timed  # type: ignore[method-assign]


async def run(calls: int) -> dict[str, object]:
    inside: list[float] = []
    time_the_server(inside)
    with TemporaryDirectory() as tmp:
        menus = write_three_level_menus(Path(tmp))
        settings = replace(demo_settings(Path(tmp), 0), ivr_menus=(menus,))
        engine = make_engine(settings.database_url)
        await migrate(engine)
        sm = make_sessionmaker(engine)
        await seed_directory(sm)
        await seed_staff(sm, datetime.now(UTC).date())
        numbers = [re.sub(r"\D", "", n) for n, _ in await demo_callers(sm, limit=300)]
        await engine.dispose()

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=asterisk_side, args=(settings, numbers, calls, child))
        proc.start()
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, parent.recv) == "ready"

        app = create_app(settings, clock=OfficeHoursClock(), transcribe=False)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        for _ in range(200):
            if app[AMI_LINKS].link_states().get("standin") == "connected":
                break
            await asyncio.sleep(0.05)
        settle_heap()  # as callcenter.server.serve does once the server is up
        await asyncio.sleep(0.5)
        base = peak = rss_kb()

        lag: list[float] = []

        async def sample() -> None:
            """Peak memory, and the event loop's lag: how late a 5 ms sleep wakes
            (how long a reply that has arrived can wait before the IVR reads it)."""
            nonlocal peak
            n = 0
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                lag.append(time.perf_counter() - t - 0.005)
                n += 1
                if n % 20 == 0:
                    peak = max(peak, rss_kb())

        sampler = asyncio.create_task(sample())
        parent.send("go")
        result = await loop.run_in_executor(None, parent.recv)
        sampler.cancel()
        proc.join(10)
        # The server's record of every call: AMI events behind, then the call log.
        done_at = time.perf_counter()
        rows = []
        while time.perf_counter() - done_at < 60:
            rows = [r for r in await app[CALL_LOG].search(limit=calls) if r.ended_at]
            if len(rows) >= calls:
                break
            await asyncio.sleep(0.2)
        log_lag = time.perf_counter() - done_at
        paths: dict[str, int] = {}
        for row in rows:
            key = " → ".join(row.ivr_path or []) or "-"
            paths[key] = paths.get(key, 0) + 1
        await runner.cleanup()
    lat = sorted(result["latencies"])
    own = sorted(inside)
    late = sorted(lag)
    return {
        "bench": "ivr_standin", "transport": "fastagi", "server": "create_app, SQLite",
        "calls": calls, "completed": result["joined"], "menu_levels": 3,
        "channels_left": result["channels_left"], "agi_commands": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 3),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3),
        "call_setup_p50_ms": result["setup_p50_ms"],
        "call_setup_p99_ms": result["setup_p99_ms"],
        "server_p50_ms": round(statistics.median(own) * 1000, 3),
        "server_p99_ms": round(own[int(len(own) * 0.99) - 1] * 1000, 3),
        "server_loop_lag_p99_ms": round(late[int(len(late) * 0.99) - 1] * 1000, 3),
        "wall_s": round(result["wall_s"], 2),
        "slowest_after_ms": result["slowest_after_ms"],
        "memory_per_call_kb": round((peak - base) / calls, 1),
        "call_log_paths": paths,
        "call_log_behind_s": round(log_lag, 2),
        "targets": {"p99_ms": 5, "memory_per_call_kb": 100},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.calls)), ensure_ascii=False))


if __name__ == "__main__":
    main()
