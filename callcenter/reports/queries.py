"""Reading the rows a report needs, for the communities a person sees."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import CallLog
from callcenter.calls.services import of_communities
from callcenter.directory.models import Community
from callcenter.paging.models import Incident
from callcenter.reports.figures import CallRow, IncidentRow, TicketRow
from ticketing.lifecycle import INITIAL_STATE
from ticketing.models import Ticket, TicketEvent


async def call_rows(session: AsyncSession, start: datetime, end: datetime, *,
                    codes: frozenset[str] | None, default_community: str | None
                    ) -> list[CallRow]:
    """Finished calls started in ``[start, end)`` of the communities ``codes``
    (None: every one). Live calls (no outcome yet) are left out."""
    stmt = (select(CallLog.started_at, CallLog.outcome, CallLog.wait_s, CallLog.talk_s,
                   CallLog.community)
            .where(CallLog.started_at >= start, CallLog.started_at < end,
                   CallLog.outcome.is_not(None), CallLog.direction == "in"))
    if codes is not None:
        stmt = stmt.where(of_communities(codes, default_community))
    rows = await session.execute(stmt)
    return [CallRow(r.started_at, r.outcome, r.wait_s, r.talk_s,
                    r.community or default_community) for r in rows]


async def ticket_rows(session: AsyncSession, start: datetime, end: datetime, *,
                      ids: frozenset[int] | None) -> list[TicketRow]:
    """Tickets created, or closed, in ``[start, end)``, each with its first step out
    of 受理 and its 归档."""
    first = (select(TicketEvent.ticket_id, func.min(TicketEvent.at).label("at"))
             .where(TicketEvent.from_state == INITIAL_STATE,
                    TicketEvent.to_state != INITIAL_STATE)
             .group_by(TicketEvent.ticket_id).subquery())
    closed = (select(TicketEvent.ticket_id, func.max(TicketEvent.at).label("at"))
              .where(TicketEvent.to_state == "closed")
              .group_by(TicketEvent.ticket_id).subquery())
    stmt = (select(Ticket.created_at, first.c.at.label("first_at"),
                   closed.c.at.label("closed_at"), Community.code)
            .outerjoin(Community, Community.id == Ticket.community_id)
            .outerjoin(first, first.c.ticket_id == Ticket.id)
            .outerjoin(closed, closed.c.ticket_id == Ticket.id)
            .where(((Ticket.created_at >= start) & (Ticket.created_at < end))
                   | ((closed.c.at >= start) & (closed.c.at < end))))
    if ids is not None:
        stmt = stmt.where(Ticket.community_id.in_(sorted(ids)))
    rows = await session.execute(stmt)
    return [TicketRow(r.created_at, r.first_at, r.closed_at, r.code) for r in rows]


async def incident_rows(session: AsyncSession, start: datetime, end: datetime, *,
                        ids: frozenset[int] | None) -> list[IncidentRow]:
    stmt = (select(Incident.opened_at, Incident.acked_at, Community.code)
            .join(Community, Community.id == Incident.community_id)
            .where(Incident.opened_at >= start, Incident.opened_at < end))
    if ids is not None:
        stmt = stmt.where(Incident.community_id.in_(sorted(ids)))
    rows = await session.execute(stmt)
    return [IncidentRow(r.opened_at, r.acked_at, r.code) for r in rows]
