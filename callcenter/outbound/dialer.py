"""The outbound dialer: takes due jobs and calls them, within each PBX's limit.

Exactly once across servers. A server dials only the jobs of communities whose
PBX link it drives (``can_dial``: the link's owner, ``callcenter.ha``), and it
takes a job with one conditional update (``state = 'queued'`` → ``'dialing'``):
two servers racing for a job, only one update matches. A job is never put back
to ``queued`` while its call may still be up: the worker that dialled it writes
its outcome; if that server dies, the job is left ``dialing`` until the ring
and the longest call are surely over (``stale_s``), then finished from what its
call's script wrote (the call lives on in Asterisk and the new owner adopts it), or
counted ``lost`` and
retried per the rules, after which the person may be called again, never while
the first call can still be ringing.

The limit. ``max_calls`` per link counts the jobs ``dialing`` on that link in
the database, not in memory, so a standby that just took the link over counts
the calls the old owner left up. ``pace_s`` spaces the starts on one link.

Calling hours. A job due in the quiet hours or on a public holiday is moved to
the next open minute before it is taken (``CallingHours``); urgent kinds skip
that. Do-not-call (the owner's ``do_not_call``) and numbers that cannot be
dialled end the job before anything is sent (``skipped``, ``invalid``).

Pausing. A kind held (``outbound_holds``) or a campaign paused stops new dials
within a second on every server (re-read every 0.5 s while a turn dials); calls
already ringing finish.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.directory.models import Person, PersonPhone
from callcenter.directory.phones import try_normalize
from callcenter.outbound import rules
from callcenter.outbound.calling_hours import CallingHours
from callcenter.outbound.models import (
    DIALING,
    DONE,
    INVALID,
    QUEUED,
    SKIPPED,
    UNREACHED,
    OutboundAttempt,
    OutboundCampaign,
    OutboundHold,
    OutboundJob,
)
from callcenter.outbound.numbers import dial_string
from callcenter.paging.originate import OriginateOutcome, OriginateStatus

log = logging.getLogger(__name__)

class Clock(Protocol):
    def now(self) -> datetime: ...


class Originate(Protocol):
    """Places one call through a community's PBX: ``OriginateOutcome``."""

    async def __call__(self, community: str, channel: str, context: str, exten: str,
                       variables: Mapping[str, str], ring_s: float,
                       caller_id: str) -> OriginateOutcome: ...


@dataclass(frozen=True)
class DialerConfig:
    max_calls: int = 30
    """Per PBX link, across servers."""
    pace_s: float = 0.2
    """At least this long between two call starts on one link."""
    ring_s: float = 30.0
    script_s: float = 180.0
    """The longest an answered call's script may take to give its verdict."""
    poll_s: float = 1.0
    batch: int = 50
    trunk: str = "PJSIP/{number}@trunk"
    caller_id: str = ""
    caller_ids: Mapping[str, str] = field(default_factory=dict)
    """Community code → the number it presents (its hotline), else ``caller_id``."""
    urgent_kinds: frozenset[str] = frozenset()
    context: str = "callcenter-outbound"
    """Where an answered call goes: the printed ``[callcenter-outbound]`` (AsyncAGI) or
    ``[callcenter-outbound-fastagi]``."""

    @property
    def stale_s(self) -> float:
        """How long a job stays ``dialing`` after its server stopped: its call cannot be
        ringing or talking any more (ring + the longest call + a margin)."""
        return self.ring_s + self.script_s + 30.0


@dataclass(slots=True)
class Verdict:
    """What the answered call's script found (``rules`` outcome + its result)."""

    outcome: str
    result: dict[str, Any] | None = None
    note: str = ""


class Verdicts:
    """The scripts' answers, keyed by attempt id, for the dialer waiting on them."""

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[Verdict]] = {}

    def expect(self, attempt_id: int) -> asyncio.Future[Verdict]:
        fut = asyncio.get_running_loop().create_future()
        self._futures[attempt_id] = fut
        return fut

    def resolve(self, attempt_id: int, verdict: Verdict) -> None:
        fut = self._futures.pop(attempt_id, None)
        if fut is not None and not fut.done():
            fut.set_result(verdict)

    def discard(self, attempt_id: int) -> None:
        self._futures.pop(attempt_id, None)


JobDone = Callable[[OutboundJob], Awaitable[None]]
"""Awaited after a job reaches a final state (a survey not reached → manual 回访)."""
StillWanted = Callable[[AsyncSession, OutboundJob], Awaitable[str | None]]
"""Why a job of its kind should not be dialled now after all (Chinese), else None."""


