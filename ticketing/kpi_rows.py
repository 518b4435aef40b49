"""Reading what the KPI needs: the full step log of every ticket of the scope that
had a 受理, 派单 or 完工 in the window, and the staff those steps name."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.models import StaffUser
from ticketing.kpi import Person, Step, TicketLog
from ticketing.models import Ticket, TicketEvent

COUNTED = ("create", "dispatch", "complete")


async def ticket_logs(session: AsyncSession, start: datetime, end: datetime, *,
                      ids: frozenset[int] | None) -> list[TicketLog]:
    """Tickets of the communities ``ids`` (None: every one) with a counted step in
    ``[start, end)``, each with its whole log (a 回访 or 重开 after the window still
    counts for the work done in it)."""
    touched = (select(TicketEvent.ticket_id)
               .where(TicketEvent.at >= start, TicketEvent.at < end,
                      TicketEvent.action.in_(COUNTED)))
    stmt = select(Ticket.id, Ticket.created_at).where(Ticket.id.in_(touched))
    if ids is not None:
        stmt = stmt.where(Ticket.community_id.in_(sorted(ids)))
    tickets = {r.id: r.created_at for r in await session.execute(stmt)}
    if not tickets:
        return []
    steps: dict[int, list[Step]] = defaultdict(list)
    rows = await session.execute(
        select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.action, TicketEvent.actor,
               TicketEvent.actor_id, TicketEvent.from_state, TicketEvent.to_state,
               TicketEvent.data)
        .where(TicketEvent.ticket_id.in_(touched))
        .order_by(TicketEvent.ticket_id, TicketEvent.id))
    for r in rows:
        if r.ticket_id in tickets:
            steps[r.ticket_id].append(Step(r.at, r.action, r.actor, r.actor_id, r.from_state,
                                           r.to_state, r.data))
    return [TicketLog(tid, created, steps[tid]) for tid, created in tickets.items()]


async def staff(session: AsyncSession) -> list[Person]:
    rows = await session.execute(
        select(StaffUser.id, StaffUser.username, StaffUser.display_name, StaffUser.role))
    return [Person(r.id, r.username, r.display_name or r.username, r.role) for r in rows]
