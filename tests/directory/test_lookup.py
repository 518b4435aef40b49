"""Lookup by caller number finds the person, their rooms, arrears and tags."""

from __future__ import annotations

from decimal import Decimal

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
)
from callcenter.directory.services import household, lookup_by_number, search_people


async def _seed(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as s:
        c = Community(code="lakeside", name="湖畔花园")
        b = Building(community=c, name="3")
        u = Unit(building=b, name="2")
        r1 = Room(unit=u, number="1201")
        r2 = Room(unit=Unit(building=b, name=""), number="101")
        s.add_all([c, b, u, r1, r2])
        s.add(FeeAccount(room=r1, area_m2=Decimal("89.50"), arrears=Decimal("1280.00")))
        owner = Person(name="王建国", tags=[Tag(name="VIP")])
        owner.phones = [PersonPhone(number="+8613812345678", raw="13812345678")]
        owner.rooms = [PersonRoom(room=r1, role="owner"), PersonRoom(room=r2, role="owner")]
        wife = Person(name="李秀英")
        wife.phones = [PersonPhone(number="+8675526543210", raw="0755-26543210")]
        wife.rooms = [PersonRoom(room=r1, role="family")]
        s.add_all([owner, wife])
        await s.commit()


async def test_every_caller_form_finds_the_owner(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await _seed(sessionmaker)
    async with sessionmaker() as s:
        for form in ("13812345678", "+8613812345678", "008613812345678", "8613812345678", "013812345678"):
            people = await lookup_by_number(s, form)
            assert [p.name for p in people] == ["王建国"], form
        (p,) = await lookup_by_number(s, "13812345678")
        assert p.tags == ("VIP",)
        rooms = {(u.building, u.unit, u.room): u for u in p.units}
        assert set(rooms) == {("3", "2", "1201"), ("3", None, "101")}
        assert rooms[("3", "2", "1201")].arrears == Decimal("1280.00")
        assert rooms[("3", None, "101")].arrears == Decimal("0")
        for form in ("075526543210", "0755-26543210", "(0755)26543210"):
            assert [x.name for x in await lookup_by_number(s, form)] == ["李秀英"]


async def test_unknown_withheld_and_garbage_numbers_find_nobody(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _seed(sessionmaker)
    async with sessionmaker() as s:
        for number in ("13900000000", "anonymous", "", "<unknown>", "8001"):
            assert await lookup_by_number(s, number) == []


async def test_household_and_search(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await _seed(sessionmaker)
    async with sessionmaker() as s:
        (owner,) = await lookup_by_number(s, "13812345678")
        members = await household(s, [u.room_id for u in owner.units], exclude=owner.person_id)
        assert [(m.name, m.role) for m in members] == [("李秀英", "family")]
        assert [p.name for p in await search_people(s, "王建")] == ["王建国"]
        assert [p.name for p in await search_people(s, "3-2-1201")] == ["王建国", "李秀英"]
        assert [p.name for p in await search_people(s, "3栋1201")] == ["王建国", "李秀英"]
        assert [p.name for p in await search_people(s, "5678")] == ["王建国"]
