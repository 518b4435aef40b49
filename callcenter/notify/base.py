"""The notifier protocol, delivery results, retries with backoff."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from callcenter.clock import Clock
from callcenter.errors import DomainError

log = logging.getLogger(__name__)


class NotifyError(DomainError):
    """One delivery attempt failed. ``retryable`` says whether trying again may help."""

    error_id = "notify_failed"
    http_status = 502

    def __init__(self, message: str, *, retryable: bool = True,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Notification:
    """A short message: a title, a body, and optional labelled fields.

    ``key`` identifies what it is about (a call id, an incident id) for logs and
    failure records."""

    title: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()
    key: str = ""
    mentions: tuple[str, ...] = ()  # mobile numbers to @ in group robots

    def as_text(self) -> str:
        lines = [self.title, self.text] if self.text else [self.title]
        lines += [f"{k}：{v}" for k, v in self.fields]
        return "\n".join(line for line in lines if line)

    def as_markdown(self) -> str:
        lines = [f"**{self.title}**"]
        if self.text:
            lines.append(self.text)
        lines += [f"> {k}：{v}" for k, v in self.fields]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    channel: str
    ok: bool
    attempts: int
    key: str = ""
    error_id: str = ""
    error: str = ""
    at: datetime | None = None


class Notifier(Protocol):
    """Something that delivers a notification once; raises ``NotifyError`` on failure."""

    channel: str

    async def send(self, message: Notification) -> None: ...


class DeliveryRecorder(Protocol):
    def record(self, result: DeliveryResult) -> None: ...


@dataclass
class MemoryRecorder:
    """Keeps the last ``size`` results (failures and successes) for pages and tests."""

    size: int = 500
    results: deque[DeliveryResult] = field(default_factory=deque)

    def record(self, result: DeliveryResult) -> None:
        self.results.append(result)
        while len(self.results) > self.size:
            self.results.popleft()

    @property
    def failures(self) -> list[DeliveryResult]:
        return [r for r in self.results if not r.ok]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    factor: float = 2.0

    def delays(self) -> Iterable[float]:
        """The waits between attempts: base, base*factor, ... capped."""
        delay = self.base_delay_s
        for _ in range(max(0, self.attempts - 1)):
            yield min(delay, self.max_delay_s)
            delay *= self.factor


class RetryingNotifier:
    """Wraps a notifier: retries retryable failures with exponential backoff
    (waiting on the injected clock), records the outcome, never raises.

    ``send`` returns the ``DeliveryResult`` so callers (paging) can escalate."""

    def __init__(self, inner: Notifier, *, clock: Clock, policy: RetryPolicy | None = None,
                 recorder: DeliveryRecorder | None = None) -> None:
        self.inner = inner
        self.channel = inner.channel
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._recorder = recorder or MemoryRecorder()

    async def send(self, message: Notification) -> DeliveryResult:
        delays = list(self._policy.delays())
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.inner.send(message)
            except NotifyError as exc:
                log.warning("notify via %s failed (attempt %d): %s", self.channel, attempt, exc)
                if exc.retryable and attempt <= len(delays):
                    await self._clock.sleep(delays[attempt - 1])
                    continue
                result = DeliveryResult(self.channel, False, attempt, message.key,
                                        exc.error_id, exc.message, self._clock.now())
                break
            except Exception as exc:  # a bug in a notifier must not break the caller
                log.exception("notify via %s crashed", self.channel)
                result = DeliveryResult(self.channel, False, attempt, message.key,
                                        "notify_crashed", repr(exc), self._clock.now())
                break
            else:
                result = DeliveryResult(self.channel, True, attempt, message.key,
                                        at=self._clock.now())
                break
        self._recorder.record(result)
        return result
