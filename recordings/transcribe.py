"""Offline transcription in a pool of worker processes.

Vosk (Kaldi) can abort its process on bad input and its recognizer memory grows,
so decoding never runs in the server process: each worker is a process of its
own (``spawn`` start method: no forked copy of the server's threads, sockets or
event loop), loads the model once, takes one job at a time, and is replaced
when it dies, times out, or has done ``recycle_after`` jobs.

The asyncio side never blocks on a worker: it waits for a worker's pipe or
process sentinel to become readable with ``loop.add_reader``, then reads the
(already arrived) reply in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import multiprocessing
import re
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import structlog

from recordings.audio import DEFAULT_SILENCE_THRESHOLD_DBFS, model_sample_rate
from recordings.errors import RecordingError, TranscriptionFailed, TranscriptionTimeout
from recordings.worker import WorkerConfig, worker_main

log = structlog.get_logger(__name__)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end, "conf": self.conf}


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the model heard. ``text`` is Vosk's: words separated by spaces."""

    text: str
    words: tuple[Word, ...]
    duration_s: float
    sample_rate: int
    """Sample rate of the recording as read."""
    model_sample_rate: int
    """Rate the audio was resampled to for the model."""
    source_format: str = ""

    @property
    def display_text(self) -> str:
        """The text for people: no spaces between Chinese/Japanese characters.

        Vosk's Chinese models put a space between every word (``我 家 漏水``);
        a ticket reads better as ``我家漏水``. Latin words keep their spaces.
        """
        out = ""
        for token in self.text.split():
            if out and not (_CJK.search(out[-1]) and _CJK.search(token[0])):
                out += " "
            out += token
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "display_text": self.display_text,
            "words": [word.to_dict() for word in self.words],
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "model_sample_rate": self.model_sample_rate,
            "source_format": self.source_format,
        }


class _WorkerDied(Exception):
    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"worker exited with code {exitcode}")
        self.exitcode = exitcode


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    pid: int
    jobs: int = 0
    busy: bool = False
    gone: bool = False
    retired: bool = False
    job_ended: asyncio.Event = field(default_factory=asyncio.Event)


