"""End to end against the project's Asterisk stand-in (callcenter.simulator)
over real sockets: AmiLinks + tracker + AsyncAGI, restarts, a wedged PBX."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.ami.asyncagi import AsyncAgiChannel
from callcenter.ami.client import AmiLink, LinkConfig, LinkState
from callcenter.ami.links import AmiLinks
from callcenter.bus import DomainEvent
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, Press, ScaledClock, Wait
from tests.ami.fakeami import FakeSettings
from tests.ami.test_client import until


def factory(cfg: LinkConfig) -> AmiLink:
    return AmiLink(cfg, rng=random.Random(3), reconnect_base_s=0.02)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    pbx = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm",
                          clock=ScaledClock(speed=50), restart_downtime=0.3)
    await pbx.start()
    yield pbx
    await pbx.stop()


class World:
    def __init__(self, standin: AsteriskStandIn, **cfg: object) -> None:
        self.events: list[DomainEvent] = []
        settings = replace(FakeSettings(port=standin.ami_port, secret="ccsecret"), **cfg)  # type: ignore[arg-type]
        self.links = AmiLinks([settings], publish=self.events.append,
                              mailboxes=["8000@default"], link_factory=factory)
        self.link = self.links.get(settings.name)

    def named(self, name: str) -> list[DomainEvent]:
        return [e for e in self.events if e.name == name]


@pytest.fixture
async def world(standin: AsteriskStandIn) -> AsyncIterator[World]:
    w = World(standin)
    yield w
    await w.links.stop()


async def test_hotline_call_runs_the_ivr_over_asyncagi(
        standin: AsteriskStandIn, world: World) -> None:
    links = world.links

    async def ivr(chan: AsyncAgiChannel) -> None:
        await chan.answer()
        digit = await chan.get_data("beep", 6000, 1)
        links.record_ivr_choice(chan.linkedid, f"main={digit}")

    links.set_agi_handler(ivr)
    links.start()
    await world.link.wait_connected(2)
    standin.place_call(Caller(number="13812345678", name="王建国",
                              script=[Wait(3), Press("1"), Wait(20), HangUp()]))
    await until(lambda: bool(world.named("call.ended")), within_s=5)
    started = world.named("call.started")[0].data
    assert started["caller_number"] == "13812345678" and started["caller_name"] == "王建国"
    assert started["did"] == "4008001234"
    ended = world.named("call.ended")[0].data
    assert ended["ivr_path"] == ["main=1"] and ended["outcome"] == "ivr_only"
    assert [e.data["step"] for e in world.named("call.ivr_choice")] == ["main=1"]


async def test_queue_call_is_rung_answered_and_ended(
        standin: AsteriskStandIn, world: World) -> None:
    standin.add_phone(Phone("1001", answer_after=1, script=[Wait(3), HangUp()]))
    standin.add_member("frontdesk", "Local/1001@agents/n", "Agent 1001")
    world.links.start()
    await world.link.wait_connected(2)
    standin.place_call(Caller(number="13700000000", name="张三", context="queue-entry",
                              script=[Wait(30), HangUp()]))
    await until(lambda: bool(world.named("call.ended")), within_s=5)
    assert [e.name for e in world.events if e.name.startswith("call.")] == [
        "call.started", "call.ringing", "call.answered", "call.ended"]
    ring = world.named("call.ringing")[0].data
    assert (ring["target"], ring["kind"], ring["queue"]) == ("1001", "agent", "frontdesk")
    assert world.named("call.answered")[0].data["answered_by"] == "Agent 1001"
    ended = world.named("call.ended")[0].data
    assert ended["outcome"] == "answered" and ended["talk_s"] > 0


async def test_restart_closes_old_calls_and_picks_up_calls_made_while_away(
        standin: AsteriskStandIn, world: World) -> None:
    world.links.start()
    await world.link.wait_connected(2)
    standin.place_call(Caller(number="13700000001", name="老王", context="queue-entry",
                              script=[Wait(600), HangUp()]))
    await until(lambda: len(world.links.live_calls()) == 1)
    old = world.links.live_calls()[0].linkedid
    restart = asyncio.ensure_future(standin.restart())
    await until(lambda: world.link.state is not LinkState.CONNECTED)
    # While the link is down a new caller arrives: only a resync can tell us.
    new_call = standin.place_call(Caller(number="13700000002", name="小李",
                                         context="queue-entry", script=[Wait(600), HangUp()]))
    await restart
    await world.link.wait_connected(3)
    await until(lambda: [c.caller_number for c in world.links.live_calls()] == ["13700000002"],
                within_s=3)
    ended = world.named("call.ended")
    assert [e.data["linkedid"] for e in ended] == [old]
    # Asterisk hangs live calls up as it shuts down (capture 11): the tracker saw it happen
    assert ended[0].data["resynced"] is False
    picked = world.links.live_calls()[0]
    assert picked.linkedid == new_call.app.linkedid
    assert picked.caller_name == "小李" and picked.queue == "frontdesk"
    assert picked.state.value == "queued"


async def test_wedged_pbx_is_noticed_within_two_ping_intervals(standin: AsteriskStandIn) -> None:
    w = World(standin, ping_interval=0.15)
    w.links.start()
    try:
        await w.link.wait_connected(2)
        await asyncio.sleep(0.2)  # a ping or two answered
        standin.freeze_actions()
        t0 = time.monotonic()
        await until(lambda: w.link.state is not LinkState.CONNECTED, within_s=2)
        assert time.monotonic() - t0 <= 2 * 0.15 + 0.1
        standin.freeze_actions(False)
        await w.link.wait_connected(3)
    finally:
        await w.links.stop()


async def test_refused_login_against_the_standin(standin: AsteriskStandIn) -> None:
    w = World(standin, secret="not-the-secret")
    w.links.start()
    try:
        await until(lambda: w.link.state is LinkState.AUTH_FAILED)
        assert "login refused" in (w.link.status.last_error or "")
    finally:
        await w.links.stop()


async def test_names_survive_three_byte_tcp_segments(
        standin: AsteriskStandIn, world: World) -> None:
    standin.segment_size = 3
    world.links.start()
    await world.link.wait_connected(3)
    standin.place_call(Caller(number="13912345678", name="欧阳娜娜", context="queue-entry",
                              script=[Wait(1), HangUp()]))
    await until(lambda: bool(world.named("call.ended")), within_s=10)
    assert world.named("call.started")[0].data["caller_name"] == "欧阳娜娜"
    assert world.named("call.ended")[0].data["outcome"] == "abandoned"
