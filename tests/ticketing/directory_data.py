"""A small directory for ticket and ingest tests: two communities, owners with one
and with several rooms."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.models import (
    Building,
    Community,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Unit,
)
from callcenter.directory.phones import normalize_phone


@dataclass(frozen=True)
class Seeded:
    community_id: int
    other_community_id: int
    room_3_2_1201: int
    room_5_1_801: int
    room_7_1_502: int
    room_other_1_1_101: int
    wang_id: int  # 13912345678, owns 3-2-1201 only (the spool fixture's caller)
    li_id: int  # 13800000002, owns 5-1-801 and 7-1-502


async def seed_directory(sm: async_sessionmaker[AsyncSession]) -> Seeded:
    async with sm() as s:
        hupan = Community(code="hupan", name="湖畔花园", hotline_numbers=[])
        other = Community(code="binjiang", name="滨江小区", hotline_numbers=[])
        s.add_all([hupan, other])
        await s.flush()

        async def room(community: Community, b: str, u: str, number: str) -> Room:
            building = Building(community_id=community.id, name=b)
            s.add(building)
            await s.flush()
            unit = Unit(building_id=building.id, name=u)
            s.add(unit)
            await s.flush()
            r = Room(unit_id=unit.id, number=number)
            s.add(r)
            await s.flush()
            return r

        r1201 = await room(hupan, "3", "2", "1201")
        r801 = await room(hupan, "5", "1", "801")
        r502 = await room(hupan, "7", "1", "502")
        r101 = await room(other, "1", "1", "101")
        wang = Person(name="王小明")
        li = Person(name="李四")
        s.add_all([wang, li])
        await s.flush()
        s.add_all([
            PersonPhone(person_id=wang.id, number=normalize_phone("13912345678"), raw="13912345678"),
            PersonPhone(person_id=li.id, number=normalize_phone("13800000002"), raw="13800000002"),
            PersonRoom(person_id=wang.id, room_id=r1201.id, role="owner"),
            PersonRoom(person_id=li.id, room_id=r801.id, role="owner"),
            PersonRoom(person_id=li.id, room_id=r502.id, role="owner"),
        ])
        await s.commit()
        return Seeded(hupan.id, other.id, r1201.id, r801.id, r502.id, r101.id, wang.id, li.id)