class TranscriberPool:
    """Transcribe recordings in ``workers`` processes that each hold the model.

    ``recycle_after`` jobs, a worker exits and a fresh one takes its place.
    A job that runs longer than ``job_timeout`` seconds kills its worker and
    raises :class:`TranscriptionTimeout`. A worker that dies mid-job (Kaldi
    abort, OOM kill) is replaced and the job retried once on another worker;
    if that one dies too, :class:`TranscriptionFailed` (reason ``worker_died``).
    Errors about the recording itself (:class:`recordings.errors.AudioError`)
    pass through unchanged and leave the worker in service.

    Use ``async with TranscriberPool(...) as pool`` or ``start()``/``close()``.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        workers: int = 1,
        recycle_after: int = 200,
        job_timeout: float = 300.0,
        start_timeout: float = 120.0,
        silence_threshold_dbfs: float | None = DEFAULT_SILENCE_THRESHOLD_DBFS,
        sox_binary: str | None = "sox",
        respawn_delays: Sequence[float] = (0.0, 1.0, 5.0),
        shutdown_grace: float = 2.0,
        start_method: str = "spawn",
        vosk_log_level: int = -1,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if recycle_after < 1:
            raise ValueError("recycle_after must be at least 1")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver' (fork is unsafe here)")
        self.model_path = Path(model_path)
        self.model_sample_rate = model_sample_rate(self.model_path)
        self.workers = workers
        self.recycle_after = recycle_after
        self.job_timeout = job_timeout
        self.start_timeout = start_timeout
        self._respawn_delays = tuple(respawn_delays) or (0.0,)
        self._shutdown_grace = shutdown_grace
        self._config = WorkerConfig(
            model_path=str(self.model_path),
            model_rate=self.model_sample_rate,
            silence_threshold_dbfs=silence_threshold_dbfs,
            sox_binary=sox_binary,
            vosk_log_level=vosk_log_level,
        )
        self._ctx = cast(SpawnContext, multiprocessing.get_context(start_method))
        self._job_ids = itertools.count(1)
        self._live: set[_Worker] = set()
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancel_on_close: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._capacity = 0  # workers alive or being started
        self._started = False
        self._closed = False
        self.workers_started = 0
        """How many worker processes this pool has started (replacements included)."""
        self.jobs_done = 0

    # --- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> TranscriberPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the workers and wait until each has loaded the model."""
        if self._started:
            raise RuntimeError("TranscriberPool.start() called twice")
        self._started = True
        self._idle = asyncio.Queue()
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers + 1, thread_name_prefix="transcriber-recv"
        )
        self._capacity = self.workers
        results = await asyncio.gather(
            *(self._spawn() for _ in range(self.workers)), return_exceptions=True
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        for result in results:
            if isinstance(result, _Worker):
                self._idle.put_nowait(result)
        if failure is not None:
            await self.close()
            raise failure
        log.info(
            "transcriber.started",
            workers=self.worker_pids(),
            model=str(self.model_path),
            model_rate=self.model_sample_rate,
        )

    async def close(self) -> None:
        """Stop every worker (gracefully when idle, killed when busy) and wait for them."""
        if self._closed:
            return
        self._closed = True
        # Replacements still loading the model are cancelled (and kill their
        # process); retirements in progress are left to finish.
        tasks = list(self._tasks)
        for task in tasks:
            if task in self._cancel_on_close:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        workers = list(self._live)
        busy = [w for w in workers if w.busy]
        for worker in workers:
            if worker.busy:
                worker.process.kill()  # a decoder cannot be interrupted
            else:
                self._ask_to_exit(worker)
        # Let the jobs in flight see their worker die before its pipe is closed.
        for worker in busy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10.0):
                    await worker.job_ended.wait()
        await asyncio.gather(*(self._retire(w, graceful=w not in busy) for w in workers))
        if self._idle is not None:
            self._idle.put_nowait(None)  # wake waiters; each passes it on
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes in service."""
        return sorted(w.pid for w in self._live if not w.gone)

    def busy_pids(self) -> list[int]:
        """Pids of the workers decoding a job right now."""
        return sorted(w.pid for w in self._live if w.busy and not w.gone)

    # --- jobs ----------------------------------------------------------------

    async def transcribe(self, path: str | Path, *, job_timeout: float | None = None,
                         on_start: Callable[[], Awaitable[None]] | None = None) -> Transcript:
        """Transcribe one recording file.

        ``on_start`` is awaited each time a worker is about to decode the file
        (once, or twice when the first worker died and the job is retried):
        after a live worker was taken for it, before the job is sent. The
        ingest counts an attempt there, so waiting for a worker (the pool
        starting, a replacement loading the model) costs the job nothing.

        Raises :class:`recordings.errors.AudioError` subclasses for recordings
        that cannot be read (empty, truncated, silent...), :class:`TranscriptionTimeout`
        and :class:`TranscriptionFailed` for decoding that did not complete.
        """
        name = str(path)
        limit = self.job_timeout if job_timeout is None else job_timeout
        deaths: list[int | None] = []
        while True:
            worker = await self._acquire(name)
            job_id = next(self._job_ids)
            if on_start is not None:
                try:
                    await on_start()
                except BaseException:
                    # Not sent (the database is down, or cancelled): the worker
                    # goes back to the idle queue untouched.
                    self._finished(worker, counted=False)
                    raise
            try:
                reply = await self._run_job(worker, job_id, name, limit)
            except _WorkerDied as died:
                self._lost(worker, reason="died", exitcode=died.exitcode)
                if self._closed:
                    raise self._closed_error(name) from None
                deaths.append(died.exitcode)
                if len(deaths) >= 2:
                    raise TranscriptionFailed(
                        name,
                        "worker_died",
                        "转写进程异常退出，重试一次后仍失败",
                        "the decoding process died, and again on the retry",
                        exitcodes=deaths,
                    ) from None
                log.warning("transcriber.retry", path=name, pid=worker.pid, exitcode=died.exitcode)
                continue
            except TimeoutError:
                self._lost(worker, reason="timeout", exitcode=None)
                raise TranscriptionTimeout(name, limit) from None
            except asyncio.CancelledError:
                # The decoder cannot be interrupted: kill it, start another.
                self._lost(worker, reason="cancelled", exitcode=None)
                raise
            self._finished(worker)
            kind, _reply_id, body = reply
            if kind == "error":
                if isinstance(body, BaseException):
                    raise body
                raise TranscriptionFailed(name, "decoder_error", "解码出错", str(body))
            return Transcript(
                text=body["text"],
                words=tuple(Word(**w) for w in body["words"]),
                duration_s=float(body["duration_s"]),
                sample_rate=int(body["sample_rate"]),
                model_sample_rate=self.model_sample_rate,
                source_format=str(body.get("source_format", "")),
            )

    async def _acquire(self, name: str) -> _Worker:
        if not self._started or self._idle is None:
            raise RuntimeError("TranscriberPool.start() was not awaited")
        while True:
            if self._closed:
                raise self._closed_error(name)
            worker = await self._idle.get()
            if worker is None:  # closed, or no worker could be started: pass it on
                self._idle.put_nowait(None)
                if self._closed:
                    raise self._closed_error(name)
                raise TranscriptionFailed(
                    name,
                    "no_workers",
                    "没有可用的转写进程",
                    "no transcription worker could be started",
                )
            if worker.gone:
                continue
            if not worker.process.is_alive():  # died while idle: not this job's fault
                self._lost(worker, reason="died_idle", exitcode=worker.process.exitcode)
                continue
            worker.busy = True
            worker.job_ended.clear()
            return worker

    async def _run_job(
        self, worker: _Worker, job_id: int, name: str, limit: float
    ) -> tuple[Any, ...]:
        try:
            worker.conn.send((job_id, name))
        except (BrokenPipeError, EOFError, OSError):
            raise _WorkerDied(worker.process.exitcode) from None
        async with asyncio.timeout(limit):
            await _readable(worker.conn.fileno())
        reply = await self._recv(worker)
        if not (isinstance(reply, tuple) and len(reply) == 3 and reply[1] == job_id):
            log.error("transcriber.protocol_error", pid=worker.pid, reply=repr(reply)[:200])
            worker.process.kill()
            raise _WorkerDied(None)
        return reply

    async def _recv(self, worker: _Worker) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, worker.conn.recv)
        except (EOFError, OSError):
            await _wait_exit(worker.process, 5.0)
            raise _WorkerDied(worker.process.exitcode) from None

    def _finished(self, worker: _Worker, *, counted: bool = True) -> None:
        worker.busy = False
        worker.job_ended.set()
        if counted:
            worker.jobs += 1
            self.jobs_done += 1
        if self._closed:
            return
        if worker.jobs >= self.recycle_after:
            log.info("transcriber.recycle", pid=worker.pid, jobs=worker.jobs)
            self._ask_to_exit(worker)
            worker.gone = True
            self._background(self._retire(worker, graceful=True), cancel_on_close=False)
            self._background(self._replace(), cancel_on_close=True)
        else:
            assert self._idle is not None
            self._idle.put_nowait(worker)

    def _lost(self, worker: _Worker, *, reason: str, exitcode: int | None) -> None:
        """Take a worker out of service (kill it if needed) and start a replacement."""
        worker.busy = False
        worker.job_ended.set()
        if worker.gone:
            return
        worker.gone = True
        log.warning("transcriber.worker_lost", pid=worker.pid, reason=reason, exitcode=exitcode)
        if worker.process.is_alive():
            worker.process.kill()
        if self._closed:
            return
        self._background(self._retire(worker, graceful=False), cancel_on_close=False)
        self._background(self._replace(), cancel_on_close=True)

    def _closed_error(self, name: str) -> TranscriptionFailed:
        return TranscriptionFailed(
            name, "pool_closed", "转写服务已关闭", "the transcriber pool is closed"
        )

    # --- processes ---------------------------------------------------------

    async def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, self._config),
            name="vosk-transcriber",
            daemon=True,
        )
        process.start()  # spawn: fork+exec, a few ms, like asyncio's subprocess start
        child_conn.close()
        self.workers_started += 1
        assert process.pid is not None
        worker = _Worker(process=process, conn=parent_conn, pid=process.pid)
        self._live.add(worker)
        try:
            async with asyncio.timeout(self.start_timeout):
                await _readable(parent_conn.fileno())
            try:
                hello = await self._recv(worker)
            except _WorkerDied as died:
                raise self._start_failed(
                    f"exited with code {died.exitcode} while loading the model"
                ) from None
            if not (isinstance(hello, tuple) and hello and hello[0] == "ready"):
                detail = hello[1] if isinstance(hello, tuple) and len(hello) > 1 else repr(hello)
                raise self._start_failed(str(detail))
        except BaseException as exc:
            worker.gone = True
            process.kill()
            await self._retire(worker, graceful=False)
            if isinstance(exc, TimeoutError):
                raise self._start_failed(
                    f"did not load the model within {self.start_timeout:g} s"
                ) from None
            raise
        log.info("transcriber.worker_ready", pid=worker.pid)
        return worker

    def _start_failed(self, detail: str) -> TranscriptionFailed:
        return TranscriptionFailed(
            str(self.model_path),
            "worker_start_failed",
            f"转写进程无法加载模型：{detail}",
            f"a worker could not load the model: {detail}",
        )

    async def _replace(self) -> None:
        """Start a worker to take a lost one's place, with a few retries."""
        assert self._idle is not None
        error: BaseException | None = None
        for delay in self._respawn_delays:
            if delay:
                await asyncio.sleep(delay)
            if self._closed:
                return
            try:
                worker = await self._spawn()
            except RecordingError as exc:
                error = exc
                continue
            if self._closed:
                await self._retire(worker, graceful=False)
                return
            self._idle.put_nowait(worker)
            return
        self._capacity -= 1
        log.error("transcriber.replace_failed", error=str(error), capacity=self._capacity)
        if self._capacity <= 0:
            self._idle.put_nowait(None)

    def _ask_to_exit(self, worker: _Worker) -> None:
        with contextlib.suppress(BrokenPipeError, EOFError, OSError):
            worker.conn.send(None)

    async def _retire(self, worker: _Worker, *, graceful: bool) -> None:
        """Wait for a worker to exit (killing it if it does not), reap it, close its pipe."""
        worker.gone = True
        if worker.retired:
            return
        worker.retired = True
        if not graceful or not await _wait_exit(worker.process, self._shutdown_grace):
            worker.process.kill()
            await _wait_exit(worker.process, 10.0)
        worker.process.join(0)
        worker.conn.close()
        self._live.discard(worker)

    def _background(self, coro: Any, *, cancel_on_close: bool) -> None:
        # The pool's own work: not the ids of the voicemail job that started it.
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if cancel_on_close:
            self._cancel_on_close.add(task)
            task.add_done_callback(self._cancel_on_close.discard)


async def _readable(fd: int) -> None:
    """Wait until ``fd`` is readable (data, EOF or a process sentinel)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _wait_exit(process: BaseProcess, limit_s: float) -> bool:
    """Wait for a process to end without blocking the loop; True if it did."""
    if process.exitcode is not None:
        return True
    try:
        async with asyncio.timeout(limit_s):
            await _readable(process.sentinel)
    except TimeoutError:
        return False
    # The sentinel closes a moment before the child can be reaped.
    for _ in range(100):
        process.join(0)
        if process.exitcode is not None:
            break
        await asyncio.sleep(0.01)
    return True
