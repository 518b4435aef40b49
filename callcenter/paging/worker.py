"""The escalation worker: claims due timers from the database and runs steps.

A timer row is one escalation step of one incident. Claiming is atomic: on
PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` then an ``UPDATE``, on SQLite
a compare-and-set ``UPDATE ... WHERE claimed_by IS NULL``; so two server
processes on one database dial each step exactly once. The attempt row is
written before the Originate leaves; a worker that finds an attempt already
written for its timer (the previous owner died mid-call and its lease ran out)
records it as interrupted and moves on instead of dialling again.

An Originate the PBX could not take (``OriginateStatus.UNAVAILABLE``: link
down, Asterisk shutting down or not fully booted; or a ring the PBX ended by
restarting, ``pbx_restarted``) rang nobody who could answer: its attempt is
written ``deferred`` with the reason, and the same timer is due again after a
backoff (``unavailable_retry_s`` doubling up to ``unavailable_retry_max_s``),
so a PBX restart never uses up the chain or its rounds. Deferred attempts do
not count as "already ran", and the step's other channels are sent once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.directory.models import Community, StaffUser, works_for
from callcenter.logs import bind_task
from callcenter.notify.base import DeliveryResult, Notification, Notifier, NotifyError
from callcenter.oncall.errors import NoSchedule
from callcenter.oncall.router import national_number
from callcenter.oncall.services import OnCallPerson, who_is_on_call
from callcenter.paging.escalation import (
    Decision,
    NextAttempt,
    PolicySnapshot,
    Position,
    Restart,
    Step,
    Stop,
    decide,
)
from callcenter.paging.models import Incident, IncidentReport, PageAttempt, PagingTimer
from callcenter.paging.originate import (
    NO_PAGE_CALL,
    NOTIFY_INSTEAD,
    PBX_RESTARTED,
    OriginateOutcome,
    OriginateStatus,
    Originator,
    PageCallRegistry,
    PageResponse,
)
from callcenter.paging.services import CATEGORY_NAMES

log = logging.getLogger(__name__)
T = TypeVar("T")

UserNotifiers = Callable[[Mapping[str, str]], Sequence[Notifier]]
"""Builds a person's own notifiers from ``StaffUser.notify`` ({channel: address})."""


