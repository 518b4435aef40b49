"""The console's telephony ports against the Asterisk stand-in over real AMI:
QueuePause for agent states, Originate for click-to-call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.bus import DomainEvent
from callcenter.console.ami_ports import AmiAgentStatus, AmiOriginate
from callcenter.console.ports import StaffRef
from callcenter.errors import InvalidInput
from callcenter.settings import AsteriskSettings, Secret
from callcenter.simulator import AsteriskStandIn, Phone, ScaledClock
from callcenter.simulator.pbx import Queue

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
    # Not a member of the queue (Asterisk: "Interface not found"): pausing has nothing to
    # do, it neither fails (it was a 502 on /api/console/status) nor joins the queue.
    await port.set_status(StaffRef(2, "x", "x", "agent", "8099", None), "paused", "休息")
    assert "Local/8099@agents/n" not in standin.pbx.queues["frontdesk"].members
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
    # then the owner over the trunk: Asterisk names the channel after the endpoint
    assert second.startswith("PJSIP/trunk-")
    dial = next(dict(e) for e in standin.events if dict(e).get("Event") == "DialBegin")
    assert dial["DialString"] == "13812345678@trunk"


async def test_sign_out_takes_the_agent_out_of_the_queue(standin: AsteriskStandIn,
                                                        links: tuple) -> None:
    ls, _events, settings = links
    port = AmiAgentStatus(ls, [settings])
    await port.set_status(AGENT, "ready", "")
    assert "Local/8001@agents/n" in standin.pbx.queues["frontdesk"].members
    await port.sign_out(AGENT)
    assert "Local/8001@agents/n" not in standin.pbx.queues["frontdesk"].members
    await port.sign_out(AGENT)  # not in the queue any more: no error
    await port.sign_out(StaffRef(3, "y", "y", "agent", None, None))  # no extension: nothing


async def test_logout_and_disabling_take_agents_out_of_the_pbx_queue(
        standin: AsteriskStandIn, links: tuple, sessionmaker: Any, db_url: str,
        tmp_path: Path) -> None:
    """The console over real AMI: 就绪 joins the stand-in's queue; logout, or the user
    disabled, takes the agent out, so the queue stops ringing an empty desk."""
    from sqlalchemy import update

    from callcenter.console.keys import SESSION_WATCH
    from callcenter.directory.models import StaffUser
    from tests.console.helpers import login, running_app, seed_directory

    ls, _events, settings = links
    seed = await seed_directory(sessionmaker)
    members = standin.pbx.queues.setdefault("frontdesk", Queue("frontdesk")).members
    port = AmiAgentStatus(ls, [settings])
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client:
        csrf = await login(client, "xiaoli")
        assert "Local/8001@agents/n" not in members  # signed in, not ready: not ringing
        r = await client.post("/api/console/status", json={"state": "ready"},
                              headers={"X-CSRF-Token": csrf})
        assert r.status == 200 and not members["Local/8001@agents/n"].paused
        await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert "Local/8001@agents/n" not in members

        client.session.cookie_jar.clear()
        csrf = await login(client, "xiaozhao")
        for body in ({"state": "ready"}, {"state": "paused", "reason": "用餐"}):
            r = await client.post("/api/console/status", json=body,
                                  headers={"X-CSRF-Token": csrf})
            assert r.status == 200
        assert members["Local/8002@agents/n"].paused
        async with sessionmaker() as s:
            await s.execute(update(StaffUser).where(StaffUser.id == seed.staff["xiaozhao"])
                            .values(active=False))
            await s.commit()
        await client.app[SESSION_WATCH].sweep()
        assert "Local/8002@agents/n" not in members
