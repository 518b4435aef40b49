"""Transcription in worker processes with the real Korean Vosk model.

One pool is shared by the module (loading the model is the cost); tests that
need their own settings (recycling, start failure, close) start small pools.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from recordings.errors import SilentAudio, TranscriptionFailed, TranscriptionTimeout, TruncatedAudio
from recordings.models import find_model
from recordings.transcribe import TranscriberPool, Transcript
from tests.recordings.wavs import KO_HELLO, wav_bytes, write

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODEL = find_model(None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until(condition, what: str, limit: float = 60.0) -> None:
    """Wait for a condition the pool reaches by itself (a worker starting)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the pool has no event for these states
            await asyncio.sleep(0.005)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[TranscriberPool]:
    before = {p.pid for p in multiprocessing.active_children()}
    async with TranscriberPool(MODEL, workers=2, recycle_after=1000, job_timeout=60) as started:
        yield started
    assert {p.pid for p in multiprocessing.active_children()} - before == set()


def _assert_hello(transcript: Transcript) -> None:
    words = [w.word for w in transcript.words]
    assert "엄마" in words, transcript.text
    assert words[-1] == "엄마"
    assert transcript.text.split() == words
    assert transcript.sample_rate == 8000
    assert transcript.model_sample_rate == 16000
    assert transcript.duration_s == pytest.approx(16789 / 8000)
    for word in transcript.words:
        assert 0 <= word.start < word.end <= transcript.duration_s + 0.05
        assert 0 < word.conf <= 1
    umma = transcript.words[-1]
    assert 0.9 < umma.start < umma.end < 2.1  # 엄마 is the second half of the clip


async def test_recognises_korean_speech_in_8khz_telephone_audio(pool: TranscriberPool) -> None:
    transcript = await pool.transcribe(KO_HELLO)
    _assert_hello(transcript)
    assert transcript.to_dict()["words"][-1]["word"] == "엄마"


async def test_jobs_run_in_parallel_on_both_workers(pool: TranscriberPool) -> None:
    seen: set[int] = set()

    async def watch() -> None:
        while True:
            seen.update(pool.busy_pids())
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    try:
        results = await asyncio.gather(*(pool.transcribe(KO_HELLO) for _ in range(2)))
    finally:
        watcher.cancel()
    for transcript in results:
        assert "엄마" in transcript.text
    assert seen == set(pool.worker_pids())
    assert len(seen) == 2


async def test_bad_recordings_raise_their_audio_error_and_keep_the_worker(
    pool: TranscriberPool, tmp_path: Path
) -> None:
    before = pool.worker_pids()
    raw = KO_HELLO.read_bytes()
    cut = write(tmp_path / "cut.wav", raw[:1000])
    with pytest.raises(TruncatedAudio) as caught:
        await pool.transcribe(cut)
    assert caught.value.details["available"] == 1000 - 44
    garbage = write(tmp_path / "garbage.wav", os.urandom(3000))
    with pytest.raises(Exception) as caught_garbage:
        await pool.transcribe(garbage)
    assert caught_garbage.value.error_id == "audio_not_wav"  # type: ignore[attr-defined]
    silent = write(tmp_path / "silent.wav", wav_bytes(bytes(16000)))
    with pytest.raises(SilentAudio):
        await pool.transcribe(silent)
    assert pool.worker_pids() == before


async def test_a_worker_killed_mid_job_is_replaced_and_the_job_retried(
    pool: TranscriberPool,
) -> None:
    started = pool.workers_started
    job = asyncio.ensure_future(pool.transcribe(KO_HELLO))
    await _until(lambda: pool.busy_pids(), "job dispatched")
    victim = pool.busy_pids()[0]
    os.kill(victim, signal.SIGKILL)
    transcript = await job
    _assert_hello(transcript)
    assert victim not in pool.worker_pids()
    await _until(lambda: len(pool.worker_pids()) == 2, "replacement ready")
    assert pool.workers_started == started + 1
    assert not _alive(victim)


