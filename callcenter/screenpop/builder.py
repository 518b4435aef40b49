"""Build the screen-pop of a call from the directory, tickets and the call log.

The pop is a plain JSON-able dict holding full numbers (``caller.e164``,
people's ``phones``); ``masking.present_pop`` makes the copy a given viewer
sees. Building costs one database session and a handful of indexed queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.phones import try_normalize
from callcenter.directory.services import (
    PersonView,
    community_by_code,
    household,
    lookup_by_number,
)
from callcenter.screenpop.sources import (
    CallHistorySource,
    NoCallHistory,
    NoTickets,
    OpenTicketsSource,
)

UNKNOWN_LABEL = "陌生来电"
WITHHELD_LABEL = "未显示号码"
RECENT_CALLS = 5


@dataclass(frozen=True, slots=True)
class CallContext:
    """What is known about the call when the pop is built."""

    call_id: str
    caller: str  # as the PBX gave it
    community: str | None = None  # community code of the line the call came in on
    queue: str | None = None
    ivr_path: tuple[str, ...] = ()
    started_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


class PopBuilder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 tickets: OpenTicketsSource | None = None,
                 calls: CallHistorySource | None = None) -> None:
        self._sm = sessionmaker
        self._tickets: OpenTicketsSource = tickets or NoTickets()
        self._calls: CallHistorySource = calls or NoCallHistory()

    async def build(self, ctx: CallContext) -> dict[str, Any]:
        async with self._sm() as session:
            return await self.build_in(session, ctx)

    async def build_in(self, session: AsyncSession, ctx: CallContext) -> dict[str, Any]:
        e164 = try_normalize(ctx.caller) if ctx.caller else None
        people = await lookup_by_number(session, e164) if e164 else []
        community = await community_by_code(session, ctx.community) if ctx.community else None
        room_ids = list(dict.fromkeys(u.room_id for p in people for u in p.units))
        person_ids = [p.person_id for p in people]
        found_ids = set(person_ids)
        members = [m for m in await household(session, room_ids) if m.person_id not in found_ids]
        tickets = await self._tickets.open_tickets(session, room_ids, person_ids) if people else []
        recent = await self._calls.recent_calls(session, e164, RECENT_CALLS) if e164 else []

        rooms: dict[int, dict[str, Any]] = {}
        for person in people:
            for u in person.units:
                rooms.setdefault(u.room_id, {
                    "room_id": u.room_id, "label": u.label, "community": u.community,
                    "community_code": u.community_code, "building": u.building, "unit": u.unit,
                    "room": u.room, "arrears": _money(u.arrears),
                    "in_arrears": u.arrears > 0,
                    "area_m2": None if u.area_m2 is None else str(u.area_m2),
                    "open_tickets": [],
                })
        loose_tickets: list[dict[str, Any]] = []
        for t in tickets:
            item = {"ticket_id": t.ticket_id, "reference": t.reference or str(t.ticket_id),
                    "title": t.title, "state": t.state, "state_label": t.state_label or t.state,
                    "created_at": t.created_at.isoformat() if t.created_at else None}
            if t.room_id in rooms:
                rooms[t.room_id]["open_tickets"].append(item)
            else:
                loose_tickets.append(item)
        arrears_total = sum((Decimal(r["arrears"]) for r in rooms.values()), Decimal("0"))
        tags = sorted({t for p in people for t in p.tags})
        if e164 is None:
            title = WITHHELD_LABEL if not ctx.caller or not ctx.caller.strip("+0") else UNKNOWN_LABEL
        elif people:
            title = "、".join(p.name for p in people)
        else:
            title = UNKNOWN_LABEL
        return {
            "call_id": ctx.call_id,
            "known": bool(people),
            "title": title,
            "caller": {"e164": e164 or "", "display": "" if e164 else (ctx.caller or "")},
            "community": ({"code": community.code, "name": community.name} if community
                          else ({"code": ctx.community, "name": ctx.community}
                                if ctx.community else None)),
            "queue": ctx.queue,
            "ivr_path": list(ctx.ivr_path),
            "people": [_person(p, rooms_of=True) for p in people],
            "household": [_person(m, rooms_of=True) for m in members],
            "rooms": list(rooms.values()),
            "other_open_tickets": loose_tickets,
            "arrears_total": _money(arrears_total),
            "tags": tags,
            "recent_calls": [
                {"call_id": c.call_id, "at": c.at.isoformat(), "outcome": c.outcome,
                 "agent": c.agent, "duration_s": c.duration_s, "ivr_path": list(c.ivr_path)}
                for c in recent
            ],
        }


def _person(p: PersonView, *, rooms_of: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "person_id": p.person_id, "name": p.name, "role": p.role,
        "phones": list(p.phones), "tags": list(p.tags),
    }
    if rooms_of:
        data["rooms"] = [{"room_id": u.room_id, "label": u.label, "role": u.role} for u in p.units]
    return data


def person_ids_in(pop: dict[str, Any]) -> Sequence[int]:
    """Every person whose record the pop shows (for the audit log)."""
    return [p["person_id"] for p in pop.get("people", [])] + [
        p["person_id"] for p in pop.get("household", [])]
