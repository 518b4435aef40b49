"""Passwords for people: argon2id hashes (argon2-cffi), computed off the event loop.

One argon2id check costs tens of milliseconds of CPU by design. Done on the
event loop, 200 sign-ins a second stall everything else the server does (calls,
screen-pops, ``/healthz``), so the server hashes in a ``PasswordWorkers`` pool:
a few threads (argon2-cffi releases the GIL while it hashes) and a bounded
number of waiting checks. When more sign-ins wait than the pool can take, the
next one is refused at once with ``HashingBusy`` (503 with ``Retry-After``)
rather than queued behind the others forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.errors import InvalidInput, Unavailable

MIN_LENGTH = 8
WORKER_NICE = 10
T = TypeVar("T")


class PasswordPolicyError(InvalidInput):
    error_id = "weak_password"


class HashingBusy(Unavailable):
    """Every worker is busy and the waiting line is full: try again in ``retry_after_s``."""

    error_id = "busy"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("登录繁忙，请稍后再试 / too many sign-ins at once, try again shortly",
                         details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


def make_hasher(*, time_cost: int = 2, memory_cost: int = 19456) -> PasswordHasher:
    """OWASP's argon2id minimum (19 MiB, t=2); tests may pass smaller costs."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"密码至少 {MIN_LENGTH} 位 / password must have at least "
                                  f"{MIN_LENGTH} characters", field="password")
    if password.strip() != password:
        raise PasswordPolicyError("密码首尾不能是空格 / no leading or trailing spaces",
                                  field="password")


def hash_password(hasher: PasswordHasher, password: str) -> str:
    """Blocking: for the CLI and the demo's seeding, which run before any event loop
    serves requests. The server uses ``PasswordWorkers.hash``."""
    check_policy(password)
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, stored_hash: str | None, password: str) -> bool:
    """False for a wrong password, a missing or a corrupt hash; never raises. Blocking."""
    if not stored_hash:
        # Spend the same time as a real check so a missing user is not revealed by timing.
        try:
            hasher.verify(_DUMMY.get(hasher), password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordWorkers:
    """argon2 on ``workers`` threads, at most ``queue`` more checks waiting.

    A check that does not fit raises ``HashingBusy`` before any work is done. A
    waiting check whose request goes away still runs (a started hash cannot be
    stopped) and still counts, so the bound holds for the threads' real work.

    The threads run at a lower CPU priority (``nice``, Linux: per thread), so on a
    busy machine the event loop, which serves calls, pops and ``/healthz``, gets
    the CPU first and sign-ins take what is left."""

    def __init__(self, hasher: PasswordHasher, *, workers: int = 2, queue: int = 16,
                 nice: int = WORKER_NICE) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers >= 1 and queue >= 0")
        self.hasher = hasher
        self.workers = workers
        self.capacity = workers + queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2",
                                        initializer=_lower_priority, initargs=(nice,))
        self._lock = threading.Lock()
        self._in_flight = 0
        self._mean_s = 0.05  # running mean of one check's time, for Retry-After
        self.refused = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retry_after_s(self) -> int:
        """Seconds until the line now waiting has probably been served (at least 1)."""
        return max(1, math.ceil(self._in_flight * self._mean_s / self.workers))

    def check_room(self) -> None:
        """Raise ``HashingBusy`` now if a check would be refused (before any other work)."""
        if self._in_flight >= self.capacity:
            with self._lock:
                self.refused += 1
            raise HashingBusy(self.retry_after_s())

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._in_flight >= self.capacity:
                self.refused += 1
                raise HashingBusy(self.retry_after_s())
            self._in_flight += 1

        def timed() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent = time.perf_counter() - started
                with self._lock:
                    self._mean_s += (spent - self._mean_s) * 0.1

        def release(_: Future[T]) -> None:
            with self._lock:
                self._in_flight -= 1

        try:
            future = self._pool.submit(timed)
        except RuntimeError:  # shut down
            release(Future())
            raise Unavailable("服务正在关闭 / shutting down") from None
        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await self._run(verify_password, self.hasher, stored_hash, password)

    async def hash(self, password: str) -> str:
        check_policy(password)
        return await self._run(self.hasher.hash, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    """In a worker thread: lower its own scheduling priority (best effort)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


class InlinePasswords(PasswordWorkers):
    """The checks on the event loop itself, as before ``PasswordWorkers``: every other
    request waits while one hashes. Only the login-flood benchmark's baseline uses it."""

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return fn(*args)


PasswordsFactory = Callable[..., PasswordWorkers]
"""``(hasher, *, workers, queue) -> PasswordWorkers``: ``PasswordWorkers`` itself, or
``InlinePasswords`` for a baseline."""


class _Dummy:
    def __init__(self) -> None:
        self._cache: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, hasher: PasswordHasher) -> str:
        key = id(hasher)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = hasher.hash("not-a-real-password")
            return self._cache[key]


_DUMMY = _Dummy()
