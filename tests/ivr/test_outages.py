"""停水停电通知, the service, on SQLite and PostgreSQL: who hears a notice (its
building, its units, every caller), how it ends (its end time, by hand), what
may not be posted, and the audio spoken from its text (or the generic prompt)."""

from __future__ import annotations

import shutil
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import ManualClock
from callcenter.demo import seed_directory
from callcenter.directory.models import Building, Community, Room, Unit
from callcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from ivr.outages.prompts import GENERIC, Rendered, render_notice
from ivr.outages.services import CACHE_S, NoticeRequest, OutageNotices, Poster

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
BOSS = Poster("boss", "supervisor")


@dataclass
class World:
    notices: OutageNotices
    clock: ManualClock
    community_id: int
    code: str
    rooms: dict[str, int]  # "3-1" → a room of 3栋1单元


def _silent(text: str, sounds: Path, notice_id: int) -> Rendered:
    return Rendered(f"outage/notice-{notice_id}")


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> World:
    await seed_directory(sessionmaker)
    async with sessionmaker() as s:
        community = (await s.scalars(select(Community))).one()
        community.code = "lakeside"
        rows = (await s.execute(select(Building.name, Unit.name, Room.id)
                                .join(Unit, Unit.building_id == Building.id)
                                .join(Room, Room.unit_id == Unit.id))).all()
        await s.commit()
        cid = community.id
    rooms: dict[str, int] = {}
    for b, u, rid in rows:
        rooms.setdefault(f"{b}-{u}", rid)
    clock = ManualClock(NOW)
    return World(OutageNotices(sessionmaker, clock, sounds=tmp_path / "sounds", render=_silent),
                 clock, cid, "lakeside", rooms)


def _req(w: World, **kw: object) -> NoticeRequest:
    base: dict[str, object] = {"community_id": w.community_id, "kind": "water",
                               "text": "3栋今天14点到18点停水检修", "building": "3",
                               "ends_at": NOW + timedelta(hours=4)}
    return NoticeRequest(**{**base, **kw})  # type: ignore[arg-type]


async def test_a_building_notice_is_heard_in_that_building_only(world: World) -> None:
    posted = await world.notices.post(_req(world), BOSS, None)
    assert posted.where == "3栋" and posted.scope_label.endswith("3栋")
    heard = await world.notices.heard_by("lakeside", [world.rooms["3-2"]])
    assert [(h.prompt, h.label) for h in heard] == [(f"outage/notice-{posted.id}", "停水通知")]
    assert await world.notices.heard_by("lakeside", [world.rooms["5-1"]]) == []


async def test_a_unit_range_covers_its_units_only(world: World) -> None:
    await world.notices.post(_req(world, building="3栋", unit_from=2, unit_to=2, kind="power"),
                             BOSS, None)
    assert [h.label for h in await world.notices.heard_by(None, [world.rooms["3-2"]])] == [
        "停电通知"]
    assert await world.notices.heard_by(None, [world.rooms["3-1"]]) == []


async def test_unknown_callers_hear_only_what_is_for_every_caller(world: World) -> None:
    await world.notices.post(_req(world, building=""), BOSS, None)  # the whole community
    assert await world.notices.heard_by("lakeside", []) == []
    assert len(await world.notices.heard_by("lakeside", [world.rooms["6-1"]])) == 1
    everyone = await world.notices.post(_req(world, building="", kind="gas", all_callers=True),
                                        BOSS, None)
    heard = await world.notices.heard_by("lakeside", [])
    assert [h.prompt for h in heard] == [f"outage/notice-{everyone.id}"]


async def test_a_notice_ends_itself_at_its_end_time(world: World) -> None:
    posted = await world.notices.post(_req(world), BOSS, None)
    await world.clock.advance(4 * 3600 - 1)
    assert await world.notices.heard_by(None, [world.rooms["3-1"]])
    await world.clock.advance(1)
    assert await world.notices.heard_by(None, [world.rooms["3-1"]]) == []
    assert [n.id for n in await world.notices.find(None, state="ended")] == [posted.id]
    assert await world.notices.find(None, state="live") == []


async def test_a_notice_not_yet_started_is_not_heard(world: World) -> None:
    await world.notices.post(_req(world, starts_at=NOW + timedelta(hours=1)), BOSS, None)
    assert await world.notices.heard_by(None, [world.rooms["3-1"]]) == []
    [listed] = await world.notices.find(None, state="live")
    assert listed.state(NOW) == "scheduled"
    await world.clock.advance(3600)
    assert await world.notices.heard_by(None, [world.rooms["3-1"]])


