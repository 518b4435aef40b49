"""Who is on call: shifts across midnight, weekly rotation boundaries, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.oncall.errors import InvalidSchedule, NoSchedule, UnknownCommunity
from callcenter.oncall.services import (
    ChainSpec,
    ShiftInput,
    add_override,
    calendar,
    create_schedule,
    parse_hhmm,
    who_is_on_call,
)

SM = async_sessionmaker[AsyncSession]
SH = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


async def seed(sm: SM) -> dict[str, int]:
    async with sm() as session:
        comm = Community(code="lakeside", name="湖畔花园", timezone="Asia/Shanghai",
                         hotline_numbers=[])
        session.add(comm)
        await session.flush()
        ids = {}
        for name in ("day1", "day2", "zhang", "li", "wang", "boss", "sub"):
            u = StaffUser(username=name, display_name=name, role="night_duty",
                          memberships=[StaffCommunity(community_id=comm.id)],
                          extension=f"80{len(ids)}", mobile=f"1380000000{len(ids)}", active=True,
                          notify={})
            session.add(u)
            await session.flush()
            ids[name] = u.id
        await session.commit()
    async with sm() as session:
        await create_schedule(session, community="lakeside", role="night_duty", shifts=[
            # Day shift: two people alternating daily from Monday 2026-11-23.
            ShiftInput("白班", "08:30", "18:00", [ids["day1"], ids["day2"]], date(2026, 11, 23), 1),
            # Night shift crosses midnight; weekly night-duty rotation from Monday.
            ShiftInput("夜班", "18:00", "08:30", [ids["zhang"], ids["li"], ids["wang"]],
                       date(2026, 11, 23), 7),
        ], chain=[ChainSpec(0, "primary", "rotation", 0), ChainSpec(1, "backup", "rotation", 1),
                  ChainSpec(2, "supervisor", "user", user_id=ids["boss"])])
    return ids


def names(ans: object) -> list[str]:
    return [p.name for p in ans.people]  # type: ignore[attr-defined]


async def test_day_and_night_shift_across_midnight(sessionmaker: SM) -> None:
    ids = await seed(sessionmaker)
    async with sessionmaker() as s:
        day = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 23, 10))
        assert day.shift == "白班" and names(day) == ["day1", "day2", "boss"]
        assert day.until == local(2026, 11, 23, 18).astimezone(UTC)
        assert [p.label for p in day.people] == ["primary", "backup", "supervisor"]
        # The next day the day rotation has moved on by one.
        assert names(await who_is_on_call(s, "lakeside", "night_duty",
                                          local(2026, 11, 24, 8, 30)))[0] == "day2"
        # 17:59 is still day; 18:00 is night.
        assert (await who_is_on_call(s, "lakeside", "night_duty",
                                     local(2026, 11, 23, 17, 59))).shift == "白班"
        night = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 23, 18))
        assert night.shift == "夜班" and names(night) == ["zhang", "li", "boss"]
        # 02:00 on Tuesday belongs to Monday's night, which ends at 08:30.
        small_hours = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 24, 2))
        assert small_hours.shift == "夜班" and names(small_hours)[0] == "zhang"
        assert small_hours.until == local(2026, 11, 24, 8, 30).astimezone(UTC)
        # UTC input is converted: 2026-11-23 20:00 UTC is 04:00 Tuesday in Shanghai.
        utc = await who_is_on_call(s, "lakeside", "night_duty",
                                   datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
        assert utc.shift == "夜班" and names(utc)[0] == "zhang"
    assert ids


async def test_weekly_rotation_changes_at_the_shift_start_of_the_new_week(sessionmaker: SM) -> None:
    await seed(sessionmaker)
    async with sessionmaker() as s:
        async def primary(at: datetime) -> str:
            return names(await who_is_on_call(s, "lakeside", "night_duty", at))[0]

        # Sunday night 29th (the last night of week 1) runs into Monday morning.
        assert await primary(local(2026, 11, 29, 23)) == "zhang"
        assert await primary(local(2026, 11, 30, 8, 29)) == "zhang"
        # Monday 30th 18:00: week 2 starts, li's turn; wang is backup.
        wk2 = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 30, 18))
        assert names(wk2) == ["li", "wang", "boss"]
        assert await primary(local(2026, 12, 7, 18)) == "wang"
        assert await primary(local(2026, 12, 14, 18)) == "zhang"  # wraps round
        # Before the rotation start the turn counts backwards.
        assert await primary(local(2026, 11, 16, 18)) == "wang"


async def test_override_wins_over_rotation(sessionmaker: SM) -> None:
    ids = await seed(sessionmaker)
    async with sessionmaker() as s:
        # li is sick on Wednesday night: sub stands in wherever li is in the chain.
        await add_override(s, community="lakeside", role="night_duty",
                           starts_at=local(2026, 11, 25, 18), ends_at=local(2026, 11, 26, 8, 30),
                           user_id=ids["sub"], replaces_user_id=ids["li"], reason="病假")
        # A swap on Thursday night: wang takes the primary's duty 20:00–24:00.
        await add_override(s, community="lakeside", role="night_duty",
                           starts_at=local(2026, 11, 26, 20), ends_at=local(2026, 11, 27, 0),
                           user_id=ids["wang"], reason="换班")
    async with sessionmaker() as s:
        wed = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 25, 23))
        assert names(wed) == ["zhang", "sub", "boss"]
        thu_before = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 26, 19))
        assert names(thu_before)[0] == "zhang"
        assert thu_before.until == local(2026, 11, 26, 20).astimezone(UTC)
        thu = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 26, 21))
        assert names(thu) == ["wang", "li", "boss"]
        assert thu.until == local(2026, 11, 27, 0).astimezone(UTC)
        after = await who_is_on_call(s, "lakeside", "night_duty", local(2026, 11, 27, 1))
        assert names(after)[0] == "zhang"


async def test_inactive_people_are_skipped_and_gaps_say_when_cover_resumes(
        sessionmaker: SM) -> None:
    ids = await seed(sessionmaker)
    async with sessionmaker() as s:
        zhang = await s.get(StaffUser, ids["zhang"])
        assert zhang is not None
        zhang.active = False
        await s.commit()
        assert names(await who_is_on_call(s, "lakeside", "night_duty",
                                          local(2026, 11, 23, 22))) == ["li", "boss"]
        await create_schedule(s, community="lakeside", role="engineer", shifts=[
            ShiftInput("白班", "08:30", "18:00", [ids["day1"]], date(2026, 11, 23))])
        gap = await who_is_on_call(s, "lakeside", "engineer", local(2026, 11, 23, 20))
        assert gap.shift is None and gap.people == ()
        assert gap.until == local(2026, 11, 24, 8, 30).astimezone(UTC)


async def test_calendar_lists_fourteen_days_of_shifts(sessionmaker: SM) -> None:
    await seed(sessionmaker)
    async with sessionmaker() as s:
        entries = await calendar(s, "lakeside", "night_duty", local(2026, 11, 23, 12), days=14)
    assert len(entries) == 28
    nights = [e for e in entries if e.shift == "夜班"]
    assert [e.people[0].name for e in nights[:8]] == ["zhang"] * 7 + ["li"]
    assert entries[0].starts_at == local(2026, 11, 23, 8, 30).astimezone(UTC)


async def test_bad_input_is_refused_with_the_field(sessionmaker: SM) -> None:
    ids = await seed(sessionmaker)
    for bad in ("8:3x", "25:00", "", "24:30"):
        with pytest.raises(InvalidSchedule):
            parse_hhmm(bad, "start")
    assert parse_hhmm("24:00") == 0
    async with sessionmaker() as s:
        with pytest.raises(UnknownCommunity):
            await who_is_on_call(s, "nowhere", "night_duty", local(2026, 11, 23, 10))
        with pytest.raises(NoSchedule):
            await who_is_on_call(s, "lakeside", "plumber", local(2026, 11, 23, 10))
        with pytest.raises(InvalidSchedule):
            await who_is_on_call(s, "lakeside", "night_duty", datetime(2026, 11, 23, 10))
        with pytest.raises(InvalidSchedule) as exc:
            await add_override(s, community="lakeside", role="night_duty",
                               starts_at=local(2026, 11, 25, 18), ends_at=local(2026, 11, 25, 17),
                               user_id=ids["sub"])
        assert exc.value.details["field"] == "ends_at"
        with pytest.raises(InvalidSchedule):
            await create_schedule(s, community="lakeside", role="x", shifts=[])
        with pytest.raises(InvalidSchedule):
            await create_schedule(s, community="lakeside", role="x", shifts=[
                ShiftInput("a", "08:00", "09:00", [], date(2026, 1, 1))],
                chain=[ChainSpec(0, "primary", "user")])
