"""What the pop needs from other domains, as protocols.

Tickets and the call log live in other parts; the builder only sees these
protocols. ``NoTickets`` / ``NoCallHistory`` stand in until those parts are
wired (the pop then shows no tickets / no history, never an error).

They are plain synchronous functions over a SQLAlchemy Core ``Connection``:
the builder runs the whole pop as one synchronous unit, either right on the
event loop with the read-only SQLite reader or inside ``AsyncSession.run_sync``
on PostgreSQL. Build statements once (module level, ``bindparam``): a pop is
built for every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class TicketSummary:
    ticket_id: int
    room_id: int | None
    title: str
    state: str  # machine state, e.g. "open", "assigned", "in_progress"
    state_label: str = ""  # what a person reads: 待处理, 处理中 ...
    reference: str = ""  # e.g. "T-20261122-0007"
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallSummary:
    call_id: str
    at: datetime
    outcome: str  # answered, abandoned, voicemail, missed ...
    agent: str = ""
    duration_s: int | None = None
    ivr_path: tuple[str, ...] = ()


class OpenTicketsSource(Protocol):
    def open_tickets(self, conn: Connection, room_ids: Sequence[int],
                           person_ids: Sequence[int]) -> list[TicketSummary]:
        """Tickets not yet closed for these rooms or people."""


class CallHistorySource(Protocol):
    def recent_calls(self, conn: Connection, number: str,
                           limit: int) -> list[CallSummary]:
        """The last calls from this (E.164) number, newest first."""


class NoTickets:
    def open_tickets(self, conn: Connection, room_ids: Sequence[int],
                           person_ids: Sequence[int]) -> list[TicketSummary]:
        return []


class NoCallHistory:
    def recent_calls(self, conn: Connection, number: str,
                           limit: int) -> list[CallSummary]:
        return []
