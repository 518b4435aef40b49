"""A crash-looping ingest neither drops transcripts nor doubles tickets.

A real ingest process (``tests/recordings/crash_runner.py``) is killed with
SIGKILL at random moments, again and again, while 40 messages and one poison
message (its decoding kills the process) go through it. Each restart re-claims
the oldest job; only a worker that really took the job counts an attempt, so
every valid message ends transcribed and triaged, each exactly once, and the
poison one ends after ``max_attempts`` real runs with its recording kept and a
ticket that says 请收听录音 and is marked for night duty to listen."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recordings.models import Recording, TranscriptionJob
from tests.recordings.fakes import Spool
from ticketing.models import Ticket
from ticketing.services import UNRECOGNISED_SUMMARY

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 40
MAX_ATTEMPTS = 3
_DIGITS = "零一二三四五六七八九"


def said(n: int) -> str:
    building = " ".join(_DIGITS[int(d)] for d in str(n % 9 + 1))
    return f"我 是 {building} 栋 一 单元 的 业主 家里 水管 漏水 了"


async def run_until_killed(config: Path, rng: random.Random, *, kill: bool,
                           done: Callable[[], Awaitable[int]]) -> int | None:
    """Start the runner and kill it (or let it finish). Returns its exit code (-9 when killed).

    Half the lives are killed early, at a random moment before any worker has started
    a job (the pool is still warming up): those must not count an attempt. The others
    are killed at a random moment soon after a job was done in that life, often in the
    middle of the next one. So a valid job is interrupted in the middle at most once
    however fast the machine is, and only counting attempts that never ran can push
    it to ``max_attempts``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recordings.crash_runner", str(config), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":  # died on its own before it was ready (the poison)
        return await proc.wait()
    if kill:
        before = await done()
        exited = asyncio.ensure_future(proc.wait())
        started = asyncio.ensure_future(proc.stdout.readline())
        try:
            if rng.random() < 0.5:  # early: while the pool warms up, before any job runs
                await asyncio.wait({exited, started}, timeout=rng.uniform(0.0, 0.15))
                if not exited.done() and not started.done():
                    proc.send_signal(signal.SIGKILL)
            while not exited.done() and await done() == before:
                await asyncio.wait({exited}, timeout=0.01)
            if not exited.done():
                await asyncio.wait({exited}, timeout=rng.uniform(0.0, 0.12))
            if not exited.done():
                proc.send_signal(signal.SIGKILL)
        finally:
            await asyncio.wait_for(exited, 120)
            started.cancel()
        return exited.result()
    return await asyncio.wait_for(proc.wait(), 120)


@pytest.mark.slow
async def test_sigkill_loop_loses_and_doubles_nothing_and_poison_ends(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    texts: dict[str, str] = {}
    for n in range(MESSAGES):
        wav = spool.add(freq=300 + 7 * n, caller=f"<1390000{n:04d}>", msg_id=f"{1000 + n}-ok")
        texts[hashlib.sha256(wav.read_bytes()).hexdigest()] = said(n)
    poison = spool.add(freq=2900, caller="<13911110000>", msg_id="999-poison")
    poison_sha = hashlib.sha256(poison.read_bytes()).hexdigest()
    config = tmp_path / "runner.json"
    config.write_text(json.dumps({
        "db_url": db_url, "spool": str(spool.root), "data_dir": str(tmp_path / "data"),
        "texts": texts, "poison": poison_sha, "warmup_s": 0.15, "decode_s": 0.03,
        "max_attempts": MAX_ATTEMPTS}), encoding="utf-8")

    async def done() -> int:
        async with sessionmaker() as s:
            return len((await s.scalars(select(TranscriptionJob.id).where(
                TranscriptionJob.state == "done"))).all())

    rng = random.Random(20261203)
    kills = 0
    for _ in range(25):  # a crash loop: killed at random, restarted at once
        code = await run_until_killed(config, rng, kill=True, done=done)
        kills += code == -signal.SIGKILL
    for _ in range(MAX_ATTEMPTS + 2):  # then left to finish (the poison still kills it)
        if await run_until_killed(config, rng, kill=False, done=done) == 0:
            break
    else:
        raise AssertionError("the ingest never finished: the poison message loops")
    assert kills >= 12

    async with sessionmaker() as s:
        recs = (await s.scalars(select(Recording).order_by(Recording.id))).all()
        jobs = {j.recording_id: j for j in (await s.scalars(select(TranscriptionJob))).all()}
        tickets = (await s.scalars(select(Ticket).order_by(Ticket.id))).all()
    assert len(recs) == MESSAGES + 1  # none lost, none registered twice
    assert len(tickets) == MESSAGES + 1
    assert len({t.recording_id for t in tickets}) == MESSAGES + 1  # one ticket each
    by_rec = {t.recording_id: t for t in tickets}
    poisoned = next(r for r in recs if r.msg_id == "999-poison")
    for rec in recs:
        job, ticket = jobs[rec.id], by_rec[rec.id]
        if rec.id == poisoned.id:
            continue
        assert (job.state, job.error_id) == ("done", None), (rec.msg_id, job.reason)
        assert 1 <= job.attempts <= MAX_ATTEMPTS
        assert job.transcript == texts[rec.sha256]
        assert ticket.category == "plumbing" and not ticket.needs_listen
        assert ticket.summary.startswith("【给排水】")
    job, ticket = jobs[poisoned.id], by_rec[poisoned.id]
    assert (job.state, job.error_id, job.attempts) == ("failed", "too_many_attempts",
                                                       MAX_ATTEMPTS)
    assert ticket.summary == UNRECOGNISED_SUMMARY
    assert ticket.needs_listen and ticket.listen_reason == "too_many_attempts"
    stored = tmp_path / "data" / "recordings" / poisoned.stored_path
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == poison_sha  # kept