IDLE_TASK_NAME = "paging-worker:idle"
"""The worker's idle wait (wake-up or the next poll, every ``poll_interval_s``):
its helper tasks are made anew each poll, so they carry this name."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    # The ``[callcenter-page]`` context of ``callcenter asterisk-config`` (_X!, any id length → AGI(agi:async)).
    context: str = "callcenter-page"
    exten: str = "{incident_id}"
    trunk: str = "PJSIP/{number}@trunk"
    extension_channel: str = "PJSIP/{extension}"
    prefer: str = "mobile"  # mobile (then extension) or extension (then mobile)
    # A claim not refreshed for this long belongs to a dead worker. The running
    # loop refreshes its claims every lease_s / 3, so a crash delays a page by
    # about lease_s; run_due (tests, CLI) does not refresh.
    lease_s: float = 90.0
    poll_interval_s: float = 2.0
    max_inflight: int = 200  # steps running at once in the loop
    originate_grace_s: float = 15.0  # beyond the ring timeout, for the AMI round trip
    answer_wait_s: float = 120.0  # answered → the page-call script's verdict
    db_poll_s: float = 2.0  # how often to look for a verdict written by another process
    batch: int = 50
    unavailable_retry_s: float = 1.0  # the PBX could not take the Originate: first wait
    unavailable_retry_max_s: float = 15.0


HAND_BACK_PAUSE_S = 2.0
"""How long a worker leaves a step alone after handing it back (its PBX is another
server's): the owner's worker claims it meanwhile; if none does (the owner died),
this server may own the link by then (``callcenter.ha``: within the lease's TTL)."""

DEFERRED = "deferred"
"""The outcome of an attempt the PBX could not take (nothing rang)."""


@dataclass(frozen=True, slots=True)
class ClaimedTimer:
    id: int
    incident_id: int
    round: int
    step: int
    try_no: int


def page_targets(person: OnCallPerson, config: WorkerConfig) -> list[str]:
    mob = config.trunk.format(number=national_number(person.mobile)) if person.mobile else None
    ext = (config.extension_channel.format(extension=person.extension)
           if person.extension else None)
    order = [ext, mob] if config.prefer == "extension" else [mob, ext]
    return [t for t in order if t]


def describe_place(building: str, unit: str, room: str) -> str:
    parts = []
    if building:
        parts.append(f"{building}栋")
    if unit:
        parts.append(f"{unit}单元")
    if room:
        parts.append(f"{room}室")
    return "".join(parts)


class EscalationWorker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], originator: Originator,
                 clock: Clock, bus: EventBus, registry: PageCallRegistry, *,
                 config: WorkerConfig | None = None, notifiers: Sequence[Notifier] = (),
                 user_notifiers: UserNotifiers | None = None,
                 fallback_notifiers: UserNotifiers | None = None,
                 worker_id: str | None = None,
                 can_dial: Callable[[str | None], bool] | None = None) -> None:
        """``fallback_notifiers``: a person's channels when no PBX can take their page
        (``NOTIFY_INSTEAD``; by default ``user_notifiers``). ``can_dial(community)``:
        whether this server drives the community's PBX link now (``callcenter.ha``);
        a step it cannot dial is handed back untouched for the server that can."""
        self._sm = sessionmaker
        self._originator = originator
        self._clock = clock
        self._bus = bus
        self._registry = registry
        self.config = config or WorkerConfig()
        self._notifiers = tuple(notifiers)
        self._user_notifiers = user_notifiers
        self._fallback_notifiers = fallback_notifiers or user_notifiers
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._inflight: set[int] = set()  # timer ids being run by this worker
        self._can_dial = can_dial
        self._passed: dict[int, float] = {}  # timer id → monotonic time to look again
        self.handed_back = 0
        """Steps handed back because another server drives their PBX (tests)."""

    # ----------------------------------------------------------------- lifecycle

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        if self._loop_task is None:
            if self._can_dial is not None:
                await self._take_over_on_start()
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _take_over_on_start(self) -> None:
        """A server starting as the owner of a community's link (after a kill -9 and a
        restart, or the standby's start after the owner's death) takes over the steps
        still claimed by another worker there: only a link's owner dials, so those
        were a dead owner's. Without this they waited ``lease_s`` (90 s)."""
        try:
            async with self._sm() as session:
                codes = (await session.scalars(
                    select(Community.code).distinct()
                    .join(Incident, Incident.community_id == Community.id)
                    .join(PagingTimer, PagingTimer.incident_id == Incident.id)
                    .where(PagingTimer.done.is_(False), PagingTimer.claimed_by.is_not(None),
                           PagingTimer.claimed_by != self.worker_id))).all()
            assert self._can_dial is not None
            mine = [c for c in codes if self._can_dial(c)]
            if mine:
                await self.take_over_claims(mine)
        except Exception:
            log.exception("paging worker %s: claims of a previous owner not taken over "
                          "(they free themselves after the lease)", self.worker_id)

    async def stop(self) -> None:
        """Cancel running steps. Timers whose Originate never left are handed
        back at once, so the next server dials them without waiting for the
        lease; the others become ``interrupted`` there (never dialled twice)."""
        inflight = set(self._inflight)
        tasks = [t for t in (self._loop_task, *self._tasks, *self._side_tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None
        self._tasks.clear()
        self._side_tasks.clear()
        self._inflight.clear()
        if inflight:
            try:
                await self._release_unstarted(inflight)
            except Exception:
                log.exception("paging worker %s: could not release claims", self.worker_id)

    async def _release_unstarted(self, timer_ids: set[int]) -> None:
        async with self._sm() as session:
            started = set((await session.scalars(
                select(PageAttempt.timer_id).where(PageAttempt.timer_id.in_(timer_ids),
                                                   PageAttempt.channel == "phone")
            )).all())
            unstarted = timer_ids - started
            if unstarted:
                await session.execute(
                    update(PagingTimer).where(PagingTimer.id.in_(unstarted),
                                              PagingTimer.claimed_by == self.worker_id,
                                              PagingTimer.done.is_(False))
                    .values(claimed_by=None, claimed_at=None))
            await session.commit()

    async def heartbeat(self) -> None:
        """Refresh the claims of the steps this worker is running."""
        if not self._inflight:
            return
        async with self._sm() as session:
            await session.execute(
                update(PagingTimer).where(PagingTimer.id.in_(set(self._inflight)),
                                          PagingTimer.claimed_by == self.worker_id,
                                          PagingTimer.done.is_(False))
                .values(claimed_at=self._clock.now()))
            await session.commit()

    async def drain_side_tasks(self) -> None:
        """Wait for secondary-channel notifications still being sent (tests)."""
        while self._side_tasks:
            await asyncio.gather(*list(self._side_tasks), return_exceptions=True)

    async def _loop(self) -> None:
        last_beat = self._clock.monotonic()
        while True:
            self._wake.clear()
            try:
                if self._clock.monotonic() - last_beat >= self.config.lease_s / 3:
                    last_beat = self._clock.monotonic()
                    await self.heartbeat()
                room = self.config.max_inflight - len(self._tasks)
                for timer in (await self.claim_due(limit=room)) if room > 0 else []:
                    task = asyncio.get_running_loop().create_task(self._run(timer))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("paging worker %s: claiming timers failed", self.worker_id)
            await self._wait_any(self._wake.wait(),
                                 min(self.config.poll_interval_s, self.config.lease_s / 3),
                                 name=IDLE_TASK_NAME)

    async def run_due(self) -> int:
        """Claim every due timer and run them to completion (tests, CLI)."""
        total = 0
        while True:
            timers = await self.claim_due()
            if not timers:
                return total
            total += len(timers)
            await asyncio.gather(*(self._run(t) for t in timers))

    async def _wait_any(self, awaitable: Awaitable[T], timeout_s: float, *,
                        name: str | None = None) -> T | None:
        """Wait for ``awaitable`` up to ``timeout_s`` on the injected clock; ``name``
        names the two helper tasks (the idle poll's, so they can be told apart)."""
        main = asyncio.ensure_future(awaitable)
        sleeper = asyncio.ensure_future(self._clock.sleep(timeout_s))
        if name is not None:
            for task in (main, sleeper):
                if isinstance(task, asyncio.Task):
                    task.set_name(name)
        try:
            await asyncio.wait({main, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not main.done():
                main.cancel()
        if main.done() and not main.cancelled():
            return main.result()
        return None

    # ----------------------------------------------------------------- claiming

    async def claim_due(self, limit: int | None = None) -> list[ClaimedTimer]:
        now = self._clock.now()
        batch = min(self.config.batch, limit) if limit is not None else self.config.batch
        stale = now - timedelta(seconds=self.config.lease_s)
        mono = self._clock.monotonic()
        self._passed = {t: until for t, until in self._passed.items() if until > mono}
        claimable = and_(
            PagingTimer.done.is_(False),
            PagingTimer.due_at <= now,
            or_(PagingTimer.claimed_by.is_(None), PagingTimer.claimed_at < stale),
            *([PagingTimer.id.notin_(list(self._passed))] if self._passed else []),
        )
        async with self._sm() as session:
            if session.get_bind().dialect.name == "postgresql":
                ids = list((await session.scalars(
                    select(PagingTimer.id).where(claimable).order_by(PagingTimer.due_at)
                    .limit(batch).with_for_update(skip_locked=True)
                )).all())
                if ids:
                    await session.execute(
                        update(PagingTimer).where(PagingTimer.id.in_(ids))
                        .values(claimed_by=self.worker_id, claimed_at=now)
                    )
                await session.commit()
            else:
                candidates = list((await session.scalars(
                    select(PagingTimer.id).where(claimable).order_by(PagingTimer.due_at)
                    .limit(batch)
                )).all())
                await session.commit()
                ids = []
                for tid in candidates:
                    res = await session.execute(
                        update(PagingTimer).where(PagingTimer.id == tid, claimable)
                        .values(claimed_by=self.worker_id, claimed_at=now)
                    )
                    await session.commit()
                    if res.rowcount == 1:  # type: ignore[attr-defined]
                        ids.append(tid)
            if not ids:
                return []
            rows = (await session.scalars(
                select(PagingTimer).where(PagingTimer.id.in_(ids)).order_by(PagingTimer.due_at)
            )).all()
            self._inflight.update(r.id for r in rows)
            return [ClaimedTimer(r.id, r.incident_id, r.round, r.step, r.try_no) for r in rows]

    # ----------------------------------------------------------------- one step

    async def _run(self, timer: ClaimedTimer) -> None:
        try:
            await self._run_step(timer)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Leave the claim in place: after the lease another worker takes the
            # timer, finds the attempt row and moves on without re-dialling.
            self._inflight.discard(timer.id)
            log.exception("paging: timer %s of incident %s failed", timer.id, timer.incident_id)
        else:
            self._inflight.discard(timer.id)

    async def _run_step(self, timer: ClaimedTimer) -> None:
        async with self._sm() as session:
            incident = await session.get(Incident, timer.incident_id)
            if incident is None or incident.state != "open":
                await self._close_timer(session, timer)
                return
            # The page's lines name the call that raised the emergency (_run is a task).
            bind_task(linkedid=await session.scalar(
                select(IncidentReport.call_id).where(IncidentReport.incident_id == incident.id)
                .order_by(IncidentReport.id).limit(1)))
            community = await session.get(Community, incident.community_id)
            assert community is not None
            if self._can_dial is not None and not self._can_dial(community.code):
                await self._hand_back(session, timer)
                return
            policy = PolicySnapshot.from_json(incident.policy_snapshot)
            phone_rows = (await session.scalars(
                select(PageAttempt).where(PageAttempt.timer_id == timer.id,
                                          PageAttempt.channel == "phone")
            )).all()
            deferrals = sum(1 for r in phone_rows if r.outcome == DEFERRED)
            prior = next((r for r in phone_rows if r.outcome != DEFERRED), None)
            outcome: str = ""
            if prior is not None:
                if prior.outcome is None:
                    prior.outcome = "interrupted"
                    prior.error_code = "worker_lost"
                    prior.ended_at = self._clock.now()
                    await session.commit()
                outcome = prior.outcome
                log.warning("paging: timer %s already ran (attempt %s, %s); not dialling again",
                            timer.id, prior.id, outcome)
                person = None
            else:
                step = policy.steps[min(timer.step, len(policy.steps) - 1)]
                person = await self._resolve(session, community, policy, step)
        pos = Position(timer.round, timer.step, timer.try_no)
        if prior is None:
            if timer.try_no == 0 and not deferrals:
                secondary = [n for n in self._notifiers if n.channel in step.channels]
                if person is not None and self._user_notifiers is not None:
                    secondary += [n for n in self._user_notifiers(person.notify)
                                  if n.channel in step.channels]
                if secondary:
                    msg = self._message(incident, community, person, "紧急事件，请立即处理")
                    self._spawn_notifications(incident.id, timer, person, secondary, msg)
            if "phone" in step.channels:
                outcome = await self._phone(timer, incident, community, person, step,
                                            deferrals=deferrals)
            else:
                outcome = "sent"
        if outcome == DEFERRED:
            return  # the same step is due again once the PBX may be back
        await self._advance(timer, policy, pos, outcome, incident, community)

    async def take_over_claims(self, communities: Sequence[str] | None) -> int:
        """This server just took over the PBX of ``communities`` (None: every one): the
        steps of their open incidents still claimed by another worker were the previous
        owner's (only a link's owner dials its steps), which died or lost the database.
        Free them now instead of after ``lease_s``: a step whose attempt row was written
        becomes ``interrupted`` here (never dialled again), the others are dialled."""
        async with self._sm() as session:
            query = (select(PagingTimer.id)
                     .join(Incident, Incident.id == PagingTimer.incident_id)
                     .join(Community, Community.id == Incident.community_id)
                     .where(PagingTimer.done.is_(False), PagingTimer.claimed_by.is_not(None),
                            PagingTimer.claimed_by != self.worker_id))
            if communities is not None:
                query = query.where(Community.code.in_(list(communities)))
            ids = list((await session.scalars(query)).all())
            if ids:
                await session.execute(
                    update(PagingTimer).where(PagingTimer.id.in_(ids),
                                              PagingTimer.claimed_by != self.worker_id,
                                              PagingTimer.done.is_(False))
                    .values(claimed_by=None, claimed_at=None))
            await session.commit()
        if ids:
            log.warning("paging: %d steps left claimed by the previous owner taken over",
                        len(ids))
            self.wake()
        return len(ids)

    async def _hand_back(self, session: AsyncSession, timer: ClaimedTimer) -> None:
        """Another server drives this step's PBX: release the claim as it was (due now,
        nothing written) and leave it alone for a while, so that server claims it."""
        await session.execute(
            update(PagingTimer).where(PagingTimer.id == timer.id,
                                      PagingTimer.claimed_by == self.worker_id,
                                      PagingTimer.done.is_(False))
            .values(claimed_by=None, claimed_at=None))
        await session.commit()
        self._passed[timer.id] = self._clock.monotonic() + HAND_BACK_PAUSE_S
        self.handed_back += 1
        log.info("paging: timer %s of incident %s handed back: another server drives "
                 "its PBX", timer.id, timer.incident_id)

    async def _close_timer(self, session: AsyncSession, timer: ClaimedTimer) -> None:
        await session.execute(update(PagingTimer).where(PagingTimer.id == timer.id)
                              .values(done=True))
        await session.commit()

    async def _resolve(self, session: AsyncSession, community: Community, policy: PolicySnapshot,
                       step: Step) -> OnCallPerson | None:
        if step.target == "user":
            user = await session.get(StaffUser, step.user_id) if step.user_id else None
            if user is None or not user.active:
                return None
            return OnCallPerson(user.id, user.display_name or user.username, "user",
                                user.extension, user.mobile, dict(user.notify or {}))
        role = step.role or policy.role
        people: tuple[OnCallPerson, ...] = ()
        try:
            answer = await who_is_on_call(session, community, role, self._clock.now())
            people = answer.people
        except NoSchedule:
            log.warning("paging: no %s schedule in %s", role, community.code)
        if step.target == "oncall":
            return people[0] if people else None
        if step.target == "backup":
            return people[1] if len(people) > 1 else None
        for p in people:
            if p.label == "supervisor":
                return p
        supervisors = await self._supervisors(session, community)
        return supervisors[0] if supervisors else None

    async def _supervisors(self, session: AsyncSession, community: Community) -> list[OnCallPerson]:
        rows = (await session.scalars(
            select(StaffUser).where(
                StaffUser.role == "supervisor", StaffUser.active.is_(True),
                works_for(community.id),
            ).order_by(StaffUser.all_communities, StaffUser.id)
        )).all()
        return [OnCallPerson(u.id, u.display_name or u.username, "supervisor", u.extension,
                             u.mobile, dict(u.notify or {})) for u in rows]

    # ----------------------------------------------------------------- phone

    async def _record(self, timer: ClaimedTimer, *, person: OnCallPerson | None, channel: str,
                      target: str, outcome: str | None = None, error_code: str = "",
                      detail: str = "", ended: bool = False, step: int | None = None) -> int:
        now = self._clock.now()
        async with self._sm() as session:
            row = PageAttempt(
                incident_id=timer.incident_id, timer_id=timer.id if step is None else None,
                round=timer.round, step=timer.step if step is None else step,
                try_no=timer.try_no, user_id=person.user_id if person else None,
                person_name=person.name if person else "", channel=channel, target=target[:300],
                started_at=now, ended_at=now if ended else None, outcome=outcome,
                error_code=error_code[:64], detail=detail[:500], worker=self.worker_id,
            )
            session.add(row)
            await session.commit()
            return row.id

    def unavailable_delay(self, deferrals: int) -> float:
        """The wait before the ``deferrals + 1``-th try of a step the PBX could not take."""
        cfg = self.config
        return min(cfg.unavailable_retry_max_s, cfg.unavailable_retry_s * 2 ** min(deferrals, 20))

    async def _defer(self, timer: ClaimedTimer, attempt_id: int, reason: str,
                     deferrals: int, note: str = "") -> None:
        """Write the attempt ``deferred`` and hand the timer back, due after a backoff."""
        delay = self.unavailable_delay(deferrals)
        now = self._clock.now()
        async with self._sm() as session:
            row = await session.get(PageAttempt, attempt_id)
            assert row is not None
            row.outcome = DEFERRED
            row.error_code = reason[:64]
            what = ("the PBX restarted during the ring and hung it up" if reason == PBX_RESTARTED
                    else "nothing rang")
            row.detail = (f"PBX unavailable ({reason}): {what}; the step is tried again "
                          f"in {delay:g}s, when the link is back")[:500]
            if note:
                row.detail = f"{note}（{delay:g} 秒后再试）"[:500]
            row.ended_at = now
            await session.execute(
                update(PagingTimer).where(PagingTimer.id == timer.id,
                                          PagingTimer.claimed_by == self.worker_id,
                                          PagingTimer.done.is_(False))
                .values(due_at=now + timedelta(seconds=delay), claimed_by=None, claimed_at=None))
            await session.commit()
        log.warning("paging: timer %s of incident %s deferred %.1fs: PBX unavailable (%s)",
                    timer.id, timer.incident_id, delay, reason)
        self._bus.publish(DomainEvent("page.deferred", {
            "incident_id": timer.incident_id, "attempt_id": attempt_id, "reason": reason,
            "retry_in_s": delay}, at=now))

    async def _phone(self, timer: ClaimedTimer, incident: Incident, community: Community,
                     person: OnCallPerson | None, step: Step, *, deferrals: int = 0) -> str:
        if person is None:
            await self._record(timer, person=None, channel="phone", target="",
                               outcome="failed", error_code="no_target", ended=True,
                               detail="nobody to page for this step")
            return "failed"
        targets = page_targets(person, self.config)
        if not targets:
            await self._record(timer, person=person, channel="phone", target="",
                               outcome="failed", error_code="no_phone", ended=True,
                               detail="no mobile or extension on file")
            return "failed"
        target = targets[0]
        attempt_id = await self._record(timer, person=person, channel="phone", target=target)
        verdict = self._registry.expect(attempt_id)
        variables = {"CC_INCIDENT": str(incident.id), "CC_PAGE_ATTEMPT": str(attempt_id)}
        try:
            result = await self._wait_any(
                self._originator.originate(
                    target, self.config.context,
                    self.config.exten.format(incident_id=incident.id, attempt_id=attempt_id),
                    variables, float(step.ring_timeout_s), community=community.code),
                step.ring_timeout_s + self.config.originate_grace_s,
            )
            if result is None:
                result = OriginateOutcome(OriginateStatus.FAILED, "originate_timeout")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("paging: originate %s failed: %s", target, exc)
            result = OriginateOutcome(OriginateStatus.FAILED, getattr(exc, "error_id", "") or
                                      type(exc).__name__)
        outcome: str
        error_code = ""
        if result.note and result.status is not OriginateStatus.UNAVAILABLE:
            # The page left otherwise than through the community's own PBX: say so.
            await self._note(attempt_id, result.note)
        if result.reason == NOTIFY_INSTEAD:  # a failed call; the chain goes on
            self._notify_instead(timer, incident, community, person, result.note)
        elif result.status is OriginateStatus.UNAVAILABLE:
            self._registry.discard(attempt_id)
            await self._defer(timer, attempt_id, result.reason or "pbx_unavailable", deferrals,
                              result.note)
            return DEFERRED
        if result.status is OriginateStatus.ANSWERED:
            response = await self._await_verdict(attempt_id, verdict)
            if response is None:
                outcome, error_code = "failed", NO_PAGE_CALL
            else:
                outcome = response.value
        else:
            self._registry.discard(attempt_id)
            outcome = result.status.value
            error_code = result.reason
        async with self._sm() as session:
            row = await session.get(PageAttempt, attempt_id)
            assert row is not None
            if row.outcome is None:
                row.outcome = outcome
                row.error_code = error_code[:64]
            else:
                outcome = row.outcome  # the page-call script's verdict is authoritative
            row.ended_at = self._clock.now()
            await session.commit()
        self._bus.publish(DomainEvent("page.attempt", {
            "incident_id": incident.id, "attempt_id": attempt_id, "user_id": person.user_id,
            "person": person.name, "target": target, "outcome": outcome,
            "error_code": error_code}, at=self._clock.now()))
        return outcome

    async def _note(self, attempt_id: int, note: str) -> None:
        async with self._sm() as session:
            row = await session.get(PageAttempt, attempt_id)
            if row is not None:
                row.detail = note[:500]
                await session.commit()

    def _notify_instead(self, timer: ClaimedTimer, incident: Incident, community: Community,
                        person: OnCallPerson, note: str) -> None:
        """No PBX to call ``person`` through: their own channels carry the page."""
        channels = list(self._fallback_notifiers(person.notify)) if self._fallback_notifiers \
            else []
        if not channels:
            log.warning("paging: no PBX for incident %s and %s has no channel", incident.id,
                        person.name)
            return
        msg = self._message(incident, community, person, f"紧急事件，请立即处理（{note}）")
        self._spawn_notifications(incident.id, timer, person, channels, msg, step=timer.step)

    async def _await_verdict(self, attempt_id: int,
                             fut: asyncio.Future[PageResponse]) -> PageResponse | None:
        deadline = self._clock.monotonic() + self.config.answer_wait_s
        try:
            while True:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    return None
                got = await self._wait_any(asyncio.shield(fut),
                                           min(remaining, self.config.db_poll_s))
                if got is not None:
                    return got
                async with self._sm() as session:
                    row = await session.get(PageAttempt, attempt_id)
                    if row is not None and row.outcome is not None:
                        try:
                            return PageResponse(row.outcome)
                        except ValueError:
                            return PageResponse.FAILED
        finally:
            self._registry.discard(attempt_id)

    # ----------------------------------------------------------------- what next

    async def _advance(self, timer: ClaimedTimer, policy: PolicySnapshot, pos: Position,
                       outcome: str, incident: Incident, community: Community) -> None:
        decision: Decision = decide(policy, pos, outcome)
        now = self._clock.now()
        async with self._sm() as session:
            await session.execute(update(PagingTimer).where(PagingTimer.id == timer.id)
                                  .values(done=True))
            current = await session.get(Incident, timer.incident_id)
            still_open = current is not None and current.state == "open"
            if isinstance(decision, (NextAttempt, Restart)) and still_open:
                session.add(PagingTimer(
                    incident_id=timer.incident_id, round=decision.at.round,
                    step=decision.at.step, try_no=decision.at.try_no,
                    due_at=now + timedelta(seconds=decision.delay_s), created_at=now))
            elif isinstance(decision, Stop) and still_open and current is not None:
                current.stop_reason = decision.reason
            try:
                await session.commit()
            except IntegrityError:
                # Someone already scheduled that position: keep theirs.
                await session.rollback()
                await self._close_timer(session, timer)
                return
        if not still_open:
            return
        if isinstance(decision, Restart):
            self._bus.publish(DomainEvent("incident.restarted", {
                "incident_id": timer.incident_id, "round": decision.at.round}, at=now))
            await self._alert_supervisors(timer, incident, community,
                                          f"无人接警，第{decision.at.round + 1}轮重新呼叫")
        elif isinstance(decision, Stop) and decision.alert:
            self._bus.publish(DomainEvent("incident.exhausted", {
                "incident_id": timer.incident_id, "rounds": pos.round + 1}, at=now))
            await self._alert_supervisors(timer, incident, community, "所有人员均未接警，呼叫已停止")
        self.wake()

    # ----------------------------------------------------------------- notifications

    def _message(self, incident: Incident, community: Community, person: OnCallPerson | None,
                 text: str) -> Notification:
        category = CATEGORY_NAMES.get(incident.category, incident.category)
        fields = [("小区", community.name),
                  ("位置", describe_place(incident.building, incident.unit, incident.room) or "未知"),
                  ("事件编号", str(incident.id))]
        if incident.callers:
            fields.append(("报警电话", "、".join(incident.callers)))
        if incident.summary:
            fields.append(("描述", incident.summary))
        if person is not None:
            fields.append(("呼叫对象", person.name))
        mentions = (person.mobile,) if person is not None and person.mobile else ()
        return Notification(title=f"紧急事件：{category}", text=text, fields=tuple(fields),
                            key=f"incident-{incident.id}", mentions=mentions)

    def _spawn_notifications(self, incident_id: int, timer: ClaimedTimer,
                             person: OnCallPerson | None, notifiers: Sequence[Notifier],
                             message: Notification, step: int | None = None) -> None:
        for notifier in notifiers:
            task = asyncio.get_running_loop().create_task(
                self._notify(timer, person, notifier, message, step))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _notify(self, timer: ClaimedTimer, person: OnCallPerson | None, notifier: Notifier,
                      message: Notification, step: int | None) -> None:
        """Send on a secondary channel; never raises, always leaves a row."""
        target = str(getattr(notifier, "target", "") or getattr(notifier, "_url", "") or "")
        outcome, error_code, detail = "sent", "", ""
        try:
            result: Any = await notifier.send(message)  # type: ignore[func-returns-value]
            if isinstance(result, DeliveryResult) and not result.ok:
                outcome, error_code, detail = "failed", result.error_id, result.error
        except NotifyError as exc:
            outcome, error_code = "failed", exc.error_id
            status = exc.details.get("status") or exc.details.get("errcode")
            detail = f"{exc.message}" + (f" ({status})" if status else "")
        except Exception as exc:
            outcome, error_code, detail = "failed", "notify_crashed", repr(exc)
        try:
            await self._record(timer, person=person, channel=notifier.channel, target=target,
                               outcome=outcome, error_code=error_code, detail=detail, ended=True,
                               step=step)
        except Exception:
            log.exception("paging: could not record a %s notification", notifier.channel)

    async def _alert_supervisors(self, timer: ClaimedTimer, incident: Incident,
                                 community: Community, text: str) -> None:
        async with self._sm() as session:
            supervisors = await self._supervisors(session, community)
        message = self._message(incident, community, None, text)
        if self._notifiers:
            self._spawn_notifications(incident.id, timer, None, self._notifiers, message, step=-1)
        if self._user_notifiers is None:
            return
        for sup in supervisors:
            personal = list(self._user_notifiers(sup.notify))
            if personal:
                self._spawn_notifications(incident.id, timer, sup, personal, message, step=-1)

