"""What an attempt's outcome means for its job: done, try again later, or give up.

An answering machine, or a carrier's "the subscriber you dialled is unavailable"
played to the caller, is not a completed call: Asterisk's ``AMD()`` in the
printed outbound context says ``MACHINE`` (or ``NOTSURE``) and the job is tried
again later, as for no answer. A number the PBX cannot dial (congestion at
once, an invalid number) is not retried forever: it counts as failed and ends
``invalid`` after its own few tries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

ANSWERED = "answered"
NO_ANSWER = "no_answer"
BUSY = "busy"
MACHINE = "machine"
FAILED = "failed"
"""The PBX could not place the call (congestion, channel unavailable)."""
INVALID_NUMBER = "invalid_number"
"""The directory's number is not one a phone can dial (never sent to the PBX)."""
HUNG_UP = "hung_up"
"""Answered, then hung up before the script got an answer."""
LOST = "lost"
"""The server placing the call stopped before its outcome was known."""

OUTCOME_LABELS = {ANSWERED: "已接听", NO_ANSWER: "无人接听", BUSY: "占线", MACHINE: "语音信箱/提示音",
                  FAILED: "呼叫失败", INVALID_NUMBER: "号码无法拨打", HUNG_UP: "接听后挂断",
                  LOST: "结果未知（服务器中断）"}


@dataclass(frozen=True, slots=True)
class Retry:
    tries: int
    """How many attempts this outcome allows in all (the job's attempt count)."""
    wait: timedelta


@dataclass(frozen=True)
class RetryRules:
    no_answer: Retry = Retry(3, timedelta(minutes=30))
    busy: Retry = Retry(3, timedelta(minutes=10))
    machine: Retry = Retry(2, timedelta(hours=2))
    failed: Retry = Retry(2, timedelta(minutes=15))
    hung_up: Retry = Retry(2, timedelta(minutes=30))
    lost: Retry = Retry(3, timedelta(minutes=30))

    def after(self, outcome: str, attempts: int) -> timedelta | None:
        """The wait before the next try, or None: the job is over (answered with a
        result, an undiallable number, or no tries left for this outcome)."""
        rule = getattr(self, outcome, None) if outcome not in (ANSWERED, INVALID_NUMBER) else None
        if not isinstance(rule, Retry) or attempts >= rule.tries:
            return None
        return rule.wait


def outcome_of_originate(status: str, reason: str) -> str:
    """An ``OriginateOutcome``'s status (``callcenter.paging.originate``) as ours."""
    return {"answered": ANSWERED, "no_answer": NO_ANSWER, "busy": BUSY}.get(status, FAILED)
