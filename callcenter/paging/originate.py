"""How paging reaches a phone: the ``Originator`` protocol and the hand-over
from an answered Originate to the page-call script.

The lead wires ``Originator`` to the AMI client (``Originate`` with
``Async: true``; the ``OriginateResponse`` event gives the outcome). When the
callee answers, Asterisk runs the paging context, which starts AGI; the
page-call script reports the callee's answer through ``PageCallRegistry`` (in
process) and the ``page_attempts`` row (across processes).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class OriginateStatus(enum.StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"
    """The PBX could not take the Originate (link down, not logged in, shutting down,
    not fully booted, no answer to the action; or the PBX hung the ring up by
    restarting, reason ``PBX_RESTARTED``): nobody could answer, the step waits."""


PBX_RESTARTED = "pbx_restarted"
"""``OriginateOutcome.reason`` of a ring that the PBX ended by restarting."""

NOTIFY_INSTEAD = "no_pbx_notify"
"""``OriginateOutcome.reason`` when no PBX can take the page and the site says to send
it through the person's notifiers instead (``[paging] fallback = "notifiers"``)."""


@dataclass(frozen=True, slots=True)
class OriginateOutcome:
    status: OriginateStatus
    reason: str = ""  # Asterisk's Reason code (0, 1, 3, 5, 8) or an error id
    # For the incident's timeline (Chinese): how the page left when not as usual, e.g.
    # "本小区线路不可用，改由「pbx2」线路呼叫".
    note: str = ""

    @classmethod
    def from_reason(cls, response: str, reason: str | int) -> OriginateOutcome:
        """Map ``OriginateResponse`` (Response, Reason) to an outcome.

        Reason codes: 4 answered, 3 no answer (ring timeout), 5 busy, 8 congestion
        / unreachable, 0 and 1 failure (no such channel, hung up)."""
        code = str(reason).strip()
        if response.strip().lower() == "success" or code == "4":
            return cls(OriginateStatus.ANSWERED, code)
        if code == "3":
            return cls(OriginateStatus.NO_ANSWER, code)
        if code == "5":
            return cls(OriginateStatus.BUSY, code)
        return cls(OriginateStatus.FAILED, code or "originate_failed")


class Originator(Protocol):
    """Place a call to ``channel`` (``PJSIP/13812345678@trunk``); when it is
    answered, send it to ``context``/``exten`` with ``variables`` set.

    ``timeout`` is the ring time in seconds; ``community`` the code of the incident's
    community (whose PBX should place the call). Returns when the call is answered
    or has failed; it must not raise for an ordinary failure."""

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str],
                        timeout: float, *,  # noqa: ASYNC109
                        community: str | None = None) -> OriginateOutcome: ...


NO_PAGE_CALL = "no_page_call"
"""An answered page whose call gave no verdict within the worker's wait."""


class PageResponse(enum.StrEnum):
    ACCEPTED = "accepted"
    PASSED = "passed"
    ALREADY = "already_handled"
    """Answered when someone else had already taken it (heard 已有人处理): not a 按2."""
    NO_INPUT = "no_input"
    UNKNOWN_DIGIT = "unknown_digit"
    HUNG_UP = "hung_up"
    FAILED = "failed"


class PageCallRegistry:
    """Futures for page calls in flight, keyed by page-attempt id."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Future[PageResponse]] = {}

    def expect(self, attempt_id: int) -> asyncio.Future[PageResponse]:
        fut: asyncio.Future[PageResponse] = asyncio.get_running_loop().create_future()
        self._waiting[attempt_id] = fut
        return fut

    def resolve(self, attempt_id: int, response: PageResponse) -> bool:
        fut = self._waiting.pop(attempt_id, None)
        if fut is None or fut.done():
            return False
        fut.set_result(response)
        return True

    def discard(self, attempt_id: int) -> None:
        fut = self._waiting.pop(attempt_id, None)
        if fut is not None and not fut.done():
            fut.cancel()

    def __len__(self) -> int:
        return len(self._waiting)
