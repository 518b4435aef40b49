"""Build the screen-pop of a call from the directory, tickets and the call log.

The pop is a plain JSON-able dict holding full numbers (``caller.e164``,
people's ``phones``); ``masking.present_pop`` makes the copy a given viewer
sees. Building costs one database session and a handful of flat indexed
queries (no ORM object graphs: the ``selectinload`` cascade of the directory's
``lookup_by_number`` took ~20 round trips, 38 ms on SQLite, per pop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Tag,
    Unit,
    person_tags,
)
from callcenter.directory.phones import try_normalize
from callcenter.screenpop.sources import (
    CallHistorySource,
    NoCallHistory,
    NoTickets,
    OpenTicketsSource,
)

UNKNOWN_LABEL = "陌生来电"
WITHHELD_LABEL = "未显示号码"
RECENT_CALLS = 5
_ROLE_RANK = {"owner": 0, "tenant": 1, "family": 2}


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
                 calls: CallHistorySource | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 community_ttl_s: float = 60.0) -> None:
        self._sm = sessionmaker
        self._monotonic = monotonic
        self._community_ttl = community_ttl_s
        self._communities: dict[str, tuple[float, str | None]] = {}
        self._tickets: OpenTicketsSource = tickets or NoTickets()
        self._calls: CallHistorySource = calls or NoCallHistory()

    async def build(self, ctx: CallContext) -> dict[str, Any]:
        async with self._sm() as session:
            return await self.build_in(session, ctx)

    async def build_in(self, session: AsyncSession, ctx: CallContext) -> dict[str, Any]:
        e164 = try_normalize(ctx.caller) if ctx.caller else None
        found_ids: list[int] = []
        if e164:
            found_ids = list((await session.scalars(
                select(PersonPhone.person_id).where(PersonPhone.number == e164)
                .order_by(PersonPhone.person_id))).unique())
        community = await self._community(session, ctx.community)
        links = await _room_links(session, person_ids=found_ids) if found_ids else []
        room_ids = list(dict.fromkeys(link["room_id"] for link in links))
        household_links = [
            link for link in await _room_links(session, room_ids=room_ids)
            if link["person_id"] not in set(found_ids)
        ] if room_ids else []
        member_ids = list(dict.fromkeys(link["person_id"] for link in household_links))
        people_info = await _people(session, found_ids + member_ids)
        tickets = await self._tickets.open_tickets(session, room_ids, found_ids) if found_ids else []
        recent = await self._calls.recent_calls(session, e164, RECENT_CALLS) if e164 else []

        rooms: dict[int, dict[str, Any]] = {}
        for link in links:
            rooms.setdefault(link["room_id"], {
                "room_id": link["room_id"], "label": link["label"],
                "community": link["community"], "community_code": link["community_code"],
                "building": link["building"], "unit": link["unit"], "room": link["room"],
                "arrears": _money(link["arrears"]), "in_arrears": link["arrears"] > 0,
                "area_m2": None if link["area_m2"] is None else str(link["area_m2"]),
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
        people = [_person(people_info[pid], [lk for lk in links if lk["person_id"] == pid])
                  for pid in found_ids if pid in people_info]
        household_people = [
            _person(people_info[pid], [lk for lk in household_links if lk["person_id"] == pid])
            for pid in member_ids if pid in people_info]
        tags = sorted({t for p in people for t in p["tags"]})
        if e164 is None:
            title = WITHHELD_LABEL if not ctx.caller or not ctx.caller.strip("+0") else UNKNOWN_LABEL
        elif people:
            title = "、".join(p["name"] for p in people)
        else:
            title = UNKNOWN_LABEL
        return {
            "call_id": ctx.call_id,
            "known": bool(people),
            "title": title,
            "caller": {"e164": e164 or "", "display": "" if e164 else (ctx.caller or "")},
            "community": community,
            "queue": ctx.queue,
            "ivr_path": list(ctx.ivr_path),
            "people": people,
            "household": household_people,
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

    async def _community(self, session: AsyncSession, code: str | None
                         ) -> dict[str, str] | None:
        if not code:
            return None
        now = self._monotonic()
        cached = self._communities.get(code)
        if cached is not None and now - cached[0] < self._community_ttl:
            name = cached[1]
        else:
            name = (await session.scalars(
                select(Community.name).where(Community.code == code))).first()
            if len(self._communities) > 1000:
                self._communities.clear()
            self._communities[code] = (now, name)
        return {"code": code, "name": name or code}


async def _room_links(session: AsyncSession, *, person_ids: Sequence[int] = (),
                      room_ids: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Person-room links with the room's address and fee account: one flat query."""
    stmt = (
        select(PersonRoom.person_id, PersonRoom.role, Room.id, Room.number, Unit.name,
               Building.name, Community.name, Community.code, FeeAccount.arrears,
               FeeAccount.area_m2)
        .join(Room, Room.id == PersonRoom.room_id)
        .join(Unit, Unit.id == Room.unit_id)
        .join(Building, Building.id == Unit.building_id)
        .join(Community, Community.id == Building.community_id)
        .outerjoin(FeeAccount, FeeAccount.room_id == Room.id)
    )
    if person_ids:
        stmt = stmt.where(PersonRoom.person_id.in_(list(person_ids)))
    if room_ids:
        stmt = stmt.where(PersonRoom.room_id.in_(list(room_ids)))
    out: list[dict[str, Any]] = []
    for pid, role, room_id, number, unit, building, cname, ccode, arrears, area in (
            await session.execute(stmt)).all():
        unit_label = f"{unit}单元" if unit else ""
        out.append({
            "person_id": pid, "role": role, "room_id": room_id, "room": number,
            "unit": unit or None, "building": building, "community": cname,
            "community_code": ccode, "arrears": arrears if arrears is not None else Decimal("0"),
            "area_m2": area, "label": f"{cname}{building}栋{unit_label}{number}室",
        })
    out.sort(key=lambda lk: (lk["person_id"], _ROLE_RANK.get(lk["role"], 9), lk["room_id"]))
    return out


async def _people(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Names, phones (in order) and tags of these people."""
    if not ids:
        return {}
    out: dict[int, dict[str, Any]] = {
        pid: {"person_id": pid, "name": name, "phones": [], "tags": []}
        for pid, name in (await session.execute(
            select(Person.id, Person.name).where(Person.id.in_(list(ids))))).all()
    }
    for pid, number in (await session.execute(
            select(PersonPhone.person_id, PersonPhone.number)
            .where(PersonPhone.person_id.in_(list(ids)))
            .order_by(PersonPhone.person_id, PersonPhone.position, PersonPhone.id))).all():
        out[pid]["phones"].append(number)
    for pid, tag in (await session.execute(
            select(person_tags.c.person_id, Tag.name).join(Tag, Tag.id == person_tags.c.tag_id)
            .where(person_tags.c.person_id.in_(list(ids))).order_by(Tag.name))).all():
        out[pid]["tags"].append(tag)
    return out


def _person(info: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, Any]:
    role = min((lk["role"] for lk in links), key=lambda r: _ROLE_RANK.get(r, 9), default="owner")
    return {
        "person_id": info["person_id"], "name": info["name"], "role": role,
        "phones": list(info["phones"]), "tags": list(info["tags"]),
        "rooms": [{"room_id": lk["room_id"], "label": lk["label"], "role": lk["role"]}
                  for lk in links],
    }


def person_ids_in(pop: dict[str, Any]) -> Sequence[int]:
    """Every person whose record the pop shows (for the audit log)."""
    return [p["person_id"] for p in pop.get("people", [])] + [
        p["person_id"] for p in pop.get("household", [])]
