"""The pop's sources backed by the tickets and call-log tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callcenter.calls.models import CallLog
from callcenter.screenpop.sources import CallSummary, TicketSummary
from ticketing.lifecycle import OPEN_STATES, STATES
from ticketing.models import Ticket

MAX_TICKETS = 20


class TicketTableSource:
    """Open tickets (new, dispatched, in progress, reopened) of the caller's rooms or person."""

    def open_tickets(self, session: Session, room_ids: Sequence[int],
                           person_ids: Sequence[int]) -> list[TicketSummary]:
        conds = []
        if room_ids:
            conds.append(Ticket.room_id.in_(list(room_ids)))
        if person_ids:
            conds.append(Ticket.person_id.in_(list(person_ids)))
        if not conds:
            return []
        rows = (session.scalars(
            select(Ticket).where(or_(*conds), Ticket.state.in_(sorted(OPEN_STATES)))
            .order_by(Ticket.created_at.desc()).limit(MAX_TICKETS))).all()
        return [TicketSummary(ticket_id=t.id, room_id=t.room_id, title=t.summary, state=t.state,
                              state_label=STATES.get(t.state, t.state), reference=t.number,
                              created_at=t.created_at) for t in rows]


class CallLogHistory:
    """The caller's last calls from the call log (finished ones only)."""

    def recent_calls(self, session: Session, number: str,
                           limit: int) -> list[CallSummary]:
        rows = (session.scalars(
            select(CallLog).where(CallLog.caller_number == number,
                                  CallLog.outcome.is_not(None))
            .order_by(CallLog.started_at.desc()).limit(limit))).all()
        return [CallSummary(call_id=r.linkedid, at=r.started_at, outcome=r.outcome or "",
                            agent=r.answered_by or "",
                            duration_s=int(r.talk_s) if r.talk_s is not None else None,
                            ivr_path=tuple(r.ivr_path or ())) for r in rows]
