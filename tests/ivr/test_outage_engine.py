"""停水停电通知 in the engine: a caller a notice covers hears it right after the
greeting; 1 reaches a person, anything else the menu; a failure reading the
notices never reaches the caller."""

from __future__ import annotations

import logging

import pytest

from ivr.engine import Announcement
from ivr.outages.prompts import GENERIC, PRESS_1
from tests.ivr.scripted import ScriptedChannel
from tests.ivr.test_engine import NIGHT, OFFICE, OWNER, Services, _engine

WATER = Announcement("outage/notice-7", "停水通知")


async def test_the_notice_plays_after_the_greeting_and_1_reaches_the_front_desk() -> None:
    s = Services(caller=OWNER, notices=[WATER])
    ch = ScriptedChannel(["", "", "1"])  # the notice, 按1仍需人工服务, then 1
    await _engine(s, OFFICE).run(ch, call_id="c1")
    played = ch.played()
    assert played[:3] == ["welcome-owner", "outage/notice-7", PRESS_1]
    assert "main-office" not in played
    assert s.choices == ["停水通知", "转人工"]
    assert s.calls == [("queue", "frontdesk")]


async def test_at_night_1_after_the_notice_rings_the_duty_person() -> None:
    s = Services(caller=OWNER, notices=[WATER])
    await _engine(s, NIGHT).run(ScriptedChannel(["1"]), call_id="c1")  # 1 during the notice
    assert s.choices == ["停水通知", "转人工"]
    assert s.calls == [("route_oncall", "night_duty")]


async def test_no_key_after_the_notice_goes_on_to_the_menu() -> None:
    s = Services(caller=OWNER, notices=[WATER])
    ch = ScriptedChannel(["", "", "", "3"])  # notice, 按1, the wait, then 物业费 in the menu
    await _engine(s, OFFICE).run(ch, call_id="c1")
    played = ch.played()
    assert played.index(PRESS_1) < played.index("main-office")
    assert s.choices[:2] == ["停水通知", "物业费"]
    assert ("fee_balance", "1") in s.calls


async def test_a_menu_key_pressed_after_the_notice_chooses_in_the_menu() -> None:
    s = Services(caller=OWNER, notices=[WATER])
    ch = ScriptedChannel(["", "2"])  # 投诉 during 按1仍需人工服务
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.choices == ["停水通知", "投诉"] and s.calls == [("queue", "frontdesk")]
    assert "main-office" not in ch.played()


async def test_no_notice_no_extra_prompt() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1", "1"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert PRESS_1 not in ch.played() and s.choices == ["报修", "水电"]


async def test_notices_that_cannot_be_read_leave_the_call_on_its_way(
        caplog: pytest.LogCaptureFixture) -> None:
    s = Services(caller=OWNER, notices=[WATER], broken={"outage_notices"})
    ch = ScriptedChannel(["1", "1"])
    with caplog.at_level(logging.ERROR):
        await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.choices == ["报修", "水电"] and s.calls == [("queue", "frontdesk")]
    assert "sorry-system" not in ch.played()
    assert "outage notices could not be read" in caplog.text


async def test_the_generic_prompt_plays_though_the_menus_do_not_declare_it() -> None:
    s = Services(caller=OWNER, notices=[Announcement(GENERIC, "停电通知")])
    ch = ScriptedChannel(["", "", "1"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert GENERIC in ch.played() and s.choices == ["停电通知", "转人工"]
