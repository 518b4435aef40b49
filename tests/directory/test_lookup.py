"""Lookup by caller number finds the person, their rooms, arrears and tags."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.reader import sqlite_reader
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
from callcenter.directory.services import (
    caller_rooms_by_number,
    caller_rooms_on,
    household,
    lookup_by_number,
    search_people,
)


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


async def test_like_wildcards_in_a_search_are_literal(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """``q=%`` once listed 20 owners: % and _ (and the escape character) match only
    themselves, in a name search and beside digits."""
    await _seed(sessionmaker)
    async with sessionmaker() as s:
        for query in ("%", "_", "%%", "王%", "_建国", "\\", "%5678", "1%", "王\\%"):
            assert await search_people(s, query) == [], query
        assert [p.name for p in await search_people(s, "建国")] == ["王建国"]


async def test_the_ivr_lookup_agrees_with_the_full_record(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """``caller_rooms_by_number`` (one query, the IVR's) names the same person and the
    same rooms, in the same order, as the full lookup, for shared and unknown numbers."""
    await _seed(sessionmaker)
    async with sessionmaker() as s:
        lodger = Person(name="张三")
        lodger.phones = [PersonPhone(number="+8613812345678", raw="13812345678", position=1)]
        room = (await s.scalars(select(Room).where(Room.number == "1201"))).one()
        lodger.rooms = [PersonRoom(room=room, role="tenant")]
        s.add(Person(name="无房住户", phones=[PersonPhone(number="+8613900000000", raw="x")]))
        s.add(lodger)
        await s.commit()
    async with sessionmaker() as s:
        for number in ("13812345678", "0755-26543210", "13900000000", "13700000000", "abc"):
            people = await lookup_by_number(s, number)
            fast = await caller_rooms_by_number(s, number)
            assert fast.name == (people[0].name if people else None), number
            full: dict[int, str] = {}
            for p in people:
                for u in p.units:
                    full.setdefault(u.room_id, u.label)
            assert list(fast.rooms) == list(full.items()), number
    async with sessionmaker() as s:
        shared = await caller_rooms_by_number(s, "13812345678")
    assert shared.name == "王建国" and len(shared.rooms) == 2
    assert shared.rooms[0][1] == "湖畔花园3栋2单元1201室"


async def test_the_sqlite_reader_runs_the_same_caller_lookup(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str, db_backend: str,
) -> None:
    """The IVR runs the caller lookup on a synchronous read-only SQLite engine (on the
    event loop); it must find what the async session finds, and refuse to write."""
    reader = sqlite_reader(db_url)
    if db_backend != "sqlite":
        assert reader is None
        return
    assert reader is not None
    await _seed(sessionmaker)
    try:
        for number in ("+8613812345678", "+8675526543210", "+8613900000000"):
            with reader.connect() as conn:
                sync = caller_rooms_on(conn, number)
            async with sessionmaker() as s:
                assert sync == await caller_rooms_by_number(s, number), number
        with reader.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM people"))
    finally:
        reader.dispose()
