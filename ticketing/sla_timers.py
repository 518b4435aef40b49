"""The SLA clock's timers: armed, cancelled and re-armed as a ticket moves.

Called inside the transaction that writes the ticket or its step, so a timer
exists exactly when its ticket does (``TicketService.add`` and
``WorkOrders.act`` call :class:`SlaClock`):

=============================  =================================================
step                           timers
=============================  =================================================
受理 (created)                 arm response, red_light, escalation
派单 (dispatch)                cancel response; red_light/escalation moved to
                               the 预约 window when an appointment is given,
                               back to their own start when none is
改派 (reassign)                from 已接单: re-arm red_light (nobody has taken it);
                               red_light/escalation fitted to the new 预约 as 派单
接单 (accept)                  cancel red_light
完工 (complete)                cancel all (escalation counts "not 完工")
退单 (return)                  re-arm response and red_light from now
重开 (reopen, also by 回访)    re-arm all three from now
取消 (cancel)                  cancel all
调整投诉等级 (grade)           re-measure the pending clocks from their own start
                               with the new grade's limits, due no earlier than
                               now (fired and stopped ones stay)
=============================  =================================================

**重大投诉.** A complaint graded 重大 (``major``: when it is created, or the first
time it is regraded to it) gets one more row, ``MAJOR_NOTICE``, due at once: the
SLA worker fires it and tells the community's supervisors through the breach
notifier, and the ticket's log says so. One row per ticket: a second regrade to
重大 tells nobody again.

A cancelled clock that had already fired clears its breach from the ticket's
badge and the wall (the breach stays in the ticket's log). Any other move out of 新建 (the plain state change of ``TicketService.transition``)
cancels response as well: that is someone acting on the ticket.

**The 预约 window.** When an appointment (``tickets.appointment_at``) is set,
the owner has agreed that nobody comes before it: the red-light and
escalation clocks do not run before ``appointment_at − APPOINTMENT_LEAD``
(30 minutes: the engineer sets out). A clock that would have started earlier
starts there instead: its due time is the window start plus its limit
(working time counted from there when the category counts working time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.models import Community
from ticketing.categories import MAJOR
from ticketing.models import Ticket, TicketEvent
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import (
    GROUP_NOTICE,
    KINDS,
    MAJOR_NOTICE,
    SlaPolicy,
    WorkingHours,
    breach_text,
    due_after,
)
from ticketing.workflow import OPEN_STATES

APPOINTMENT_LEAD = timedelta(minutes=30)
PAUSED_BY_APPOINTMENT = ("red_light", "escalation")
BREACH_ACTION = "sla_breach"
GROUP_ACTION = "group_notice"
"""The ticket log's action of a group incident's notice (fired, then told)."""
MAJOR_ACTION = "major_notice"
"""The ticket log's action of the 重大投诉 notice (fired, then told)."""

# Which timers a step cancels and which it (re-)arms from the step's time.
_CANCELS: dict[str, tuple[str, ...]] = {
    "dispatch": ("response",),
    "accept": ("red_light",),
    "complete": KINDS,
    "cancel": KINDS,
}
_ARMS: dict[str, tuple[str, ...]] = {
    "return": ("response", "red_light"),
    "reopen": KINDS,
}


@dataclass(frozen=True, slots=True)
class Move:
    """One step as the clock sees it."""

    action: str
    from_state: str
    to_state: str


