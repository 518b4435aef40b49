"""The SLA worker: claims due timers from the database and fires each once.

Claiming follows paging's escalation worker: on PostgreSQL ``SELECT ... FOR
UPDATE SKIP LOCKED`` then an ``UPDATE`` of ``claimed_by``/``claimed_at``; on
SQLite (one server) a compare-and-set ``UPDATE ... WHERE state = 'pending' AND
claimed_by IS NULL`` per row. Firing is a second transaction that locks the
ticket (the same lock ``WorkOrders.act`` takes, so a 接单 and its red light
never cross), moves the timer ``pending → fired`` with a guarded ``UPDATE``
(only one worker ever succeeds) and writes the breach into the ticket's log
(``sla_breach``, with the kind and due time). After the commit it publishes
``ticket.sla_breach`` on the bus (the metric ``callcenter_sla_breaches_total``)
and sends the notice through the :class:`SlaNotifier` port; ``notified_at``
records that it went out.

The same machinery tells the supervisors of a 重大投诉 (``MAJOR_NOTICE``, armed by
``SlaClock`` due at once): fired once into the ticket's log (``major_notice``),
published as ``ticket.major_complaint`` (not a breach: no metric, no badge), sent
through the notifier, and the outcome (who was told) written to the log when
``notified_at`` is set.

Nothing is kept in memory: a timer due while every server was down is due when
one starts, and fires then. A claim not finished within ``lease_s`` (the worker
died) is taken over by another worker; a breach fired but not notified (the
worker died in between, or nobody could be reached) is notified again after
the lease, for up to ``notify_for_s``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from ticketing.categories import CATEGORIES, COMPLAINT_GRADES, MAJOR
from ticketing.delivery import Delivery
from ticketing.group_models import TicketGroup, TicketGroupEvent
from ticketing.models import Ticket, TicketEvent
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import GROUP_NOTICE, MAJOR_NOTICE
from ticketing.sla_timers import GROUP_ACTION, MAJOR_ACTION, breach_event, breach_of
from ticketing.workflow import OPEN_STATES, STATES

log = logging.getLogger(__name__)

SLA_IDLE_TASK_NAME = "sla-worker:idle"

RUNS_IN: dict[str, frozenset[str]] = {
    "response": frozenset({"new", "returned", "reopened"}),
    "red_light": frozenset({"new", "dispatched", "returned", "reopened"}),
    "escalation": OPEN_STATES,
    MAJOR_NOTICE: frozenset(STATES) - {"cancelled"},
    GROUP_NOTICE: frozenset(STATES),  # the incident is told even if this report is withdrawn
}
"""The states in which each clock may run out (a guard: the workflow's hook
already cancels a clock when its ticket leaves them)."""


@dataclass(frozen=True, slots=True)
class SlaBreach:
    """A clock that ran out, as the notifier sees it."""

    ticket_id: int
    number: str
    kind: str
    due_at: datetime
    text: str
    community_id: int | None
    category: str
    priority: str
    location: str
    summary: str
    department: str
    assignee_id: int | None

    @property
    def major(self) -> bool:
        """Not a breach: the notice of a 重大投诉 (to the supervisors)."""
        return self.kind == MAJOR_NOTICE

    @property
    def group(self) -> bool:
        """Not a breach: the notice of a group incident (to the supervisors)."""
        return self.kind == GROUP_NOTICE

    @property
    def title(self) -> str:
        if self.group:
            return f"群发事件：{self.location or self.number}"
        return f"重大投诉：{self.number}" if self.major else f"工单超时：{self.number}"

    @property
    def body(self) -> str:
        urgent = "【紧急】" if self.priority == "emergency" else ""
        return f"{urgent}{self.text}：{self.summary}"

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        cat = CATEGORIES.get(self.category)
        head = (("工单", self.number), ("位置", self.location or "未知"),
                ("类别", cat.label if cat else "其他"))
        if self.major:
            return (*head, ("投诉等级", COMPLAINT_GRADES[MAJOR]))
        if self.group:
            return (*head, ("群发事件", "多户报告同一问题"))
        return (*head, ("超时", self.text))


NOBODY = "nobody"
"""``SlaDelivery.error`` when there is nobody to tell (no such people, or none with a
channel): not retried; any other error is retried after the lease."""


SlaDelivery = Delivery
"""Who was told of a breach (前台 / 处理人和部门负责人 / 主管)."""


class SlaNotifier(Protocol):
    """Tells the right people: a response breach the front desk on duty, a red light
    the assignee and the department head, an escalation (and a 重大投诉,
    ``SlaBreach.major``) the community's supervisors."""

    async def notify(self, breach: SlaBreach) -> SlaDelivery: ...


