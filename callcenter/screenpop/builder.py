"""Build the screen-pop of a call from the directory, tickets and the call log.

The pop is a plain JSON-able dict holding full numbers (``caller.e164``,
people's ``phones``); ``masking.present_pop`` makes the copy a given viewer
sees. Building costs one database connection and a handful of flat indexed
queries, each built once (no ORM object graphs: the ``selectinload`` cascade
of the directory's ``lookup_by_number`` took ~20 round trips, 38 ms on SQLite,
per pop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, literal, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.models import (
    Community,
    Person,
    PersonPhone,
    PersonRoom,
    Tag,
    person_tags,
)
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import CALLER_ROOMS_QUERY
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
# Every outcome a call can end with (the call log's and the hub's), as staff read it.
OUTCOME_LABELS = {
    "answered": "已接听", "abandoned": "来电放弃", "voicemail": "留言",
    "emergency": "紧急呼叫", "ivr_only": "语音自助", "ended": "未接听", "missed": "未接",
    "transferred": "已转接",
}


def outcome_label(outcome: str | None) -> str:
    if not outcome:
        return "未结束"
    return OUTCOME_LABELS.get(outcome, f"其他（{outcome}）")


def local_time(at: datetime, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``at`` (aware, or naive UTC) as the site's wall clock reads it."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(tz).strftime(fmt)


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
                 community_ttl_s: float = 60.0, max_concurrent: int = 4,
                 reader: Engine | None = None, timezone: str = "Asia/Shanghai") -> None:
        """``reader``: a synchronous engine on the same SQLite file; when given, each
        pop is built with it right on the event loop (see ``sqlite_reader``).
        ``timezone``: the site's, for the times the pop shows (``*_local``)."""
        self._sm = sessionmaker
        self._tz = ZoneInfo(timezone)
        self._reader = reader
        # Many builds at once only make the database threads fight over the GIL
        # (aiosqlite) or the pool: a few at a time finish sooner.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._monotonic = monotonic
        self._community_ttl = community_ttl_s
        self._communities: dict[str, tuple[float, str | None]] = {}
        self._tickets: OpenTicketsSource = tickets or NoTickets()
        self._calls: CallHistorySource = calls or NoCallHistory()

    @property
    def blocks_loop(self) -> bool:
        """True when a build runs synchronously on the event loop (the SQLite reader)."""
        return self._reader is not None

    async def build(self, ctx: CallContext) -> dict[str, Any]:
        if self._reader is not None:
            return self._build_on_reader(ctx)
        async with self._slots, self._sm() as session:
            return await session.run_sync(lambda s: self.build_sync(s.connection(), ctx))

    def _build_on_reader(self, ctx: CallContext) -> dict[str, Any]:
        assert self._reader is not None
        with self._reader.connect() as conn:
            return self.build_sync(conn, ctx)

    def build_sync(self, conn: Connection, ctx: CallContext) -> dict[str, Any]:
        e164 = try_normalize(ctx.caller) if ctx.caller else None
        community = self._community(conn, ctx.community)
        found_ids, names, links = _callers(conn, e164) if e164 else ([], {}, [])
        room_ids = list(dict.fromkeys(link["room_id"] for link in links))
        household_links = _household(conn, room_ids, found_ids) if room_ids else []
        for link in household_links:
            names[link["person_id"]] = link.pop("name")
        member_ids = list(dict.fromkeys(link["person_id"] for link in household_links))
        phones, tags = _phones_and_tags(conn, found_ids + member_ids, found_ids)
        people_info = {pid: {"person_id": pid, "name": names[pid], "phones": phones.get(pid, []),
                             "tags": tags.get(pid, [])} for pid in names}
        labels = {link["room_id"]: link["label"] for link in links}
        for link in household_links:
            link["label"] = labels.get(link["room_id"], "")
        tickets = self._tickets.open_tickets(conn, room_ids, found_ids) if found_ids else []
        recent = self._calls.recent_calls(conn, e164, RECENT_CALLS) if e164 else []

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
                    "created_at": t.created_at.isoformat() if t.created_at else None,
                    "created_at_local": local_time(t.created_at, self._tz)
                    if t.created_at else None}
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
        all_tags = sorted({t for p in people for t in p["tags"]})
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
            "tags": all_tags,
            "recent_calls": [
                {"call_id": c.call_id, "at": c.at.isoformat(),
                 "at_local": local_time(c.at, self._tz), "outcome": c.outcome,
                 "outcome_label": outcome_label(c.outcome), "agent": c.agent, "duration_s": c.duration_s, "ivr_path": list(c.ivr_path)}
                for c in recent
            ],
        }

    def _community(self, conn: Connection, code: str | None) -> dict[str, str] | None:
        if not code:
            return None
        now = self._monotonic()
        cached = self._communities.get(code)
        if cached is not None and now - cached[0] < self._community_ttl:
            name = cached[1]
        else:
            name = conn.execute(_COMMUNITY_NAME, {"code": code}).scalar()
            if len(self._communities) > 1000:
                self._communities.clear()
            self._communities[code] = (now, name)
        return {"code": code, "name": name or code}


