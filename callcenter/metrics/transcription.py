"""Transcription: job time as the ingest sees it, backlog from the database.

The decoding runs in worker processes (``recordings/worker.py``), where no
metric of this process can be touched; the time of a job is therefore taken
here, around the pool's ``transcribe``: from the moment a worker starts on the
recording (the pool's ``on_start``) to its transcript or error.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from recordings.ingest import Transcriber
from recordings.models import TranscriptionJob

BACKLOG_STATES = ("queued", "running")


class TimedTranscriber:
    """A ``recordings.ingest.Transcriber`` that times each job of ``inner``."""

    def __init__(self, inner: Transcriber, histogram: Histogram) -> None:
        self.inner = inner
        self._histogram = histogram

    async def transcribe(self, path: Path, *,
                         on_start: Callable[[], Awaitable[None]] | None = None) -> Any:
        started = time.perf_counter()

        async def start() -> None:
            nonlocal started
            started = time.perf_counter()  # a worker takes it (again, after a crash)
            if on_start is not None:
                await on_start()

        outcome = "error"
        try:
            result = self.inner.transcribe(path, on_start=start)
            transcript = await result if inspect.isawaitable(result) else result
            outcome = "ok"
            return transcript
        except (TimeoutError, asyncio.CancelledError):
            outcome = "timeout"
            raise
        finally:
            self._histogram.labels(outcome).observe(time.perf_counter() - started)


def timed_transcriber(inner: Transcriber | None, histogram: Histogram) -> Transcriber | None:
    return None if inner is None else TimedTranscriber(inner, histogram)


async def backlog_counts(session: AsyncSession) -> dict[str, int]:
    """``{state: jobs}`` for the unfinished states, each present (0 when none)."""
    rows = (await session.execute(
        select(TranscriptionJob.state, func.count(TranscriptionJob.id))
        .where(TranscriptionJob.state.in_(BACKLOG_STATES))
        .group_by(TranscriptionJob.state))).all()
    counts = dict.fromkeys(BACKLOG_STATES, 0)
    counts.update({str(state): int(n) for state, n in rows})
    return counts
