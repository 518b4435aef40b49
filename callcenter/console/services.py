"""What the console does beyond reading: record an unknown caller, find a number to call."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.models import (
    PERSON_ROLES,
    Building,
    Community,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Unit,
)
from callcenter.directory.phones import normalize_phone, phone_kind
from callcenter.errors import InvalidInput, NotFound

_ROOM = re.compile(
    r"\s*([0-9A-Za-z]+)\s*(?:栋|号楼|幢|座|-)\s*(?:([0-9A-Za-z]+)\s*(?:单元|-))?\s*([0-9]+)\s*室?\s*")


async def lives_in(session: AsyncSession, person_id: int, scope: frozenset[str]) -> bool:
    """Has the person a room in one of the communities ``scope`` (codes)?"""
    found = await session.scalar(
        select(PersonRoom.person_id).join(Room, Room.id == PersonRoom.room_id)
        .join(Unit, Unit.id == Room.unit_id).join(Building, Building.id == Unit.building_id)
        .join(Community, Community.id == Building.community_id)
        .where(PersonRoom.person_id == person_id, Community.code.in_(sorted(scope))).limit(1))
    return found is not None


async def find_room(session: AsyncSession, text: str, community_code: str | None) -> Room:
    """``3-1-1201`` / ``3栋1单元1201`` / ``3-1201`` → the room, in the call's community if known."""
    m = _ROOM.fullmatch(text)
    if not m:
        raise InvalidInput("房号格式应为 3-1-1201 或 3栋1单元1201 / room must look like 3-1-1201",
                           field="room")
    building, unit, number = m.group(1).upper(), m.group(2), m.group(3)
    stmt = (select(Room).join(Unit, Unit.id == Room.unit_id)
            .join(Building, Building.id == Unit.building_id)
            .join(Community, Community.id == Building.community_id)
            .where(Building.name == building, Room.number == number))
    if unit is not None:
        stmt = stmt.where(Unit.name == unit)
    if community_code:
        stmt = stmt.where(Community.code == community_code)
    rooms = (await session.scalars(stmt.limit(2))).all()
    if not rooms:
        raise InvalidInput(f"找不到房号 {text} / no such room", field="room")
    if len(rooms) > 1:
        raise InvalidInput(f"房号 {text} 不唯一，请写上单元 / ambiguous room, add the unit",
                           field="room")
    return rooms[0]


async def record_unknown_caller(session: AsyncSession, *, name: str, number: str,
                                room: str = "", role: str = "owner", note: str = "",
                                community_code: str | None = None) -> int:
    """Add the person behind an unknown number (the quick form on a 陌生来电 pop)."""
    name = name.strip()
    if not name:
        raise InvalidInput("请填写姓名 / name is required", field="name")
    if len(name) > 100:
        raise InvalidInput("姓名太长 / name is too long", field="name")
    if role not in PERSON_ROLES:
        raise InvalidInput(f"身份应为 {'/'.join(PERSON_ROLES)}", field="role")
    e164 = normalize_phone(number)
    person = Person(name=name, note=note.strip()[:500])
    person.phones.append(PersonPhone(number=e164, raw=number[:64], kind=phone_kind(e164)))
    if room.strip():
        found = await find_room(session, room.strip(), community_code)
        person.rooms.append(PersonRoom(room_id=found.id, role=role))
    session.add(person)
    await session.commit()
    return person.id


async def person_phone(session: AsyncSession, person_id: int, index: int) -> str:
    """The E.164 number a click-to-call should dial (the client only ever saw it masked)."""
    phones = (await session.scalars(
        select(PersonPhone).where(PersonPhone.person_id == person_id)
        .order_by(PersonPhone.position, PersonPhone.id))).all()
    if not phones:
        raise NotFound("此人没有电话号码 / this person has no phone number",
                       details={"person_id": person_id})
    if not 0 <= index < len(phones):
        raise InvalidInput("没有这个号码 / no such phone", field="phone")
    return phones[index].number
