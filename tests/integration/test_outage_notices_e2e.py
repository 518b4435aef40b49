"""停水停电通知 end to end: the whole server against the Asterisk stand-in, on both
transports. A notice for 3栋 is posted; a caller of 3栋 hears it right after the
greeting (the stand-in streams its prompt like any other) and pressing 1 reaches
the front-desk queue; a caller of 5栋 goes straight on to the menu; once the
notice's end time has passed (the server's clock moved) nobody hears it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from callcenter.appkeys import CALL_LOG, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.calls.models import CallLog
from callcenter.directory.models import Building, Community, PersonPhone, PersonRoom, Room, Unit
from callcenter.simulator import HangUp, Press, Wait
from ivr.outages.http import OUTAGES
from ivr.outages.services import NoticeRequest, Poster
from tests.integration.test_hotline_e2e import FixedTimeClock
from tests.integration.test_hotline_routing_e2e import (
    MONDAY_10AM,
    TRANSPORTS,
    Site,
    _call,
    make_site,
)

__all__ = ["make_site"]  # the fixture


async def _resident_of(site: Site, building: str) -> str:
    """The mobile (as dialled) of someone whose only room is in ``building``."""
    async with site.client.app[SESSIONMAKER]() as s:
        rows = (await s.execute(
            select(PersonPhone.raw, PersonRoom.person_id, Building.name)
            .join(PersonRoom, PersonRoom.person_id == PersonPhone.person_id)
            .join(Room, Room.id == PersonRoom.room_id).join(Unit, Unit.id == Room.unit_id)
            .join(Building, Building.id == Unit.building_id)
            .where(PersonPhone.kind == "mobile")
            .order_by(PersonPhone.id))).all()
    buildings: dict[int, set[str]] = {}
    for _raw, person, name in rows:
        buildings.setdefault(person, set()).add(name)
    numbers = {}
    for raw, person, _name in rows:
        numbers.setdefault(person, raw)
    for person, names in buildings.items():
        if names == {building}:
            return numbers[person].removeprefix("+86")
    raise AssertionError(f"nobody lives only in {building}栋")


async def _calls_ended(site: Site, number: str, count: int) -> list[CallLog]:
    for _ in range(400):
        rows = [r for r in await site.client.app[CALL_LOG].search(number=number)
                if r.ended_at is not None]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} calls of {number} never reached the call log")


def _notice_streams(site: Site) -> list[str]:
    return [c for c in site.agi_commands() if c.startswith("STREAM FILE outage/")]


@TRANSPORTS
async def test_callers_of_the_building_hear_the_notice_until_it_ends(
        make_site: Callable[..., Any], transport: str) -> None:
    site: Site = await make_site(MONDAY_10AM, transport)
    app = site.client.app
    async with app[SESSIONMAKER]() as s:
        community_id = (await s.scalars(select(Community.id))).one()
    notice = await app[OUTAGES].post(NoticeRequest(
        community_id=community_id, kind="water", building="3", text="3栋今天10点到14点停水检修",
        ends_at=MONDAY_10AM + timedelta(hours=4)), Poster("sup1", "supervisor"), None)
    prompt = f"outage/notice-{notice.id}"
    if shutil.which("espeak-ng") and shutil.which("sox"):
        assert notice.prompt == prompt
        assert (app[SETTINGS].data_dir / "sounds" / "zh" / f"{prompt}.wav").stat().st_size > 1000
    in_3, in_5 = await _resident_of(site, "3"), await _resident_of(site, "5")

    # 3栋: the greeting, the notice, 按1仍需人工服务; 1 reaches the front-desk queue.
    site.standin.place_call(_call(in_3, Press("1"), Wait(12), HangUp()))
    [row] = await _calls_ended(site, in_3, 1)
    assert row.ivr_path == ["停水通知", "转人工"]
    assert any(c.startswith(f"STREAM FILE {notice.prompt} ") for c in site.agi_commands())
    commands = site.agi_commands()
    welcome = next(i for i, c in enumerate(commands) if c.startswith("STREAM FILE welcome"))
    heard = next(i for i, c in enumerate(commands) if c.startswith("STREAM FILE outage/notice"))
    assert welcome < heard
    assert site.events("QueueCallerJoin")
    joined = len(site.events("QueueCallerJoin"))

    # 5栋: no notice, the menu as always.
    before = len(_notice_streams(site))
    site.standin.place_call(_call(in_5, Press("1"), Wait(4), Press("1"), Wait(12), HangUp()))
    [row] = await _calls_ended(site, in_5, 1)
    assert row.ivr_path == ["报修", "水电"]
    assert len(_notice_streams(site)) == before
    assert len(site.events("QueueCallerJoin")) == joined + 1

    # After its end time nobody hears it: 3栋's caller meets the menu.
    clock = app[CLOCK]
    assert isinstance(clock, FixedTimeClock)
    clock.when = MONDAY_10AM + timedelta(hours=4, minutes=1)
    site.standin.place_call(_call(in_3, Press("1"), Wait(4), Press("1"), Wait(12), HangUp()))
    latest = (await _calls_ended(site, in_3, 2))[0]
    assert latest.ivr_path == ["报修", "水电"]
    assert len(_notice_streams(site)) == before
