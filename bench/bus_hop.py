"""The hop between servers: an event published on server A's bus to the moment server
B's bus hands it to a remote handler, through the real bridge (``PgBus``: NOTIFY on
PostgreSQL, LISTEN on another connection), at a steady rate.

The two buses run in two processes (this one sends; ``--receiver`` listens), each
with its own bridge and its own asyncpg connection, as two servers would; both read
the same system-wide monotonic clock. Events are ``call.ivr_choice`` of the size a
real one has (a call's fields and a three-step path). This is the part a pop on
server B waits for beyond the single-server pop (``bench/screenpop_latency.py``):
the IVR path A learned.

Prints one JSON line.
Usage: python bench/bus_hop.py [--rate 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from callcenter.bus import DomainEvent, EventBus
from callcenter.cluster.bridge import PgBus
from callcenter.cluster.codec import encode

PG_ADMIN = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def receiver(dsn: str) -> None:
    """Print the monotonic time each event arrives, one line each: ``seq t``."""
    bus = EventBus()
    bridge = PgBus(dsn, bus, server_id="server-b")

    async def heard(event: DomainEvent) -> None:
        sys.stdout.write(f"{event.data['seq']} {time.monotonic()}\n")

    bus.subscribe("call.ivr_choice", heard, remote=True)
    listening = asyncio.Event()

    async def on_connected() -> None:
        listening.set()

    bridge.on_connected(on_connected)
    await bridge.start()
    await listening.wait()  # LISTEN is in place
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    sys.stdout.flush()
    await bridge.stop()


async def run(rate: float, seconds: float) -> dict[str, Any]:
    name = f"cc_bench_bus_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--receiver", dsn, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        assert proc.stdout is not None and proc.stdin is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        bus = EventBus()
        bridge = PgBus(dsn, bus, server_id="server-a")
        await bridge.start()
        await bridge.connected.wait()
        sent: dict[int, float] = {}
        payload_bytes = 0

        async def measure(event: DomainEvent) -> None:
            nonlocal payload_bytes
            payload_bytes = max(payload_bytes, len(encode(event, bridge.server_id).encode()))

        bus.subscribe("call.ivr_choice", measure)
        total = int(rate * seconds)
        start = time.monotonic()
        now = datetime.now(UTC)
        for seq in range(total):
            due = start + seq / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[seq] = time.monotonic()
            bus.publish(DomainEvent("call.ivr_choice", {
                "seq": seq, "linkedid": f"1763800000.{seq}", "uniqueid": f"1763800000.{seq}",
                "asterisk": "pbx1", "community": "lakeside", "caller_number": "13812345678",
                "caller_name": "王建国", "did": "4008001234", "state": "ivr", "queue": None,
                "started_at": now, "step": "水电", "ivr_path": ["报修", "水电", "湖畔花园1栋1单元101室"],
            }, at=now))
        for _ in range(600):  # the bridge's own counter, at most 30 s
            if bridge.sent >= total:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the last ones cross
        await bridge.stop()
        proc.stdin.close()
        out = (await asyncio.wait_for(proc.stdout.read(), 30)).decode().split("\n")
        await proc.wait()
        got = {int(s): float(t) for s, t in (line.split() for line in out if line.strip())}
        lat = [(got[s] - sent[s]) * 1000 for s in sent if s in got]
        return {"bench": "bus_hop", "rate": rate, "events": total, "received": len(lat),
                "p50_ms": round(statistics.median(lat), 2), "p90_ms": round(_pct(lat, 90), 2),
                "p99_ms": round(_pct(lat, 99), 2), "max_ms": round(max(lat), 2),
                "payload_bytes": payload_bytes}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver(args.receiver))
        return
    print(json.dumps(asyncio.run(run(args.rate, args.seconds))))


if __name__ == "__main__":
    main()