async def test_ending_early_records_who_and_when(world: World) -> None:
    posted = await world.notices.post(_req(world), BOSS, None)
    await world.clock.advance(600)
    with pytest.raises(Forbidden):
        await world.notices.end(posted.id, Poster("xiaoli", "agent"), "", None)
    with pytest.raises(NotFound):  # another community's person: no such notice
        await world.notices.end(posted.id, BOSS, "", frozenset({world.community_id + 1}))
    ended = await world.notices.end(posted.id, BOSS, "提前恢复供水", None)
    assert ended.ended_by == "boss" and ended.ended_at == NOW + timedelta(seconds=600)
    assert ended.end_note == "提前恢复供水" and ended.state(world.clock.now()) == "ended"
    assert await world.notices.heard_by(None, [world.rooms["3-1"]]) == []
    with pytest.raises(Conflict):
        await world.notices.end(posted.id, BOSS, "", None)


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "flood"}, "kind"),
    ({"text": "   "}, "text"),
    ({"text": "停" * 301}, "text"),
    ({"ends_at": NOW - timedelta(minutes=1)}, "ends_at"),
    ({"starts_at": NOW + timedelta(hours=5)}, "ends_at"),
    ({"ends_at": NOW + timedelta(days=31)}, "ends_at"),
    ({"building": "99"}, "building"),
    ({"building": "", "unit_from": 1}, "building"),
    ({"unit_from": 2, "unit_to": 1}, "unit_to"),
    ({"unit_to": 2}, "unit_from"),
    ({"unit_from": 0}, "unit_from"),
])
async def test_a_bad_notice_names_its_field_and_posts_nothing(
        world: World, change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        await world.notices.post(_req(world, **change), BOSS, None)
    assert err.value.field == field
    assert await world.notices.find(None, state="all") == []


async def test_only_admins_and_supervisors_of_the_community_post(world: World) -> None:
    for role in ("agent", "night_duty", "engineer"):
        with pytest.raises(Forbidden):
            await world.notices.post(_req(world), Poster("x", role), None)
    with pytest.raises(Forbidden):
        await world.notices.post(_req(world), BOSS, frozenset({world.community_id + 1}))
    assert await world.notices.find(frozenset({world.community_id + 1}), state="all") == []
    assert (await world.notices.post(_req(world), Poster("root", "admin"),
                                     frozenset({world.community_id}))).created_by == "root"


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                    reason="espeak-ng and sox render the notice")
def test_the_text_is_spoken_into_the_prompts_directory(tmp_path: Path) -> None:
    rendered = render_notice("3栋今天14点到18点停水检修", tmp_path, 12)
    assert rendered == Rendered("outage/notice-12")
    with wave.open(str(tmp_path / "zh" / "outage" / "notice-12.wav")) as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        assert wav.getnframes() > 8000  # more than a second of speech


def test_without_espeak_the_generic_prompt_plays_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither espeak-ng nor sox
    rendered = render_notice("3栋停水", tmp_path, 3)
    assert rendered.prompt == GENERIC and "espeak-ng" in rendered.note
    assert not (tmp_path / "zh" / "outage").exists()


async def test_a_failed_rendering_still_posts_the_notice_with_the_generic_prompt(
        world: World) -> None:
    def broken(text: str, sounds: Path, notice_id: int) -> Rendered:
        raise RuntimeError("disk full")

    notices = OutageNotices(world.notices._sm, world.clock, sounds=world.notices.sounds,
                            render=broken)
    posted = await notices.post(_req(world), BOSS, None)
    assert posted.prompt == GENERIC and not posted.spoken and posted.audio_note
    assert [h.prompt for h in await notices.heard_by(None, [world.rooms["3-1"]])] == [GENERIC]


async def test_another_servers_notice_is_heard_within_the_cache_time(world: World) -> None:
    """Every call asks; the IVR keeps the live notices for CACHE_S. This server's own
    post or end counts at once, another server's (same database) within CACHE_S."""
    here = world.notices
    other = OutageNotices(here._sm, world.clock, sounds=here.sounds, render=_silent)
    room = [world.rooms["3-1"]]
    assert await here.heard_by(None, room) == []
    posted = await other.post(_req(world), BOSS, None)
    assert await here.heard_by(None, room) == []  # still the copy read a moment ago
    await world.clock.advance(CACHE_S)
    assert len(await here.heard_by(None, room)) == 1
    await other.end(posted.id, BOSS, "", None)
    assert await other.heard_by(None, room) == []  # the server that ended it: at once
    await world.clock.advance(CACHE_S)
    assert await here.heard_by(None, room) == []
