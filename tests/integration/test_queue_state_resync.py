"""After a restart, agents' states come back from Asterisk's queue members."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.console.keys import AGENT_HUB
from callcenter.demo import DEMO_AMI_SECRET, DEMO_AMI_USER, DEMO_PASSWORD, demo_settings
from callcenter.directory.models import StaffUser
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn
from callcenter.simulator.pbx import Queue
from tests.integration.demo_db import demo_db, heartbeat_seen

LI, WANG = "Local/8001@agents/n", "Local/8002@agents/n"


async def test_agents_states_are_read_back_from_the_queue_on_connect(
        db_url: str, tmp_path: Path) -> None:
    """小李 is a paused member of frontdesk (用餐), 小王 a ready one, as Asterisk kept
    them while this server was down: the console shows 小休 and 就绪, not 未就绪."""
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url))
    async with demo_db(db_url, datetime.now(UTC).date()) as sm, sm() as s:
        ids = {u.extension: u.id for u in (await s.scalars(select(StaffUser))).all()}
    standin = AsteriskStandIn.from_settings(settings, prompt_seconds=0.05)
    standin.add_member("frontdesk", "Local/8001@agents/n", "前台 小李", paused=True)
    standin.pbx.queues["frontdesk"].members["Local/8001@agents/n"].paused_reason = "用餐"
    standin.add_member("frontdesk", "Local/8002@agents/n", "前台 小王")
    await standin.start()
    client = TestClient(TestServer(create_app(settings, transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    try:
        hub = client.app[AGENT_HUB]
        for _ in range(200):
            if ids["8001"] in hub.agent_states and ids["8002"] in hub.agent_states:
                break
            await asyncio.sleep(0.02)
        li, wang = hub.agent_states[ids["8001"]], hub.agent_states[ids["8002"]]
        assert (li.state, li.reason) == ("paused", "用餐")
        assert (wang.state, wang.reason) == ("ready", "")
        assert ids["8102"] not in hub.agent_states  # 夜班 老刘 is no member: nothing to show
        # Someone took 小王 out at the PBX while the link was down: after the reconnect
        # the console no longer shows 就绪.
        del standin.pbx.queues["frontdesk"].members["Local/8002@agents/n"]
        standin.drop_clients()
        for _ in range(300):
            if hub.agent_states[ids["8002"]].state == "not_ready":
                break
            await asyncio.sleep(0.02)
        assert hub.agent_states[ids["8002"]].state == "not_ready"
        assert hub.agent_states[ids["8001"]].state == "paused"
    finally:
        await client.close()
        await standin.stop()


async def _members_at_the_pbx(standin: AsteriskStandIn) -> dict[str, str]:
    """``QueueStatus`` as any AMI client sees it now: member interface → Paused."""
    from tests.simulator.amiclient import MiniAmi

    c = await MiniAmi.connect(standin.ami_port)
    try:
        await c.login()
        ok = await c.action("QueueStatus", ("Queue", "frontdesk"))
        assert ok["Response"] == "Success"
        found: dict[str, str] = {}
        while True:
            f = await c.wait_for(lambda f: f.event in ("QueueMember", "QueueStatusComplete"))
            if f.event == "QueueStatusComplete":
                return found
            found[f["Location"] or ""] = f["Paused"] or ""
    finally:
        await c.close()


async def test_a_pbx_restart_puts_ready_agents_back_in_the_queue_after_a_retried_resync(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12, defects 5: Asterisk restarts without keeping its dynamic members
    (no persistentmembers). The first QueueStatus after the login is refused (app_queue
    not loaded yet); the resync is retried and then has the caller who waits in the
    queue; 小李 (就绪) is a member again and ringable, 小王 (小休) is not added back."""
    from callcenter.ami.links import AmiLinks
    from callcenter.appkeys import AMI_LINKS
    from callcenter.calls.tracker import CallState
    from callcenter.simulator import Caller, Wait
    from tests.console.helpers import login

    caplog.set_level(logging.INFO, logger="callcenter.ami.resync")
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url))
    async with demo_db(db_url, datetime.now(UTC).date()) as sm, sm() as s:
        ids = {u.extension: u.id for u in (await s.scalars(select(StaffUser))).all()}
    standin = AsteriskStandIn.from_settings(settings, prompt_seconds=0.05, persistent_members=False,
                                            users={DEMO_AMI_USER: DEMO_AMI_SECRET, "cc": "ccsecret"},
                                            restart_shutdown_s=0.3, restart_downtime=0.2,
                                            restart_boot_s=0.3)
    standin.pbx.queues.setdefault("frontdesk", Queue("frontdesk"))
    await standin.start()
    client = TestClient(TestServer(create_app(settings, transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    try:
        hub = client.app[AGENT_HUB]
        for name, states in (("agent1", ["ready"]), ("agent2", ["ready", "paused"])):
            csrf = await login(client, name, DEMO_PASSWORD)
            for state in states:
                r = await client.post("/api/console/status",
                                      json={"state": state, "reason": "用餐"} if state == "paused"
                                      else {"state": state}, headers={"X-CSRF-Token": csrf})
                assert r.status == 200, await r.text()
            client.session.cookie_jar.clear()
        assert await _members_at_the_pbx(standin) == {LI: "0", WANG: "1"}
        links: AmiLinks = client.app[AMI_LINKS]
        link = links.get(settings.asterisk[0].name)
        generation = link.pbx_generation

        await standin.restart(then=[Caller(number="13812345678", name="王建国",
                                           context="queue-entry", script=[Wait(120)])])
        assert LI not in standin.pbx.queues["frontdesk"].members  # the restart lost them
        for _ in range(300):
            if LI in standin.pbx.queues["frontdesk"].members and any(
                    c.state is CallState.QUEUED for c in links.live_calls()):
                break
            await asyncio.sleep(0.02)
        assert link.pbx_generation == generation + 1
        assert await _members_at_the_pbx(standin) == {LI: "0"}  # 小王 on 小休: not added
        assert hub.agent_states[ids["8001"]].state == "ready"
        assert hub.agent_states[ids["8002"]].state == "not_ready"
        queued = [c for c in links.live_calls() if c.state is CallState.QUEUED]
        assert [(c.caller_number, c.queue) for c in queued] == [("13812345678", "frontdesk")]
        messages = [r.getMessage() for r in caplog.records]
        assert any("QueueStatus unavailable: Invalid/unknown command" in m for m in messages)
        assert any("resync complete after" in m for m in messages)
    finally:
        await client.close()
        await standin.stop()
