"""What a Prometheus scrape of ``/metrics`` costs a busy server.

The server (``create_app``, SQLite in a temporary folder, no Asterisk) gets a
registry filled as after a day's work: two AMI links, every AGI command verb on
both transports, every call outcome in three communities, two queues, paging,
and ``--tickets`` tickets and transcription jobs in the database for the two
scrape-time queries. Then ``--scrapes`` scrapes, one after the other, over real
sockets: on the main listener with the metrics token (number masking included)
and on the ``metrics_port`` listener. Meanwhile a 1 ms ticker measures how late
the event loop runs (what a scrape costs the calls being served). CPU a scrape
(``process_time``, client included) is the figure that holds on a busy machine.
One JSON line.

    python bench/metrics_scrape.py [--scrapes 200] [--tickets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.metrics.http import METRICS_ENDPOINT
from callcenter.metrics.setup import METRICS
from callcenter.settings import FastAgiSettings, HttpSettings, Secret, Settings
from recordings.models import Recording, TranscriptionJob
from ticketing.models import Ticket

TOKEN = "bench-token"
COMMANDS = ("ANSWER", "STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "SAY NUMBER", "SAY DIGITS",
            "GET VARIABLE", "SET VARIABLE", "EXEC Dial", "EXEC Queue", "EXEC VoiceMail",
            "CHANNEL STATUS", "RECORD FILE", "VERBOSE", "HANGUP", "ASYNCAGI BREAK")


def fill(app: web.Application) -> int:
    m = app[METRICS]
    for link in ("pbx1", "pbx2"):
        m.ami_link_up.labels(link).set(1)
        m.ami_reconnects.labels(link).inc()
        m.ami_events.labels(link).inc(250_000)
    for transport in ("fastagi", "asyncagi"):
        for command in COMMANDS:
            m.agi_command_seconds.labels(transport, command).observe(0.02)
    for outcome in ("answered", "abandoned", "voicemail", "emergency", "ivr_only"):
        for community in ("lakeside", "binjiang", "hupan"):
            m.calls.labels(outcome, community).inc(40)
    for queue in ("frontdesk", "repairs"):
        m.queue_wait_seconds.labels(queue).observe(25)
        m.queue_abandoned.labels(queue).inc()
    m.screenpop_frames.inc(500)
    m.screenpop_latency_seconds.observe(0.03)
    for outcome in ("accepted", "passed", "no_answer", "busy", "failed", "deferred"):
        m.paging_steps.labels(outcome).inc()
    for via in ("phone", "console", "api"):
        m.paging_acks.labels(via).inc()
    for outcome in ("ok", "error", "timeout"):
        m.transcription_job_seconds.labels(outcome).observe(4)
    return sum(len(f.samples) for f in m.registry.collect())


async def seed(app: web.Application, n: int) -> None:
    now = datetime.now(UTC)
    async with app[SESSIONMAKER]() as s:
        for i in range(n):
            rec = Recording(context="default", mailbox="8000", msg_id=f"m{i}",
                            sha256=f"{i:064d}", stored_path=f"r{i}.wav", received_at=now)
            rec.job = TranscriptionJob(state=("done", "done", "failed", "queued")[i % 4])
            s.add(rec)
            age = timedelta(minutes=i)
            s.add(Ticket(number=f"T{i}", source="phone", category="plumbing",
                         priority="emergency" if i % 10 == 0 else "normal",
                         department="engineering", state=("new", "dispatched", "closed")[i % 3],
                         summary="漏水", created_at=now - age, updated_at=now - age))
        await s.commit()


async def scrape_all(url: str, n: int, headers: dict[str, str]
                     ) -> tuple[list[float], int, float]:
    """Wall time of each scrape, the body's size, and CPU ms a scrape (this
    process: the server and the client both)."""
    times, size = [], 0
    cpu = time.process_time()
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            start = time.perf_counter()
            async with http.get(url, headers=headers) as resp:
                body = await resp.read()
                assert resp.status == 200, resp.status
            times.append(time.perf_counter() - start)
            size = len(body)
    return times, size, (time.process_time() - cpu) / n * 1000


async def run(scrapes: int, tickets: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), fastagi=FastAgiSettings(enabled=False),
                            http=HttpSettings(metrics_token=Secret(TOKEN), metrics_port=0))
        app = create_app(settings, transcribe=False)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        samples = fill(app)
        await seed(app, tickets)
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                start = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - start - 0.001)

        tick = asyncio.create_task(ticker())
        main, size, main_cpu = await scrape_all(str(server.make_url("/metrics")), scrapes,
                                      {"Authorization": f"Bearer {TOKEN}"})
        own, _, own_cpu = await scrape_all(f"http://127.0.0.1:{app[METRICS_ENDPOINT].port}/metrics",
                                  scrapes, {})
        stop.set()
        await tick
        await server.close()

    def ms(values: list[float], q: float) -> float:
        return round(statistics.quantiles(values, n=100)[int(q) - 1] * 1000, 2)

    return {"bench": "metrics_scrape", "samples": samples, "bytes": size, "scrapes": scrapes,
            "tickets_and_jobs": tickets,
            "main_listener_ms": {"p50": ms(main, 50), "p95": ms(main, 95),
                                 "cpu": round(main_cpu, 2)},
            "metrics_port_ms": {"p50": ms(own, 50), "p95": ms(own, 95), "cpu": round(own_cpu, 2)},
            "loop_lag_ms": {"p99": ms(lags, 99), "max": round(max(lags) * 1000, 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--tickets", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.scrapes, args.tickets))))


if __name__ == "__main__":
    main()
