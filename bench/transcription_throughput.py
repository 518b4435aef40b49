"""Transcription throughput of TranscriberPool with 1 and 2 worker processes.

Decodes the Korean test fixture (8 kHz telephone audio, resampled to the model's
16 kHz) enough times to make about ``--audio-seconds`` of audio, all jobs
submitted at once, and prints one JSON line:

* ``audio_s_per_s``: seconds of audio transcribed per wall-clock second;
* ``rtf``: real-time factor, wall seconds per second of audio (lower is better);
* ``start_s``: time to start the pool (model load, not counted above).

Usage (from the repository root):

    python bench/transcription_throughput.py [--audio-seconds 30] [--workers 1 2] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recordings.audio import read_audio  # noqa: E402
from recordings.models import find_model  # noqa: E402
from recordings.transcribe import TranscriberPool  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "recordings" / "ko_hello_8k.wav"


async def measure(
    model: Path, workers: int, audio: Path, jobs: int, clip_s: float
) -> dict[str, object]:
    started = time.perf_counter()
    async with TranscriberPool(model, workers=workers, recycle_after=10_000) as pool:
        start_s = time.perf_counter() - started
        await asyncio.gather(*(pool.transcribe(audio) for _ in range(workers)))  # warm-up
        began = time.perf_counter()
        results = await asyncio.gather(*(pool.transcribe(audio) for _ in range(jobs)))
        wall = time.perf_counter() - began
    audio_s = clip_s * jobs
    return {
        "workers": workers,
        "jobs": jobs,
        "audio_s": round(audio_s, 2),
        "wall_s": round(wall, 3),
        "audio_s_per_s": round(audio_s / wall, 3),
        "rtf": round(wall / audio_s, 4),
        "start_s": round(start_s, 2),
        "recognised": sorted({r.text for r in results}),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    model = find_model(args.model)
    clip_s = read_audio(args.audio).duration_s
    jobs = max(1, math.ceil(args.audio_seconds / clip_s))
    results = [await measure(model, n, args.audio, jobs, clip_s) for n in args.workers]
    return {
        "bench": "transcription_throughput",
        "model": model.parent.name if model.name == "model" else model.name,
        "audio_file": args.audio.name,
        "clip_s": round(clip_s, 3),
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default=None, help="model folder (default: packaged test model)")
    parser.add_argument("--audio", type=Path, default=FIXTURE)
    args = parser.parse_args()
    # stdout carries the one JSON line; logs go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
