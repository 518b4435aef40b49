"""After a restart, agents' states come back from Asterisk's queue members."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.console.keys import AGENT_HUB
from callcenter.demo import demo_settings
from callcenter.directory.models import StaffUser
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn
from tests.integration.demo_db import demo_db, heartbeat_seen


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
