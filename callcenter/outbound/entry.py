"""Where every answered campaign call comes in: the AGI entry point hands it here
(``is_outbound_call``), the job and attempt the dialer's Originate set are read, and
the call goes to its kind's script (``survey_call``, ``fee_call``), which writes its
verdict on the attempt (``store_verdict``) and tells the dialer waiting for it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.outbound import rules
from callcenter.outbound.dialer import Verdict, Verdicts
from callcenter.outbound.models import OutboundAttempt, OutboundJob
from callcenter.settings import OUTBOUND_CONTEXTS
from ivr.channel import Channel
from ivr.errors import CallerHungUp

log = logging.getLogger(__name__)

def is_outbound_call(channel: Channel) -> bool:
    """AsyncAGI: the call runs in the outbound context; FastAGI: the script ``outbound``
    (or the context, when the PBX used the hotline's FastAGI URL)."""
    env = channel.env
    return env.get("agi_context", "") in OUTBOUND_CONTEXTS or \
        env.get("agi_network_script", "").strip("/") == "outbound"


MISMATCH = Verdict(rules.FAILED, None, "呼叫与任务不符")


async def answered_job(sessionmaker: async_sessionmaker[AsyncSession], job_id: int,
                       attempt_id: int, now: datetime) -> OutboundJob | None:
    """The job of an answered call, its attempt marked answered; None when the two do
    not belong together (a stale call, a forged variable): the call is hung up."""
    async with sessionmaker() as session:
        attempt = await session.get(OutboundAttempt, attempt_id)
        job = await session.get(OutboundJob, job_id)
        if attempt is None or job is None or attempt.job_id != job_id:
            return None
        attempt.answered_at = now
        await session.commit()
        return job


async def deliver(sessionmaker: async_sessionmaker[AsyncSession], verdicts: Verdicts,
                  attempt_id: int, script: Awaitable[Verdict],
                  hung_up: Callable[[], Verdict | None] = lambda: None) -> None:
    """Run a call's script and hand its verdict on (the attempt row, the dialer). A
    caller who hangs up first gives ``hung_up()`` (None: answered, hung up before any
    answer: tried again per the rules)."""
    verdict = Verdict(rules.HUNG_UP, None, "接听后挂断")
    try:
        verdict = await script
    except CallerHungUp:
        verdict = hung_up() or verdict
    finally:
        await store_verdict(sessionmaker, attempt_id, verdict)
        verdicts.resolve(attempt_id, verdict)


async def store_verdict(sessionmaker: async_sessionmaker[AsyncSession], attempt_id: int,
                        verdict: Verdict) -> None:
    """The verdict on the attempt row too: the dialer that placed the call may be
    another server (this call was adopted) and reads it from there."""
    try:
        async with sessionmaker() as session:
            a = await session.get(OutboundAttempt, attempt_id)
            if a is not None and a.outcome is None:
                a.outcome = verdict.outcome
                a.detail = verdict.note[:500]
                await session.commit()
    except Exception:
        log.exception("outbound attempt %s: could not store %s", attempt_id, verdict.outcome)


KindHandler = Callable[[Channel, int, int], Awaitable[None]]


class OutboundCalls:
    """The AGI entry of every answered campaign call: reads the job and attempt the
    dialer's Originate set, and hands the call to its kind's script."""

    def __init__(self, handlers: dict[str, KindHandler]) -> None:
        self.handlers = handlers

    async def handle(self, channel: Channel) -> None:
        attempt_id = _int(await channel.get_variable("CC_OUTBOUND_ATTEMPT"))
        job_id = _int(await channel.get_variable("CC_OUTBOUND_JOB"))
        kind = await channel.get_variable("CC_OUTBOUND_KIND") or "survey"
        handler = self.handlers.get(kind)
        if attempt_id is None or job_id is None or handler is None:
            log.warning("outbound call without its job (%s): hung up", kind)
            await channel.hangup()
            return
        await handler(channel, job_id, attempt_id)


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