@dataclass(frozen=True, slots=True)
class SlaWorkerConfig:
    poll_interval_s: float = 1.0
    lease_s: float = 60.0
    batch: int = 500
    notify_for_s: float = 24 * 3600.0  # a breach not notified after this is given up
    max_notifying: int = 100  # notices being sent at once (more wait their turn)


@dataclass(frozen=True, slots=True)
class ClaimedTimer:
    id: int
    ticket_id: int
    kind: str


def told_event(ticket: Ticket, result: SlaDelivery, now: datetime, *, what: str,
               kind: str, action: str) -> TicketEvent:
    """The log entry of whom a notice (``what``: 重大投诉, 群发事件) reached, or that
    nobody could be."""
    if result.ok:
        note = f"{what}已通知{result.audience}：{'、'.join(result.delivered_to)}"
    else:
        note = f"{what}：没有可通知的{result.audience or '主管'}（未设置通知方式）"
    return TicketEvent(ticket_id=ticket.id, from_state=ticket.state, to_state=ticket.state,
                       actor="sla", at=now, note=note[:1000], action=action,
                       data={"kind": kind, "audience": result.audience,
                             "delivered_to": list(result.delivered_to)})


def group_told_event(ticket: Ticket, result: SlaDelivery, now: datetime) -> TicketEvent:
    """Whom a group incident's notice reached."""
    return told_event(ticket, result, now, what="群发事件", kind=GROUP_NOTICE,
                      action=GROUP_ACTION)


def major_told_event(ticket: Ticket, result: SlaDelivery, now: datetime) -> TicketEvent:
    """Whom the 重大投诉 notice reached."""
    return told_event(ticket, result, now, what="重大投诉", kind=MAJOR_NOTICE,
                      action=MAJOR_ACTION)