class SlaClock:
    def __init__(self, policy: SlaPolicy | None = None, hours: WorkingHours | None = None
                 ) -> None:
        self.policy = policy or SlaPolicy()
        self._hours = hours

    async def _community_code(self, session: AsyncSession, ticket: Ticket) -> str | None:
        if ticket.community_id is None:
            return None
        community = await session.get(Community, ticket.community_id)
        return community.code if community is not None else None

    async def ticket_added(self, session: AsyncSession, ticket: Ticket) -> None:
        """A new ticket: its three clocks start at ``created_at``; a 重大投诉 is told."""
        await self._arm(session, ticket, KINDS, ticket.created_at)
        if ticket.complaint_grade == MAJOR:
            await self._major_notice(session, ticket, ticket.created_at)

    async def ticket_moved(self, session: AsyncSession, ticket: Ticket, moves: Sequence[Move],
                           now: datetime) -> None:
        """After the steps were applied to ``ticket`` (same transaction)."""
        for move in moves:
            cancel = set(_CANCELS.get(move.action, ()))
            if move.from_state == "new" and move.to_state != "new":
                cancel.add("response")
            if move.to_state not in OPEN_STATES:
                cancel.update(KINDS)
            if cancel:
                await self.cancel(session, ticket.id, cancel)
            arm = list(_ARMS.get(move.action, ()))
            if move.action == "reassign" and move.from_state == "accepted":
                arm.append("red_light")
            if arm:
                await self._arm(session, ticket, arm, now)
            if move.action in ("dispatch", "reassign"):
                await self._fit_to_appointment(session, ticket)
            if move.action == "grade":
                await self._regraded(session, ticket, now)

    async def _regraded(self, session: AsyncSession, ticket: Ticket, now: datetime) -> None:
        """The running clocks are measured again from when each started, with the new
        grade's limits (as an SLA policy applied afresh: a complaint found 重大 at
        minute 4 owes its 5-minute response at minute 5, not 9), and due no earlier
        than ``now``; a first 重大 tells the supervisors."""
        running = (await session.scalars(select(SlaTimer.kind).where(
            SlaTimer.ticket_id == ticket.id, SlaTimer.kind.in_(KINDS),
            SlaTimer.state == "pending"))).all()
        if running:
            await self._arm(session, ticket, [k for k in KINDS if k in running], now,
                            from_armed=True)
        if ticket.complaint_grade == MAJOR:
            await self._major_notice(session, ticket, now)

    async def _major_notice(self, session: AsyncSession, ticket: Ticket, now: datetime
                            ) -> None:
        """The 重大投诉 notice, due now, unless the ticket ever had one."""
        had = (await session.scalars(select(SlaTimer.id).where(
            SlaTimer.ticket_id == ticket.id, SlaTimer.kind == MAJOR_NOTICE))).first()
        if had is None:
            session.add(SlaTimer(ticket_id=ticket.id, kind=MAJOR_NOTICE, due_at=now,
                                 state="pending", limit_min=0, working_time=False,
                                 armed_at=now))
            await session.flush()

    async def cancel(self, session: AsyncSession, ticket_id: int, kinds: Iterable[str]) -> None:
        """Stop the clocks: a pending one will not fire, a fired one's red light is
        cleared (the breach stays in the ticket's log)."""
        await session.execute(
            update(SlaTimer).where(SlaTimer.ticket_id == ticket_id,
                                   SlaTimer.kind.in_(list(kinds)),
                                   SlaTimer.state.in_(("pending", "fired")))
            .values(state="cancelled", claimed_by=None, claimed_at=None))

    async def _arm(self, session: AsyncSession, ticket: Ticket, kinds: Iterable[str],
                   start: datetime, *, from_armed: bool = False) -> None:
        """(Re)start the clocks at ``start``; with ``from_armed``, an existing clock
        keeps its own start and is due no earlier than ``start``."""
        code = await self._community_code(session, ticket)
        limits = self.policy.limits(code, ticket.category, ticket.priority,
                                    ticket.complaint_grade)
        kinds = list(kinds)
        existing = {t.kind: t for t in (await session.scalars(
            select(SlaTimer).where(SlaTimer.ticket_id == ticket.id,
                                   SlaTimer.kind.in_(kinds)))).all()}
        for kind in kinds:
            row = existing.get(kind)
            armed = row.armed_at if from_armed and row is not None else start
            began = armed
            if kind in PAUSED_BY_APPOINTMENT and ticket.appointment_at is not None:
                began = max(began, ticket.appointment_at - APPOINTMENT_LEAD)
            limit = limits.of(kind)
            due = due_after(began, limit, working_time=limits.working_time, hours=self._hours,
                            community=code)
            if from_armed:
                due = max(due, start)
            values: dict[str, Any] = dict(
                due_at=due, state="pending", limit_min=int(limit.total_seconds() // 60),
                working_time=limits.working_time, armed_at=armed, claimed_by=None,
                claimed_at=None, fired_at=None, notified_at=None)
            if row is None:
                session.add(SlaTimer(ticket_id=ticket.id, kind=kind, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        await session.flush()

    async def _fit_to_appointment(self, session: AsyncSession, ticket: Ticket) -> None:
        """Pending red-light/escalation clocks do not run before the 预约 window: each
        is due from ``max(armed_at, window)``, or from ``armed_at`` when the ticket has
        no appointment (any more: a new 派单 after 退单 agrees its own, or none).
        Recomputed from the clock's start, so a later, an earlier or a dropped
        appointment each moves it."""
        window = (ticket.appointment_at - APPOINTMENT_LEAD
                  if ticket.appointment_at is not None else None)
        rows = (await session.scalars(select(SlaTimer).where(
            SlaTimer.ticket_id == ticket.id, SlaTimer.kind.in_(PAUSED_BY_APPOINTMENT),
            SlaTimer.state == "pending"))).all()
        if not rows:
            return
        code = await self._community_code(session, ticket)
        for row in rows:
            began = row.armed_at if window is None else max(row.armed_at, window)
            row.due_at = due_after(began, timedelta(minutes=row.limit_min),
                                   working_time=row.working_time, hours=self._hours,
                                   community=code)
        await session.flush()


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True, slots=True)
class Breach:
    """A breach as the ticket page and the wall show it."""

    ticket_id: int
    kind: str
    due_at: datetime
    fired_at: datetime
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "due_at": self.due_at.isoformat(),
                "fired_at": self.fired_at.isoformat(), "text": self.text}


def breach_of(row: SlaTimer) -> Breach:
    assert row.fired_at is not None
    return Breach(row.ticket_id, row.kind, row.due_at, row.fired_at,
                  breach_text(row.kind, timedelta(minutes=row.limit_min),
                              working_time=row.working_time))


async def breaches_for(session: AsyncSession, ticket_id: int) -> list[Breach]:
    """The clocks of the ticket that ran out and still stand (a re-armed clock's old
    breach is in the ticket's log, not here)."""
    rows = (await session.scalars(select(SlaTimer).where(
        SlaTimer.ticket_id == ticket_id, SlaTimer.state == "fired",
        SlaTimer.kind.in_(KINDS)).order_by(SlaTimer.fired_at, SlaTimer.id))).all()
    return [breach_of(r) for r in rows]


@dataclass(frozen=True, slots=True)
class RedTicket:
    ticket_id: int
    number: str
    summary: str
    location: str
    state: str
    community_id: int | None
    breaches: tuple[Breach, ...]

    def to_json(self) -> dict[str, Any]:
        return {"ticket_id": self.ticket_id, "number": self.number, "summary": self.summary,
                "location": self.location, "state": self.state,
                "community_id": self.community_id,
                "breaches": [b.to_json() for b in self.breaches]}


async def red_tickets(session: AsyncSession, scope: frozenset[int] | None, *,
                      limit: int = 50) -> tuple[int, list[RedTicket]]:
    """Open tickets with a standing breach, in ``scope`` (community ids; None: all):
    ``(how many, the first ``limit`` by earliest breach)`` for the supervisor's wall."""
    cond = [SlaTimer.state == "fired", SlaTimer.kind.in_(KINDS),
            Ticket.state.in_(sorted(OPEN_STATES))]
    if scope is not None:
        cond.append(Ticket.community_id.in_(sorted(scope)))
    count = int(await session.scalar(
        select(func.count(func.distinct(SlaTimer.ticket_id)))
        .join(Ticket, Ticket.id == SlaTimer.ticket_id).where(*cond)) or 0)
    first = (await session.execute(
        select(SlaTimer.ticket_id, func.min(SlaTimer.fired_at).label("first"))
        .join(Ticket, Ticket.id == SlaTimer.ticket_id).where(*cond)
        .group_by(SlaTimer.ticket_id).order_by("first", SlaTimer.ticket_id).limit(limit))).all()
    ids = [r[0] for r in first]
    if not ids:
        return count, []
    tickets = {t.id: t for t in (await session.scalars(
        select(Ticket).where(Ticket.id.in_(ids)))).all()}
    timers = (await session.scalars(select(SlaTimer).where(
        SlaTimer.ticket_id.in_(ids), SlaTimer.state == "fired", SlaTimer.kind.in_(KINDS))
        .order_by(SlaTimer.fired_at, SlaTimer.id))).all()
    by_ticket: dict[int, list[Breach]] = {}
    for row in timers:
        by_ticket.setdefault(row.ticket_id, []).append(breach_of(row))
    out = [RedTicket(t.id, t.number, t.summary, t.location, t.state, t.community_id,
                     tuple(by_ticket.get(t.id, ())))
           for t in (tickets[i] for i in ids)]
    return count, out


def breach_event(ticket: Ticket, row: SlaTimer, now: datetime) -> TicketEvent:
    """The ticket's log entry of a breach (``action`` ``sla_breach``), or of the
    重大投诉 notice (``major_notice``)."""
    if row.kind == GROUP_NOTICE:
        return TicketEvent(
            ticket_id=ticket.id, from_state=ticket.state, to_state=ticket.state, actor="sla",
            at=now, note="群发事件，正在通知小区主管", action=GROUP_ACTION,
            data={"kind": row.kind})
    if row.kind == MAJOR_NOTICE:
        return TicketEvent(
            ticket_id=ticket.id, from_state=ticket.state, to_state=ticket.state, actor="sla",
            at=now, note="重大投诉，正在通知小区主管", action=MAJOR_ACTION,
            data={"kind": row.kind, "grade": MAJOR})
    return TicketEvent(
        ticket_id=ticket.id, from_state=ticket.state, to_state=ticket.state, actor="sla",
        at=now, note=breach_of(row).text, action=BREACH_ACTION,
        data={"kind": row.kind, "due_at": row.due_at.isoformat(),
              "limit_min": row.limit_min, "working_time": row.working_time})
