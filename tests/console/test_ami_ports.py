"""The console's telephony ports against the Asterisk stand-in over real AMI:
QueuePause for agent states, Originate for click-to-call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.bus import DomainEvent
from callcenter.console.ami_ports import AmiAgentStatus, AmiOriginate
from callcenter.console.ports import StaffRef
from callcenter.errors import DomainError, InvalidInput
from callcenter.settings import AsteriskSettings, Secret
from callcenter.simulator import AsteriskStandIn, Phone, ScaledClock

AGENT = StaffRef(1, "xiaoli", "小李", "agent", "8001", None)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    pbx = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm",
                          clock=ScaledClock(speed=50))
    await pbx.start()
    yield pbx
    await pbx.stop()


@pytest.fixture
async def links(standin: AsteriskStandIn) -> AsyncIterator[tuple[AmiLinks, list[DomainEvent],
                                                                 AsteriskSettings]]:
    settings = AsteriskSettings(name="pbx1", host="127.0.0.1", port=standin.ami_port,
                                username="cc", secret=Secret("ccsecret"), community="hupan",
                                action_timeout=3.0)
    events: list[DomainEvent] = []

    def factory(cfg: LinkConfig) -> AmiLink:
        return AmiLink(cfg, rng=random.Random(1), reconnect_base_s=0.02)

    ls = AmiLinks([settings], publish=events.append, mailboxes=[], link_factory=factory)
    ls.start()
    await ls.get("pbx1").wait_connected(3)
    yield ls, events, settings
    await ls.stop()


async def test_pause_and_ready_drive_queuepause(standin: AsteriskStandIn, links: tuple) -> None:
    ls, _events, settings = links
    standin.add_member("frontdesk", "Local/8001@agents/n", "Agent 8001")
    port = AmiAgentStatus(ls, [settings])
    await port.set_status(AGENT, "paused", "用餐")
    member = standin.pbx.queues["frontdesk"].members["Local/8001@agents/n"]
    assert member.paused and member.paused_reason == "用餐"
    await port.set_status(AGENT, "wrap_up", "话后处理")
    assert member.paused and member.paused_reason == "话后处理"
    await port.set_status(AGENT, "ready", "")
    assert not member.paused
    await port.set_status(AGENT, "ready", "")  # already a member: no error
    assert not standin.pbx.queues["frontdesk"].members["Local/8001@agents/n"].paused
    # Not a member of the queue: Asterisk's error comes back as a domain error.
    with pytest.raises(DomainError):
        await port.set_status(StaffRef(2, "x", "x", "agent", "8099", None), "paused", "休息")
    # Saying "ready" joins the queue first.
    await port.set_status(StaffRef(2, "x", "小王", "agent", "8099", None), "ready", "")
    joined = standin.pbx.queues["frontdesk"].members["Local/8099@agents/n"]
    assert not joined.paused
    with pytest.raises(InvalidInput):
        await port.set_status(StaffRef(3, "y", "y", "agent", None, None), "paused", "休息")


async def test_click_to_call_rings_the_agent_first(standin: AsteriskStandIn,
                                                   links: tuple) -> None:
    ls, _events, settings = links
    standin.add_phone(Phone("8001", answer_after=0.5))
    standin.add_phone(Phone("13812345678", answer_after=0.5))
    port = AmiOriginate(ls, [settings], dial_timeout_s=5)
    action_id = await port.click_to_call(AGENT, "+8613812345678", community="hupan")
    assert action_id  # the Originate succeeded: the agent's phone answered

    def channels() -> list[str]:
        return [dict(e).get("Channel", "") for e in standin.events
                if dict(e).get("Event") == "Newchannel"]

    for _ in range(200):  # the Dial to the owner follows the answer
        if len(channels()) >= 2:
            break
        await asyncio.sleep(0.01)
    first, second = channels()[:2]
    assert first.startswith("PJSIP/8001-")  # the agent's desk phone first
    assert second.startswith("PJSIP/13812345678@trunk")  # then the owner over the trunk
    dial = next(dict(e) for e in standin.events if dict(e).get("Event") == "DialBegin")
    assert dial["DialString"] == "13812345678@trunk"
