"""Voicemail → ticket latency: a 30 s message appears in the spool (renamed in, as
app_voicemail does), ``voicemail.left`` is published (as the AMI link does on
MessageWaiting), and the clock stops when the ticket is visible in the API.

Runs the real app (create_app + setup_tickets) on a real socket with SQLite.
With ``--model`` and ``recordings.transcribe`` present it uses the vosk pool;
otherwise no transcriber (the ticket says 请收听录音), which measures the
ingest alone. Prints one JSON line.

Usage: python bench/voicemail_to_ticket.py [--runs 5] [--model PATH] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import wave
from pathlib import Path

import aiohttp
from aiohttp import web

from callcenter.app import create_app
from callcenter.appkeys import BUS, SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.bus import DomainEvent
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets, transcriber_from_settings

FIXTURE = (Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asterisk"
           / "voicemail-spool" / "default" / "8000" / "INBOX")


def make_message(spool: Path, n: int, seconds: float) -> None:
    """Write msgNNNN.wav/.txt into tmp/, then rename both into INBOX."""
    with wave.open(str(FIXTURE / "msg0000.wav"), "rb") as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    need = int(seconds * params.framerate) * params.sampwidth
    audio = (frames * (need // len(frames) + 1))[:need]
    tmp = spool / "default" / "8000" / "tmp"
    inbox = spool / "default" / "8000" / "INBOX"
    tmp.mkdir(parents=True, exist_ok=True)
    inbox.mkdir(parents=True, exist_ok=True)
    name = f"msg{n:04d}"
    with wave.open(str(tmp / f"{name}.wav"), "wb") as out:
        out.setparams(params)
        out.writeframes(audio)
    origtime = 1795343499 + n
    txt = (FIXTURE / "msg0000.txt").read_text(encoding="utf-8")
    txt = txt.replace("origtime=1795343499", f"origtime={origtime}")
    txt = txt.replace("msg_id=1795343499-00000000", f"msg_id={origtime}-{n:08d}")
    txt = txt.replace("duration=8", f"duration={int(seconds)}")
    (tmp / f"{name}.txt").write_text(txt, encoding="utf-8")
    os.replace(tmp / f"{name}.wav", inbox / f"{name}.wav")
    os.replace(tmp / f"{name}.txt", inbox / f"{name}.txt")


async def run(runs: int, model: str | None, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        spool = tmp / "spool"
        raw: dict[str, object] = {
            "data_dir": str(tmp / "data"),
            "voicemail": {"spool_dir": str(spool), "scan_interval_s": 3600.0},
        }
        if model:
            raw["vosk"] = {"model_path": model}
        settings = settings_from_mapping(raw)
        async with transcriber_from_settings(settings) as pool:
            app = create_app(settings)
            setup_tickets(app, transcriber=pool)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            async with app[SESSIONMAKER]() as s:
                token = await create_token(s, role="agent", name="bench")
            headers = {"Authorization": f"Bearer {token}"}
            latencies = []
            numbers = []
            try:
                async with aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(total=10)) as http:
                    for i in range(runs):
                        make_message(spool, i, seconds)
                        t0 = time.perf_counter()
                        app[BUS].publish(DomainEvent("voicemail.left",
                                                     {"mailbox": "8000@default"}))
                        deadline = t0 + 600
                        while True:
                            async with http.get(f"http://127.0.0.1:{port}/api/tickets",
                                                headers=headers) as resp:
                                page = await resp.json()
                            if page["total"] > i:
                                break
                            if time.perf_counter() > deadline:
                                raise TimeoutError("no ticket after 600 s")
                            await asyncio.sleep(0.01)
                        latencies.append(time.perf_counter() - t0)
                        numbers.append(page["items"][0]["number"])
            finally:
                await runner.cleanup()
    return {
        "bench": "voicemail_to_ticket",
        "audio_s": seconds,
        "runs": runs,
        "transcriber": "vosk" if pool is not None else "none",
        "latency_s_median": round(statistics.median(latencies), 3),
        "latency_s_max": round(max(latencies), 3),
        "latency_s": [round(x, 3) for x in latencies],
        "tickets": numbers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", help="vosk model directory (default: no transcriber)")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.runs, args.model, args.seconds)), ensure_ascii=False))


if __name__ == "__main__":
    main()