class SlaWorker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 bus: EventBus, notifier: SlaNotifier | None = None, *,
                 config: SlaWorkerConfig | None = None, worker_id: str | None = None,
                 on_fired: Callable[[SlaBreach], None] | None = None) -> None:
        self._sm = sessionmaker
        self._clock = clock
        self._bus = bus
        self._notifier = notifier
        self.config = config or SlaWorkerConfig()
        self.worker_id = worker_id or f"sla-{uuid.uuid4().hex[:12]}"
        self._on_fired = on_fired
        self._loop_task: asyncio.Task[None] | None = None
        self._notifying: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._gate: asyncio.Semaphore | None = None
        self.fired = 0  # breaches this worker fired (tests, bench)

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self._loop(), name=f"sla-worker:{self.worker_id}")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._notifying) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None
        self._notifying.clear()

    async def drain(self) -> None:
        """Wait for the notices being sent (tests)."""
        while self._notifying:
            await asyncio.gather(*list(self._notifying), return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                while True:
                    claimed = await self.claim_due()
                    await self._fire_batch(claimed, wait=False)
                    if len(claimed) < self.config.batch:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sla worker %s: claiming or firing timers failed", self.worker_id)
            sleeper = asyncio.ensure_future(self._clock.sleep(self.config.poll_interval_s))
            waker = asyncio.ensure_future(self._wake.wait())
            for fut, what in ((sleeper, "sleep"), (waker, "wake")):
                fut.set_name(f"{SLA_IDLE_TASK_NAME}:{what}")
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in (sleeper, waker):
                    fut.cancel()

    async def run_due(self) -> int:
        """Claim and fire every due timer, notices sent before returning (tests, CLI,
        bench); the number fired."""
        before = self.fired
        while True:
            claimed = await self.claim_due()
            if not claimed:
                break
            await self._fire_batch(claimed, wait=True)
        await self.drain()
        return self.fired - before

    # ----------------------------------------------------------------- claiming

    def _claimable(self, now: datetime) -> Any:
        stale = now - timedelta(seconds=self.config.lease_s)
        unclaimed = or_(SlaTimer.claimed_by.is_(None), SlaTimer.claimed_at < stale)
        due = and_(SlaTimer.state == "pending", SlaTimer.due_at <= now, unclaimed)
        unnotified = and_(SlaTimer.state == "fired", SlaTimer.notified_at.is_(None),
                          SlaTimer.claimed_at < stale,
                          SlaTimer.fired_at >= now - timedelta(seconds=self.config.notify_for_s))
        return or_(due, unnotified) if self._notifier is not None else due

    async def claim_due(self, limit: int | None = None) -> list[ClaimedTimer]:
        now = self._clock.now()
        batch = min(self.config.batch, limit) if limit is not None else self.config.batch
        claimable = self._claimable(now)
        async with self._sm() as session:
            if session.get_bind().dialect.name == "postgresql":
                ids = list((await session.scalars(
                    select(SlaTimer.id).where(claimable).order_by(SlaTimer.due_at)
                    .limit(batch).with_for_update(skip_locked=True))).all())
                if ids:
                    await session.execute(
                        update(SlaTimer).where(SlaTimer.id.in_(ids))
                        .values(claimed_by=self.worker_id, claimed_at=now))
                await session.commit()
            else:
                candidates = list((await session.scalars(
                    select(SlaTimer.id).where(claimable).order_by(SlaTimer.due_at)
                    .limit(batch))).all())
                await session.commit()
                ids = []
                for tid in candidates:
                    res = await session.execute(
                        update(SlaTimer).where(SlaTimer.id == tid, claimable)
                        .values(claimed_by=self.worker_id, claimed_at=now))
                    if res.rowcount == 1:  # type: ignore[attr-defined]
                        ids.append(tid)
                await session.commit()
            if not ids:
                return []
            rows = (await session.execute(
                select(SlaTimer.id, SlaTimer.ticket_id, SlaTimer.kind)
                .where(SlaTimer.id.in_(ids)).order_by(SlaTimer.due_at))).all()
            return [ClaimedTimer(r[0], r[1], r[2]) for r in rows]

    # ----------------------------------------------------------------- firing

    async def _fire_batch(self, claimed: list[ClaimedTimer], *, wait: bool) -> None:
        """Fire a claim's timers in one transaction (``fire_many``), then send their
        notices; if that transaction fails, each timer on its own (``fire``)."""
        if not claimed:
            return
        try:
            fired, one_by_one = await self.fire_many(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sla: firing %d timers at once failed; one by one", len(claimed))
            fired, one_by_one = [], claimed
        for timer, breach in fired:
            await self._send(timer, breach, wait=wait)
        for timer in one_by_one:
            await self._fire_and_notify(timer, wait=wait)

    async def fire_many(self, timers: list[ClaimedTimer]
                        ) -> tuple[list[tuple[ClaimedTimer, SlaBreach]], list[ClaimedTimer]]:
        """Fire claimed pending timers together: one transaction locks their tickets
        (in id order), cancels those whose ticket has moved on, moves the rest pending
        → fired with one guarded UPDATE and writes their log entries. Returns the
        breaches fired and the timers to take one by one (fired before with their
        notice not sent, or a guard that did not hold for all: nothing is written then)."""
        now = self._clock.now()
        by_id = {t.id: t for t in timers}
        async with self._sm() as session:
            tickets = {t.id: t for t in (await session.scalars(
                select(Ticket).where(Ticket.id.in_(sorted({t.ticket_id for t in timers})))
                .order_by(Ticket.id).with_for_update())).all()}
            rows = (await session.scalars(
                select(SlaTimer).where(SlaTimer.id.in_(sorted(by_id)))
                .execution_options(populate_existing=True))).all()
            later: list[ClaimedTimer] = []
            cancel: list[int] = []
            due: list[SlaTimer] = []
            for row in rows:
                ticket = tickets.get(row.ticket_id)
                if ticket is None or row.claimed_by != self.worker_id:
                    continue
                if row.state == "fired":
                    later.append(by_id[row.id])
                elif row.state != "pending":
                    continue
                elif ticket.state in RUNS_IN.get(row.kind, frozenset()):
                    due.append(row)
                else:
                    cancel.append(row.id)
            if cancel:
                await session.execute(update(SlaTimer).where(
                    SlaTimer.id.in_(cancel), SlaTimer.state == "pending")
                    .values(state="cancelled"))
            if due:
                done = await session.execute(
                    update(SlaTimer).where(SlaTimer.id.in_([r.id for r in due]),
                                           SlaTimer.state == "pending",
                                           SlaTimer.claimed_by == self.worker_id)
                    .values(state="fired", fired_at=now, claimed_at=now)
                    .execution_options(synchronize_session=False))
                if done.rowcount != len(due):  # type: ignore[attr-defined]
                    await session.rollback()
                    return [], [by_id[r.id] for r in due] + later
                for row in due:  # what the UPDATE wrote, without flushing it again
                    for key, value in (("state", "fired"), ("fired_at", now),
                                       ("claimed_at", now)):
                        set_committed_value(row, key, value)
                    session.add(breach_event(tickets[row.ticket_id], row, now))
            breaches = [(by_id[row.id], self._breach(tickets[row.ticket_id], row))
                        for row in due]
            await session.commit()
        for _, breach in breaches:
            self._fired(breach, now)
        return breaches, later

    async def _send(self, timer: ClaimedTimer, breach: SlaBreach, *, wait: bool) -> None:
        if self._notifier is None:
            return
        if wait:
            await self._notify(timer, breach)
            return
        # Notices go out ``max_notifying`` at a time without holding up the next batch's
        # firing; only a backlog of ten times that many waits.
        while len(self._notifying) >= 10 * self.config.max_notifying:
            await asyncio.wait(set(self._notifying), return_when=asyncio.FIRST_COMPLETED)
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.config.max_notifying)
        task = asyncio.get_running_loop().create_task(self._gated_notify(timer, breach),
                                                      name=f"sla-notify:{timer.id}")
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _gated_notify(self, timer: ClaimedTimer, breach: SlaBreach) -> None:
        assert self._gate is not None
        async with self._gate:
            await self._notify(timer, breach)

    async def _fire_and_notify(self, timer: ClaimedTimer, *, wait: bool) -> None:
        try:
            breach, notify = await self.fire(timer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sla: timer %s of ticket %s failed", timer.id, timer.ticket_id)
            return
        if breach is None or not notify:
            return
        await self._send(timer, breach, wait=wait)

    async def fire(self, timer: ClaimedTimer) -> tuple[SlaBreach | None, bool]:
        """Fire a claimed timer: ``(the breach, whether to notify)``; ``(None, False)``
        when it is no longer this worker's or no longer pending."""
        now = self._clock.now()
        async with self._sm() as session:
            ticket = (await session.scalars(
                select(Ticket).where(Ticket.id == timer.ticket_id).with_for_update())).first()
            row = (await session.scalars(
                select(SlaTimer).where(SlaTimer.id == timer.id)
                .execution_options(populate_existing=True))).first()
            if ticket is None or row is None or row.claimed_by != self.worker_id:
                await session.commit()
                return None, False
            if row.state == "fired":  # fired before, its notice did not go out
                breach = self._breach(ticket, row)
                await session.commit()
                return breach, row.notified_at is None
            if row.state != "pending":
                await session.commit()
                return None, False
            if ticket.state not in RUNS_IN.get(row.kind, frozenset()):
                await session.execute(update(SlaTimer).where(
                    SlaTimer.id == row.id, SlaTimer.state == "pending")
                    .values(state="cancelled"))
                await session.commit()
                return None, False
            done = await session.execute(
                update(SlaTimer).where(SlaTimer.id == row.id, SlaTimer.state == "pending",
                                       SlaTimer.claimed_by == self.worker_id)
                .values(state="fired", fired_at=now, claimed_at=now))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return None, False
            await session.refresh(row)
            session.add(breach_event(ticket, row, now))
            breach = self._breach(ticket, row)
            await session.commit()
        self._fired(breach, now)
        return breach, True

    def _fired(self, breach: SlaBreach, now: datetime) -> None:
        if breach.group:
            self._bus.publish(DomainEvent("ticket.group_incident", {
                "ticket_id": breach.ticket_id, "number": breach.number,
                "community_id": breach.community_id}, at=now))
            return
        if breach.major:
            self._bus.publish(DomainEvent("ticket.major_complaint", {
                "ticket_id": breach.ticket_id, "number": breach.number,
                "community_id": breach.community_id}, at=now))
            return
        self.fired += 1
        self._bus.publish(DomainEvent("ticket.sla_breach", {
            "ticket_id": breach.ticket_id, "number": breach.number, "kind": breach.kind,
            "due_at": breach.due_at.isoformat(), "text": breach.text,
            "community_id": breach.community_id, "priority": breach.priority,
        }, at=now))
        if self._on_fired is not None:
            self._on_fired(breach)
        log.warning("ticket %s: %s (due %s)", breach.number, breach.text,
                    breach.due_at.isoformat())

    @staticmethod
    def _breach(ticket: Ticket, row: SlaTimer) -> SlaBreach:
        return SlaBreach(ticket.id, ticket.number, row.kind, row.due_at, breach_of(row).text,
                         ticket.community_id, ticket.category, ticket.priority,
                         ticket.location, ticket.summary, ticket.department, ticket.assignee_id)

    async def _notify(self, timer: ClaimedTimer, breach: SlaBreach) -> None:
        assert self._notifier is not None
        try:
            result = await self._notifier.notify(breach)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the port must not stop the worker
            log.exception("sla notice for ticket %s failed", breach.number)
            result = SlaDelivery("", (), f"{type(exc).__name__}: {exc}")
        if not result.ok and result.error != NOBODY:
            log.error("sla notice for ticket %s (%s) not delivered to %s: %s; retrying after "
                      "%.0f s", breach.number, breach.kind, result.audience or "anyone",
                      result.error, self.config.lease_s)
            return
        if not result.ok:
            log.error("sla notice for ticket %s (%s): nobody to tell (%s)", breach.number,
                      breach.kind, result.audience)
        async with self._sm() as session:
            now = self._clock.now()
            done = await session.execute(update(SlaTimer).where(
                SlaTimer.id == timer.id, SlaTimer.notified_at.is_(None))
                .values(notified_at=now))
            if breach.major and done.rowcount == 1:  # type: ignore[attr-defined]
                ticket = await session.get(Ticket, breach.ticket_id)
                if ticket is not None:
                    session.add(major_told_event(ticket, result, now))
            if breach.group and done.rowcount == 1:  # type: ignore[attr-defined]
                ticket = await session.get(Ticket, breach.ticket_id)
                if ticket is not None:
                    told = group_told_event(ticket, result, now)
                    session.add(told)
                    group = (await session.scalars(select(TicketGroup).where(
                        TicketGroup.opened_by_ticket_id == ticket.id))).first()
                    if group is not None:
                        session.add(TicketGroupEvent(
                            group_id=group.id, action="told", ticket_id=ticket.id,
                            actor="sla", at=now, note=told.note, data=told.data))
            await session.commit()
