"""An ingest process for the crash-loop test: ``python -m tests.recordings.crash_runner CONFIG``.

CONFIG (JSON): ``db_url``, ``spool``, ``data_dir``, ``texts`` (sha256 of a WAV →
what it says), ``poison`` (sha256 of the WAV whose decoding kills its process),
``warmup_s`` (how long the "pool" takes to load its model at each start, as a
real one does), ``decode_s`` (time per message), ``max_attempts``.

Prints ``ready`` once imported and connected, ``started`` each time a worker
begins decoding a job, then runs the real
``VoicemailIngest`` until no job is queued or running and exits 0. The test
kills it with SIGKILL at random moments and starts it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from callcenter.bus import EventBus
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.directory.services import lookup_by_number
from recordings.ingest import VoicemailIngest
from recordings.models import TranscriptionJob
from tests.recordings.fakes import FakeTranscriber, FakeTranscript, simple_triage
from ticketing.services import TicketService


class SlowStartingPool(FakeTranscriber):
    """Decodes like the fake (reads the WAV), but first waits ``warmup_s`` after
    the process started, like a pool whose worker is still loading its model,
    and kills its own process (the server's, here) on the poison file once a
    worker has taken it: a job that crashes whatever runs it."""

    def __init__(self, texts: dict[str, str], poison: str, warmup_s: float,
                 decode_s: float) -> None:
        super().__init__()
        self.texts = texts
        self.poison = poison
        self.ready_at = time.monotonic() + warmup_s
        self.decode_s = decode_s

    async def transcribe(self, path: Path, *,
                         on_start: Callable[[], Awaitable[None]] | None = None
                         ) -> FakeTranscript:
        await asyncio.sleep(max(0.0, self.ready_at - time.monotonic()))
        if on_start is not None:
            await on_start()
        print("started", flush=True)  # the test kills before this line, or after a job is done
        if hashlib.sha256(await asyncio.to_thread(path.read_bytes)).hexdigest() == self.poison:
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.sleep(self.decode_s)
        return await super().transcribe(path)


async def main(config: dict[str, object]) -> int:
    engine = make_engine(str(config["db_url"]))
    sm = make_sessionmaker(engine)
    clock = SystemClock()
    pool = SlowStartingPool(dict(config["texts"]), str(config["poison"]),  # type: ignore[call-overload]
                            float(config["warmup_s"]), float(config["decode_s"]))  # type: ignore[arg-type]
    ingest = VoicemailIngest(sm, Path(str(config["spool"])), Path(str(config["data_dir"])), pool,
                             simple_triage, TicketService(sm, EventBus(), clock),
                             lookup_by_number, clock, scan_interval_s=3600,
                             max_attempts=int(config["max_attempts"]))  # type: ignore[call-overload]
    print("ready", flush=True)
    await ingest.recover()
    while True:
        await ingest.scan_and_process()
        async with sm() as s:
            left = (await s.scalars(select(TranscriptionJob.id).where(
                TranscriptionJob.state.in_(("queued", "running"))))).all()
        if not left:
            break
    await engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