async def test_a_job_whose_worker_dies_twice_fails_with_a_reason(pool: TranscriberPool) -> None:
    job = asyncio.ensure_future(pool.transcribe(KO_HELLO))
    killed: list[int] = []
    # an OOM kill, then an abort() as Kaldi does on a failed assertion
    for how in (signal.SIGKILL, signal.SIGABRT):
        await _until(lambda: set(pool.busy_pids()) - set(killed), "job dispatched")
        victim = (set(pool.busy_pids()) - set(killed)).pop()
        os.kill(victim, how)
        killed.append(victim)
    with pytest.raises(TranscriptionFailed) as caught:
        await job
    error = caught.value
    assert error.error_id == "transcription_failed"
    assert error.details["reason"] == "worker_died"
    assert error.details["exitcodes"] == [-signal.SIGKILL, -signal.SIGABRT]
    assert "重试" in error.message
    await _until(lambda: len(pool.worker_pids()) == 2, "replacements ready")
    _assert_hello(await pool.transcribe(KO_HELLO))


async def test_a_job_over_its_timeout_kills_its_worker(pool: TranscriberPool) -> None:
    before = set(pool.worker_pids())
    with pytest.raises(TranscriptionTimeout) as caught:
        await pool.transcribe(KO_HELLO, job_timeout=0.02)
    assert caught.value.error_id == "transcription_timeout"
    assert caught.value.details == {"path": str(KO_HELLO), "reason": "timeout", "timeout_s": 0.02}
    gone = before - set(pool.worker_pids())
    assert len(gone) == 1
    await _until(lambda: not _alive(next(iter(gone))), "killed worker reaped", limit=10)
    await _until(lambda: len(pool.worker_pids()) == 2, "replacement ready")


async def test_recycling_after_m_jobs_then_close_leaves_no_process() -> None:
    small = TranscriberPool(MODEL, workers=1, recycle_after=1, shutdown_grace=1.0)
    await small.start()
    ran_on: list[int] = []
    for _ in range(2):
        job = asyncio.ensure_future(small.transcribe(KO_HELLO))
        await _until(lambda: small.busy_pids(), "job dispatched")
        ran_on += small.busy_pids()
        assert "엄마" in (await job).text
    # each worker did its one job and made way for a fresh process
    assert len(ran_on) == 2 and ran_on[0] != ran_on[1]
    assert small.workers_started == 3  # the third is loading the model now
    await _until(lambda: not _alive(ran_on[0]), "recycled worker gone", limit=10)

    # close with a job in flight
    job = asyncio.ensure_future(small.transcribe(KO_HELLO))
    await _until(lambda: small.busy_pids(), "job dispatched")
    seen = set(ran_on) | set(small.worker_pids())
    await small.close()
    with pytest.raises(TranscriptionFailed) as caught:
        await job
    assert caught.value.details["reason"] == "pool_closed"
    assert not any(_alive(pid) for pid in seen)
    assert [p for p in multiprocessing.active_children() if p.pid in seen] == []
    with pytest.raises(TranscriptionFailed, match="closed"):
        await small.transcribe(KO_HELLO)
    await small.close()  # twice is fine


async def test_a_model_that_cannot_load_fails_start_cleanly(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    (broken / "am").mkdir(parents=True)
    (broken / "am" / "final.mdl").write_bytes(b"\x00not a kaldi model")
    (broken / "conf").mkdir()
    (broken / "conf" / "mfcc.conf").write_text("--sample-frequency=8000\n")
    before = {p.pid for p in multiprocessing.active_children()}
    pool = TranscriberPool(broken, workers=2, start_timeout=30)
    assert pool.model_sample_rate == 8000
    with pytest.raises(TranscriptionFailed) as caught:
        await pool.start()
    assert caught.value.details["reason"] == "worker_start_failed"
    assert "model" in caught.value.message_en
    assert {p.pid for p in multiprocessing.active_children()} - before == set()