# The pop's queries, built once: constructing a statement costs SQLAlchemy several
# times what SQLite takes to run it (about 0.5 ms against 0.08 ms for the callers'
# join, ``CALLER_ROOMS_QUERY``, shared with the IVR), and a pop is built for every
# call, on the event loop on SQLite.
_HOUSEHOLD = (
    select(PersonRoom.person_id, Person.name, PersonRoom.role, PersonRoom.room_id)
    .join(Person, Person.id == PersonRoom.person_id)
    .where(PersonRoom.room_id.in_(bindparam("room_ids", expanding=True)),
           PersonRoom.person_id.not_in(bindparam("exclude", expanding=True)))
    .order_by(PersonRoom.person_id, PersonRoom.room_id)
)
_PHONES_AND_TAGS = union_all(
    select(PersonPhone.person_id, literal("p"), PersonPhone.number, PersonPhone.position,
           PersonPhone.id)
    .where(PersonPhone.person_id.in_(bindparam("phone_ids", expanding=True))),
    select(person_tags.c.person_id, literal("t"), Tag.name, literal(0), Tag.id)
    .join(Tag, Tag.id == person_tags.c.tag_id)
    .where(person_tags.c.person_id.in_(bindparam("tag_ids", expanding=True))),
)
_COMMUNITY_NAME = select(Community.name).where(Community.code == bindparam("code"))


def _callers(conn: Connection, e164: str
             ) -> tuple[list[int], dict[int, str], list[dict[str, Any]]]:
    """Everyone with this number, with their rooms' addresses and fee accounts: one query
    (the IVR's, which stops at 50 rooms)."""
    names: dict[int, str] = {}
    links: list[dict[str, Any]] = []
    for pid, name, role, room_id, number, unit, building, cname, ccode, arrears, area in (
            conn.execute(CALLER_ROOMS_QUERY, {"e164": e164})).all():
        names[pid] = name
        if room_id is None:
            continue
        unit_label = f"{unit}单元" if unit else ""
        links.append({
            "person_id": pid, "role": role, "room_id": room_id, "room": number,
            "unit": unit or None, "building": building, "community": cname,
            "community_code": ccode, "arrears": arrears if arrears is not None else Decimal("0"),
            "area_m2": area, "label": f"{cname}{building}栋{unit_label}{number}室",
        })
    links.sort(key=lambda lk: (lk["person_id"], _ROLE_RANK.get(str(lk["role"]), 9),
                               lk["room_id"]))
    return sorted(names), names, links


def _household(conn: Connection, room_ids: Sequence[int],
               exclude: Sequence[int]) -> list[dict[str, Any]]:
    """The others linked to these rooms (family, tenants, co-owners)."""
    rows = conn.execute(_HOUSEHOLD, {"room_ids": list(room_ids), "exclude": list(exclude)})
    return [{"person_id": pid, "name": name, "role": role, "room_id": room_id}
            for pid, name, role, room_id in rows.all()]


def _phones_and_tags(conn: Connection, phone_ids: Sequence[int],
                     tag_ids: Sequence[int]
                     ) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Phones (in order) of ``phone_ids`` and tags of ``tag_ids``: one round trip."""
    phones: dict[int, list[str]] = {}
    tags: dict[int, list[str]] = {}
    if not phone_ids:
        return phones, tags
    rows = sorted(conn.execute(_PHONES_AND_TAGS, {"phone_ids": list(phone_ids),
                                                  "tag_ids": list(tag_ids)}).all(),
                  key=lambda r: (r[0], r[1], r[3], r[4]))
    for pid, kind, value, _pos, _id in rows:
        (phones if kind == "p" else tags).setdefault(pid, []).append(value)
    for values in tags.values():
        values.sort()
    return phones, tags


def _person(info: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, Any]:
    role = min((lk["role"] for lk in links), key=lambda r: _ROLE_RANK.get(r, 9), default="owner")
    return {
        "person_id": info["person_id"], "name": info["name"], "role": role,
        "phones": list(info["phones"]), "tags": list(info["tags"]),
        "rooms": [{"room_id": lk["room_id"], "label": lk["label"], "role": lk["role"]}
                  for lk in links],
    }


def ivr_room_id(pop: dict[str, Any], ivr_path: Sequence[str]) -> int | None:
    """The caller's room the IVR settled on (its fee-balance branch records the room's
    label as a step), latest first; None when the path names none of the pop's rooms."""
    by_label = {r["label"]: r["room_id"] for r in pop.get("rooms", ())}
    for step in reversed(ivr_path):
        if step in by_label:
            return int(by_label[step])
    return None


def person_ids_in(pop: dict[str, Any]) -> Sequence[int]:
    """Every person whose record the pop shows (for the audit log)."""
    return [p["person_id"] for p in pop.get("people", [])] + [
        p["person_id"] for p in pop.get("household", [])]


DEGRADED_LABEL = "来电（资料暂不可用）"


def degraded_pop(ctx: CallContext) -> dict[str, Any]:
    """What the agent sees when the pop cannot be built (the database is down or too
    busy): the number, the community code and the IVR path the call brought with it,
    flagged ``degraded``; the hub keeps trying to build the real one behind it."""
    e164 = try_normalize(ctx.caller) if ctx.caller else None
    return {
        "call_id": ctx.call_id, "known": False, "degraded": True, "title": DEGRADED_LABEL,
        "caller": {"e164": e164 or "", "display": "" if e164 else (ctx.caller or "")},
        "community": {"code": ctx.community, "name": ctx.community} if ctx.community else None,
        "queue": ctx.queue, "ivr_path": list(ctx.ivr_path), "people": [], "household": [],
        "rooms": [], "other_open_tickets": [], "arrears_total": "0.00", "tags": [],
        "recent_calls": [],
    }

