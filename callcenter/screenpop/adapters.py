"""The pop's sources backed by the tickets and call-log tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, or_, select
from sqlalchemy.engine import Connection

from callcenter.calls.models import CallLog
from callcenter.screenpop.sources import CallSummary, TicketSummary
from ticketing.lifecycle import OPEN_STATES, STATES
from ticketing.models import Ticket

MAX_TICKETS = 20

# Built once (see the builder's queries): an empty list matches nothing.
_OPEN_TICKETS = (
    select(Ticket.id, Ticket.room_id, Ticket.summary, Ticket.state, Ticket.number,
           Ticket.created_at)
    .where(or_(Ticket.room_id.in_(bindparam("room_ids", expanding=True)),
               Ticket.person_id.in_(bindparam("person_ids", expanding=True))),
           Ticket.state.in_(sorted(OPEN_STATES)))
    .order_by(Ticket.created_at.desc()).limit(MAX_TICKETS)
)
_RECENT_CALLS = (
    select(CallLog.linkedid, CallLog.started_at, CallLog.outcome, CallLog.answered_by,
           CallLog.talk_s, CallLog.ivr_path)
    .where(CallLog.caller_number == bindparam("number"), CallLog.outcome.is_not(None))
    .order_by(CallLog.started_at.desc()).limit(bindparam("limit"))
)


class TicketTableSource:
    """Open tickets (new, dispatched, in progress, reopened) of the caller's rooms or person."""

    def open_tickets(self, conn: Connection, room_ids: Sequence[int],
                     person_ids: Sequence[int]) -> list[TicketSummary]:
        if not room_ids and not person_ids:
            return []
        rows = conn.execute(_OPEN_TICKETS, {"room_ids": list(room_ids),
                                            "person_ids": list(person_ids)}).all()
        return [TicketSummary(ticket_id=tid, room_id=room_id, title=summary, state=state,
                              state_label=STATES.get(state, state), reference=number,
                              created_at=created_at)
                for tid, room_id, summary, state, number, created_at in rows]


class CallLogHistory:
    """The caller's last calls from the call log (finished ones only)."""

    def recent_calls(self, conn: Connection, number: str,
                     limit: int) -> list[CallSummary]:
        rows = conn.execute(_RECENT_CALLS, {"number": number, "limit": limit}).all()
        return [CallSummary(call_id=linkedid, at=at, outcome=outcome or "",
                            agent=agent or "",
                            duration_s=int(talk_s) if talk_s is not None else None,
                            ivr_path=tuple(ivr_path or ()))
                for linkedid, at, outcome, agent, talk_s, ivr_path in rows]


_LIVE_PATHS = (
    select(CallLog.linkedid, CallLog.ivr_path)
    .where(CallLog.linkedid.in_(bindparam("ids", expanding=True)))
)


def ivr_paths(conn: Connection, linkedids: Sequence[str]) -> dict[str, list[str]]:
    """The IVR path the call log has for each of these calls (the server that ran the
    IVR wrote it): what another server re-reads after its bus connection was down."""
    if not linkedids:
        return {}
    found: dict[str, list[str]] = {}
    for linkedid, path in conn.execute(_LIVE_PATHS, {"ids": list(linkedids)}).all():
        if isinstance(path, list) and len(path) > len(found.get(linkedid, [])):
            found[linkedid] = [str(p) for p in path]
    return found
