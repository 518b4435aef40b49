"""What the directory does: find people by phone number, room or name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Unit,
)
from callcenter.directory.phones import try_normalize


@dataclass(frozen=True, slots=True)
class RoomView:
    room_id: int
    community: str
    community_code: str
    building: str
    unit: str | None
    room: str
    role: str
    arrears: Decimal
    area_m2: Decimal | None

    @property
    def label(self) -> str:
        unit = f"{self.unit}单元" if self.unit else ""
        return f"{self.community}{self.building}栋{unit}{self.room}室"


@dataclass(frozen=True, slots=True)
class PersonView:
    person_id: int
    name: str
    role: str
    phones: tuple[str, ...]
    tags: tuple[str, ...]
    units: tuple[RoomView, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phones"] = list(self.phones)
        data["tags"] = list(self.tags)
        data["units"] = [
            {
                "room_id": u.room_id,
                "community": u.community,
                "building": u.building,
                "unit": u.unit,
                "room": u.room,
                "role": u.role,
                "arrears": str(u.arrears),
                "area_m2": None if u.area_m2 is None else str(u.area_m2),
            }
            for u in self.units
        ]
        return data


_ROLE_RANK = {"owner": 0, "tenant": 1, "family": 2}

_PERSON_LOAD = (
    selectinload(Person.phones),
    selectinload(Person.tags),
    selectinload(Person.rooms)
    .selectinload(PersonRoom.room)
    .options(
        selectinload(Room.unit).selectinload(Unit.building).selectinload(Building.community),
        selectinload(Room.fee_account),
    ),
)


def person_view(person: Person) -> PersonView:
    rooms = []
    for link in sorted(person.rooms, key=lambda r: (_ROLE_RANK.get(r.role, 9), r.room_id)):
        room = link.room
        unit = room.unit
        building = unit.building
        fee = room.fee_account
        rooms.append(
            RoomView(
                room_id=room.id,
                community=building.community.name,
                community_code=building.community.code,
                building=building.name,
                unit=unit.name or None,
                room=room.number,
                role=link.role,
                arrears=fee.arrears if fee else Decimal("0"),
                area_m2=fee.area_m2 if fee else None,
            )
        )
    role = min((r.role for r in rooms), key=lambda r: _ROLE_RANK.get(r, 9), default="owner")
    return PersonView(
        person_id=person.id,
        name=person.name,
        role=role,
        phones=tuple(p.number for p in sorted(person.phones, key=lambda p: p.position)),
        tags=tuple(sorted(t.name for t in person.tags)),
        units=tuple(rooms),
    )


async def lookup_by_number(session: AsyncSession, number: str) -> list[PersonView]:
    """Everyone a caller number finds; [] for an unknown, withheld or invalid number."""
    e164 = try_normalize(number)
    if e164 is None:
        return []
    stmt = (
        select(Person)
        .join(PersonPhone, PersonPhone.person_id == Person.id)
        .where(PersonPhone.number == e164)
        .options(*_PERSON_LOAD)
        .order_by(Person.id)
    )
    people = (await session.scalars(stmt)).unique().all()
    return [person_view(p) for p in people]


@dataclass(frozen=True, slots=True)
class CallerRooms:
    """Who a caller number finds, as the IVR needs it: the first person's name and
    every room of everyone it finds (owner's rooms first), as (room id, label)."""

    name: str | None
    rooms: tuple[tuple[int, str], ...]


# Everyone with a number (``{"e164": ...}``), with their rooms' addresses and fee
# accounts, in one flat query on any connection, async or not: the IVR folds the
# rows with ``caller_rooms_of``, the screen-pop builds its record from them.
# Built once: on every incoming call, constructing it cost SQLAlchemy several times
# what SQLite takes to run it.
CALLER_ROOMS_QUERY = (
    select(Person.id, Person.name, PersonRoom.role, Room.id, Room.number, Unit.name,
           Building.name, Community.name, Community.code, FeeAccount.arrears,
           FeeAccount.area_m2)
    .select_from(PersonPhone)
    .join(Person, Person.id == PersonPhone.person_id)
    .outerjoin(PersonRoom, PersonRoom.person_id == Person.id)
    .outerjoin(Room, Room.id == PersonRoom.room_id)
    .outerjoin(Unit, Unit.id == Room.unit_id)
    .outerjoin(Building, Building.id == Unit.building_id)
    .outerjoin(Community, Community.id == Building.community_id)
    .outerjoin(FeeAccount, FeeAccount.room_id == Room.id)
    .where(PersonPhone.number == bindparam("e164"))
    .order_by(Person.id, Room.id)
    .limit(50)
)


def caller_rooms_of(rows: Sequence[Any]) -> CallerRooms:
    if not rows:
        return CallerRooms(None, ())
    linked = sorted((r for r in rows if r[3] is not None),
                    key=lambda r: (r[0], _ROLE_RANK.get(r[2], 9), r[3]))
    rooms: dict[int, str] = {}
    for _pid, _name, _role, room_id, room, unit, building, community, *_ in linked:
        label = RoomView(room_id, community, "", building, unit or None, room, "", Decimal(0),
                         None).label
        rooms.setdefault(room_id, label)
    return CallerRooms(rows[0][1], tuple(rooms.items()))


def caller_rooms_on(conn: Connection, number: str) -> CallerRooms:
    """``caller_rooms_by_number`` on a synchronous connection (the read-only SQLite
    reader the IVR runs it with, on the event loop)."""
    e164 = try_normalize(number)
    if e164 is None:
        return CallerRooms(None, ())
    return caller_rooms_of(conn.execute(CALLER_ROOMS_QUERY, {"e164": e164}).all())


async def caller_rooms_by_number(session: AsyncSession, number: str) -> CallerRooms:
    """Who a caller number finds, in one flat query (the hot path of every incoming
    call), where ``lookup_by_number`` loads whole records with eight."""
    e164 = try_normalize(number)
    if e164 is None:
        return CallerRooms(None, ())
    return caller_rooms_of((await session.execute(CALLER_ROOMS_QUERY, {"e164": e164})).all())


_PEOPLE_OF_NUMBERS = (
    select(PersonPhone.number, PersonPhone.person_id).distinct()
    .where(PersonPhone.number.in_(bindparam("numbers", expanding=True)))
    .order_by(PersonPhone.number, PersonPhone.person_id))


async def person_ids_by_numbers(conn: AsyncConnection, numbers: Sequence[str]
                                ) -> dict[str, list[int]]:
    """The ids of the people each (E.164) number finds, for hot paths that only need
    to know who (the call log's match): one indexed query for a whole batch."""
    found: dict[str, list[int]] = {}
    if numbers:
        for number, person_id in await conn.execute(_PEOPLE_OF_NUMBERS,
                                                    {"numbers": list(numbers)}):
            found.setdefault(number, []).append(person_id)
    return found


async def get_person(session: AsyncSession, person_id: int) -> PersonView | None:
    stmt = select(Person).where(Person.id == person_id).options(*_PERSON_LOAD)
    person = (await session.scalars(stmt)).first()
    return person_view(person) if person else None


async def household(session: AsyncSession, room_ids: list[int], *, exclude: int | None = None
                    ) -> list[PersonView]:
    """Everyone linked to these rooms (family members, tenants)."""
    if not room_ids:
        return []
    stmt = (
        select(Person)
        .join(PersonRoom, PersonRoom.person_id == Person.id)
        .where(PersonRoom.room_id.in_(room_ids))
        .options(*_PERSON_LOAD)
        .order_by(Person.id)
    )
    people = (await session.scalars(stmt)).unique().all()
    return [person_view(p) for p in people if p.id != exclude]


async def search_people(session: AsyncSession, query: str, *, limit: int = 20,
                        scope: frozenset[str] | None = None) -> list[PersonView]:
    """Search by name (prefix/contains), phone (any form) or room (``3-2-1201``, ``3栋1201``).
    With a ``scope`` (community codes), only people with a room in one of them, shown
    with those rooms only."""
    query = query.strip()
    if not query:
        return []
    e164 = try_normalize(query)
    if e164 is not None:
        return in_communities(await lookup_by_number(session, e164), scope)
    stmt = select(Person).options(*_PERSON_LOAD).limit(limit).order_by(Person.id)
    if scope is not None:
        stmt = stmt.where(Person.id.in_(
            select(PersonRoom.person_id).join(Room, Room.id == PersonRoom.room_id)
            .join(Unit, Unit.id == Room.unit_id).join(Building, Building.id == Unit.building_id)
            .join(Community, Community.id == Building.community_id)
            .where(Community.code.in_(sorted(scope)))))
    room_parts = _parse_room_query(query)
    if room_parts is not None:
        building, unit, number = room_parts
        stmt = (
            stmt.join(PersonRoom, PersonRoom.person_id == Person.id)
            .join(Room, Room.id == PersonRoom.room_id)
            .join(Unit, Unit.id == Room.unit_id)
            .join(Building, Building.id == Unit.building_id)
            .where(Building.name == building, Room.number == number)
        )
        if unit is not None:
            stmt = stmt.where(Unit.name == unit)
    elif query.isdigit() and len(query) >= 4:
        stmt = stmt.join(PersonPhone, PersonPhone.person_id == Person.id).where(
            PersonPhone.number.like(f"%{query}")
        )
    else:
        # A name with % or _ in it is searched for literally: they are no wildcards here.
        stmt = stmt.where(Person.name.contains(query, autoescape=True))
    people = (await session.scalars(stmt)).unique().all()
    return in_communities([person_view(p) for p in people], scope)


def in_communities(people: Sequence[PersonView], scope: frozenset[str] | None
                   ) -> list[PersonView]:
    """Those of ``people`` with a room in ``scope`` (codes; None: all), with only those
    rooms."""
    if scope is None:
        return list(people)
    out = []
    for p in people:
        units = tuple(u for u in p.units if u.community_code in scope)
        if units:
            out.append(replace(p, units=units))
    return out


def _parse_room_query(query: str) -> tuple[str, str | None, str] | None:
    import re

    m = re.fullmatch(r"\s*([0-9A-Za-z]+)\s*(?:栋|号楼|幢|座|-)\s*(?:([0-9]+)\s*(?:单元|-))?\s*([0-9]+)\s*室?\s*", query)
    if not m:
        return None
    return m.group(1).upper(), m.group(2), m.group(3)


async def community_by_code(session: AsyncSession, code: str) -> Community | None:
    return (await session.scalars(select(Community).where(Community.code == code))).first()