class Dialer:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], originate: Originate,
                 clock: Clock, bus: EventBus, verdicts: Verdicts, *,
                 hours: CallingHours, config: DialerConfig | None = None,
                 retry: rules.RetryRules | None = None,
                 link_for: Callable[[str], str | None] = lambda community: "pbx",
                 can_dial: Callable[[str], bool] = lambda community: True,
                 on_final: Mapping[str, JobDone] | None = None,
                 still_wanted: Mapping[str, StillWanted] | None = None,
                 server_id: str | None = None) -> None:
        self._sm = sessionmaker
        self._originate = originate
        self._clock = clock
        self._bus = bus
        self.verdicts = verdicts
        self.hours = hours
        self.config = config or DialerConfig()
        self.rules = retry or rules.RetryRules()
        self._link_for = link_for
        self._can_dial = can_dial
        self._on_final = dict(on_final or {})
        self._still_wanted = dict(still_wanted or {})
        self.server_id = server_id or f"dialer-{uuid.uuid4().hex[:8]}"
        self._holds: set[str] = set()
        self._paused_campaigns: set[int] = set()
        self._holds_read_at = -1e9
        self._calls: set[asyncio.Task[None]] = set()
        self._last_start: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ control
    def wake(self) -> None:
        self._wake.set()

    async def _held(self) -> set[str]:
        """The kinds a supervisor paused (``outbound_holds``, every server),
        re-read at most every 0.5 s while a turn starts calls: a pause stops new dials
        within a second."""
        now = _mono()
        if now - self._holds_read_at >= 0.5:
            async with self._sm() as session:
                self._holds = set((await session.scalars(select(OutboundHold.kind))).all())
                self._paused_campaigns = set((await session.scalars(
                    select(OutboundCampaign.id).where(OutboundCampaign.state == "paused")
                )).all())
            self._holds_read_at = now
        return self._holds

    def _campaign_paused(self, job: OutboundJob) -> bool:
        return job.campaign_id is not None and job.campaign_id in self._paused_campaigns

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="outbound-dialer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for t in list(self._calls):
            t.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the calls in flight (tests, benches)."""
        while self._calls:
            await asyncio.gather(*list(self._calls), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbound dialer: a turn failed; trying again")
            self._wake.clear()
            try:  # no task per turn (asyncio.timeout, not wait_for): nothing left behind
                async with asyncio.timeout(self.config.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ one turn
    async def tick(self) -> int:
        """Recover stale jobs, move jobs out of the quiet hours, start what the limits
        allow. Returns how many calls it started."""
        now = self._clock.now()
        await self._recover_stale(now)
        started = 0
        held = await self._held()
        waiting = [OutboundJob.state == QUEUED, OutboundJob.due_at <= now]
        if held:
            waiting.append(OutboundJob.kind.notin_(sorted(held)))
        if self._paused_campaigns:
            waiting.append(or_(OutboundJob.campaign_id.is_(None),
                               OutboundJob.campaign_id.notin_(sorted(self._paused_campaigns))))
        async with self._sm() as session:
            busy: dict[str | None, int] = {link: int(n) for link, n in (await session.execute(
                select(OutboundJob.link, func.count()).where(OutboundJob.state == DIALING)
                .group_by(OutboundJob.link))).all()}
            # Only the communities this server may dial now, on links with room: a full
            # PBX, a paused kind or campaign never keeps another's calls waiting.
            communities = [c for c in (await session.scalars(
                select(OutboundJob.community).where(*waiting).distinct())).all()
                if self._can_dial(c) and (link := self._link_for(c)) is not None
                and busy.get(link, 0) < self.config.max_calls]
            due = list((await session.scalars(
                select(OutboundJob).where(*waiting, OutboundJob.community.in_(communities))
                .order_by(OutboundJob.due_at, OutboundJob.id).limit(self.config.batch)
            )).all()) if communities else []
        for job in due:
            if job.kind in await self._held() or self._campaign_paused(job) \
                    or not self._can_dial(job.community):
                continue
            urgent = job.kind in self.config.urgent_kinds
            open_at = self.hours.next_open(now, job.community, urgent=urgent)
            if open_at > now:
                await self._postpone(job.id, open_at, self.hours.why_not(now, job.community))
                continue
            link = self._link_for(job.community)
            if link is None:
                continue
            if busy.get(link, 0) >= self.config.max_calls:
                continue
            wait = self._last_start.get(link, -1e9) + self.config.pace_s - _mono()
            if wait > 0:
                await asyncio.sleep(wait)
            claimed = await self._claim(job.id, link, now)
            if claimed is None:
                continue
            if claimed.state != DIALING:
                continue  # ended before dialling (do-not-call, a bad number)
            busy[link] = busy.get(link, 0) + 1
            self._last_start[link] = _mono()
            started += 1
            task = asyncio.get_running_loop().create_task(self._call(claimed),
                                                          name=f"outbound-{claimed.id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        return started

    async def _postpone(self, job_id: int, when: datetime, why: str | None) -> None:
        async with self._sm() as session:
            await session.execute(update(OutboundJob).where(
                OutboundJob.id == job_id, OutboundJob.state == QUEUED)
                .values(due_at=when, note=(f"{why}，顺延" if why else "")[:500]))
            await session.commit()

    async def _claim(self, job_id: int, link: str, now: datetime) -> OutboundJob | None:
        """Take the job (one server wins), then end it at once if it must not be dialled."""
        async with self._sm() as session:
            res = await session.execute(update(OutboundJob).where(
                OutboundJob.id == job_id, OutboundJob.state == QUEUED,
                OutboundJob.due_at <= now)
                .values(state=DIALING, claimed_by=self.server_id, claimed_at=now, link=link,
                        attempts=OutboundJob.attempts + 1, updated_at=now))
            await session.commit()
            if res.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = await session.get(OutboundJob, job_id)
            assert job is not None
            if await do_not_call(session, job):
                job.attempts -= 1
                await self._end(session, job, SKIPPED, None, "业主已设为勿扰，不呼叫", now)
                return job
            check = self._still_wanted.get(job.kind)
            why = await check(session, job) if check is not None else None
            if why:
                job.attempts -= 1
                await self._end(session, job, SKIPPED, None, why, now)
                return job
            if dial_string(job.number) is None:
                job.attempts -= 1
                await self._end(session, job, INVALID, rules.INVALID_NUMBER,
                                "号码无法拨打，请核对业主资料", now)
                return job
            return job

    async def _call(self, job: OutboundJob) -> None:
        now = self._clock.now()
        number = dial_string(job.number) or job.number
        async with self._sm() as session:
            attempt = OutboundAttempt(job_id=job.id, number=job.number, link=job.link or "",
                                      server=self.server_id, started_at=now)
            session.add(attempt)
            await session.commit()
            attempt_id = attempt.id
        verdict_fut = self.verdicts.expect(attempt_id)
        cfg = self.config
        variables = {"CC_OUTBOUND_JOB": str(job.id), "CC_OUTBOUND_ATTEMPT": str(attempt_id),
                     "CC_OUTBOUND_KIND": job.kind}
        try:
            result = await asyncio.wait_for(self._originate(
                job.community, cfg.trunk.format(number=number), cfg.context, str(job.id),
                variables, cfg.ring_s, cfg.caller_ids.get(job.community, cfg.caller_id)),
                cfg.ring_s + 30)
        except TimeoutError:
            result = OriginateOutcome(OriginateStatus.FAILED, "originate_timeout")
        except Exception as exc:
            log.warning("outbound job %s: originate failed: %s", job.id, exc)
            result = OriginateOutcome(OriginateStatus.FAILED, type(exc).__name__)
        if result.status is OriginateStatus.UNAVAILABLE:
            # nothing rang: the attempt does not count, the job waits for the link
            self.verdicts.discard(attempt_id)
            await self._unavailable(job, attempt_id, result)
            return
        verdict: Verdict | None = None
        if result.status is OriginateStatus.ANSWERED:
            try:
                verdict = await asyncio.wait_for(asyncio.shield(verdict_fut), cfg.script_s)
            except TimeoutError:
                verdict = await self._verdict_in_db(attempt_id)
        self.verdicts.discard(attempt_id)
        if verdict is None:
            outcome = rules.HUNG_UP if result.status is OriginateStatus.ANSWERED else \
                rules.outcome_of_originate(result.status.value, result.reason)
            verdict = Verdict(outcome)
        await self.finish(job.id, attempt_id, verdict)

    async def _verdict_in_db(self, attempt_id: int) -> Verdict | None:
        """The script ran on another server (the call was adopted): its row says."""
        async with self._sm() as session:
            a = await session.get(OutboundAttempt, attempt_id)
        if a is not None and a.outcome:
            return Verdict(a.outcome, None, a.detail)
        return None

    async def _unavailable(self, job: OutboundJob, attempt_id: int,
                           result: OriginateOutcome) -> None:
        now = self._clock.now()
        async with self._sm() as session:
            a = await session.get(OutboundAttempt, attempt_id)
            if a is not None:
                await session.delete(a)
            await session.execute(update(OutboundJob).where(
                OutboundJob.id == job.id, OutboundJob.state == DIALING,
                OutboundJob.claimed_by == self.server_id)
                .values(state=QUEUED, attempts=OutboundJob.attempts - 1, claimed_by=None,
                        link=None, due_at=now + timedelta(seconds=10),
                        note="电话线路暂不可用，稍后再呼叫", updated_at=now))
            await session.commit()
        log.warning("outbound job %s: PBX unavailable (%s): tried again in 10 s", job.id,
                    result.reason)

    async def finish(self, job_id: int, attempt_id: int, verdict: Verdict) -> None:
        """Write the attempt's outcome and move the job on (retry or a final state)."""
        now = self._clock.now()
        async with self._sm() as session:
            attempt = await session.get(OutboundAttempt, attempt_id)
            if attempt is not None:
                attempt.ended_at = now
                attempt.outcome = attempt.outcome or verdict.outcome
                if verdict.note:
                    attempt.detail = verdict.note[:500]
            job = (await session.scalars(select(OutboundJob).where(
                OutboundJob.id == job_id).with_for_update())).first()
            if job is None or job.state != DIALING:
                await session.commit()
                return
            outcome = attempt.outcome if attempt is not None and attempt.outcome else \
                verdict.outcome
            if outcome == rules.ANSWERED:
                await self._end(session, job, DONE, outcome, verdict.note, now,
                                result=verdict.result)
                return
            wait = self.rules.after(outcome, job.attempts)
            if wait is None:
                final = INVALID if outcome == rules.INVALID_NUMBER else UNREACHED
                await self._end(session, job, final, outcome,
                                f"{job.attempts} 次呼叫未接通（{rules.OUTCOME_LABELS.get(outcome, outcome)}）",
                                now)
                return
            urgent = job.kind in self.config.urgent_kinds
            job.state, job.outcome, job.claimed_by, job.link = QUEUED, outcome, None, None
            job.due_at = self.hours.next_open(now + wait, job.community, urgent=urgent)
            job.note = f"{rules.OUTCOME_LABELS.get(outcome, outcome)}，稍后重拨"
            job.updated_at = now
            await session.commit()
        self._publish(job, now)

    async def _end(self, session: AsyncSession, job: OutboundJob, state: str,
                   outcome: str | None, note: str, now: datetime, *,
                   result: dict[str, Any] | None = None) -> None:
        job.state, job.outcome, job.note = state, outcome, note[:500]
        job.claimed_by, job.link, job.updated_at = None, None, now
        if result is not None:
            job.result = result
        await session.commit()
        self._publish(job, now)
        hook = self._on_final.get(job.kind)
        if hook is not None:
            try:
                await hook(job)
            except Exception:
                log.exception("outbound job %s: the %s follow-up failed", job.id, job.kind)

    def _publish(self, job: OutboundJob, now: datetime) -> None:
        self._bus.publish(DomainEvent("outbound.job", {
            "job_id": job.id, "kind": job.kind, "community": job.community,
            "state": job.state, "outcome": job.outcome, "ticket_id": job.ticket_id}, at=now))

    async def _recover_stale(self, now: datetime) -> None:
        """Jobs left ``dialing`` by a server that stopped, long after any call could be up."""
        stale = now - timedelta(seconds=self.config.stale_s)
        async with self._sm() as session:
            job_ids = list((await session.scalars(select(OutboundJob.id).where(
                OutboundJob.state == DIALING, OutboundJob.claimed_at < stale))).all())
            last: dict[int, int] = {job: attempt for job, attempt in (await session.execute(
                select(OutboundAttempt.job_id, func.max(OutboundAttempt.id))
                .where(OutboundAttempt.job_id.in_(job_ids))
                .group_by(OutboundAttempt.job_id))).all()} if job_ids else {}
            unplaced = [j for j in job_ids if j not in last]
            if unplaced:  # taken, then the server stopped before it dialled: not a try
                await session.execute(update(OutboundJob).where(
                    OutboundJob.id.in_(unplaced), OutboundJob.state == DIALING)
                    .values(state=QUEUED, claimed_by=None, link=None, due_at=now,
                            attempts=OutboundJob.attempts - 1))
                await session.commit()
        for job_id, attempt_id in last.items():
            log.warning("outbound job %s: its server stopped during the call; counted lost",
                        job_id)
            await self.finish(job_id, attempt_id, Verdict(rules.LOST, None,
                                                          "呼叫中服务器中断，结果未知"))


async def do_not_call(session: AsyncSession, job: OutboundJob) -> bool:
    """The job's person, or anyone in the directory with the job's number, asked not
    to be called (read at dial time: a flag set after the job was queued counts)."""
    ids: set[int] = {job.person_id} if job.person_id is not None else set()
    e164 = try_normalize(job.number or "")
    if e164 is not None:
        ids.update((await session.scalars(select(PersonPhone.person_id).where(
            PersonPhone.number == e164))).all())
    if not ids:
        return False
    return (await session.scalars(select(Person.id).where(
        Person.id.in_(ids), Person.do_not_call.is_(True)).limit(1))).first() is not None


def _mono() -> float:
    return asyncio.get_running_loop().time()
