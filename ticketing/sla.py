"""Response deadlines of tickets: how long a ticket may wait for someone to take it.

A ticket is answered when it leaves ``new`` (dispatched, or cancelled): until
then nobody has acted on it. The deadline runs from ``created_at`` and depends
on the priority. Both are the property-service norm of a 15-minute response
(clock time, nights included); an emergency is also paged at once (callcenter/paging).
The work-order SLA (red light at 2 hours, escalation at 24) builds on these. ``overdue_counts`` counts the tickets past theirs
(``callcenter_tickets_overdue`` in ``/metrics``).

Nothing is stored about a breach: the count is taken from the tickets as they
are, so a ticket dispatched late stops counting once it is dispatched.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ticketing.categories import PRIORITIES
from ticketing.lifecycle import INITIAL_STATE
from ticketing.models import Ticket

RESPONSE_DEADLINES: dict[str, timedelta] = {
    "emergency": timedelta(minutes=15),
    "normal": timedelta(minutes=15),
}
assert set(RESPONSE_DEADLINES) == set(PRIORITIES)


async def overdue_counts(session: AsyncSession, now: datetime) -> dict[str, int]:
    """``{priority: tickets still new past their response deadline}``, every
    priority present (0 when none). Uses the ``(state, created_at)`` index."""
    counts: dict[str, int] = {}
    for priority, deadline in RESPONSE_DEADLINES.items():
        counts[priority] = int(await session.scalar(
            select(func.count(Ticket.id)).where(
                Ticket.state == INITIAL_STATE, Ticket.priority == priority,
                Ticket.created_at < now - deadline)) or 0)
    return counts
