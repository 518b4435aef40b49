"""The callback worklist through the whole server (create_app, real database, real
sockets) against the Asterisk stand-in, over AsyncAGI and FastAGI: an owner hangs up
in the menu, lands on /api/callbacks once, the agent presses 回拨, their desk phone
rings, then the owner's; once the owner answers the entry is done, by that agent."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.demo import demo_settings
from callcenter.directory.models import StaffUser
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, ScaledClock, Wait
from tests.health_access import with_health_token
from tests.integration.demo_db import heartbeat_seen, seed_demo_db
from tests.integration.test_hotline_e2e import FixedTimeClock
from tests.integration.test_hotline_routing_e2e import MONDAY_10AM, OWNER


@pytest.mark.parametrize("transport", ["asyncagi", "fastagi"])
async def test_an_ivr_hang_up_is_called_back_from_the_list_and_cleared_when_answered(
        db_url: str, tmp_path: Path, transport: str) -> None:
    base = with_health_token(replace(demo_settings(tmp_path, 0),
                                     database=DatabaseSettings(url=db_url)))
    settings = replace(base, callbacks=replace(base.callbacks, min_ivr_s=0.0))
    await seed_demo_db(db_url, MONDAY_10AM.date())
    phones = [Phone("8001", answer_after=1, script=[Wait(20), HangUp()]),  # the agent's desk
              Phone(OWNER, answer_after=1, script=[Wait(5), HangUp()])]
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport,
                                            clock=ScaledClock(10), phones=phones)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(MONDAY_10AM),
                                              transcribe=False)))
    await client.start_server()
    try:
        await heartbeat_seen(standin)
        async with client.app[SESSIONMAKER]() as s:
            agent = (await s.scalars(select(StaffUser).where(
                StaffUser.username == "agent1"))).one()
            me = {"Authorization": "Bearer " + await create_token(
                s, role="agent", name="agent1", user_id=agent.id)}
        # the owner hears the greeting and hangs up in the menu
        standin.place_call(Caller(number=OWNER, name="张伟", did="4008001234",
                                  script=[Wait(4), HangUp()]))
        listing: dict[str, object] = {}
        for _ in range(300):
            listing = await (await client.get("/api/callbacks", headers=me)).json()
            if listing["callbacks"]:
                break
            await asyncio.sleep(0.05)
        [entry] = listing["callbacks"]  # type: ignore[misc]
        assert entry["state"] == "open" and entry["missed"][0]["ended_in"] == "ivr"
        assert entry["number"] == "138****5678"  # an agent sees it masked, and calls back
        resp = await client.post(f"/api/callbacks/{entry['id']}/call", headers=me, json={})
        assert resp.status == 200, await resp.text()
        for _ in range(300):
            listing = await (await client.get("/api/callbacks?state=done", headers=me)).json()
            if listing["callbacks"]:
                break
            await asyncio.sleep(0.05)
        [done] = listing["callbacks"]  # type: ignore[misc]
        assert (done["id"], done["done_how"], done["done_label"]) == (
            entry["id"], "callback", "回拨接通")
        assert done["dialled"][-1]["result"] == "answered"
        opened = await (await client.get("/api/callbacks", headers=me)).json()
        assert opened["open_count"] == 0
    finally:
        await client.close()
        await standin.stop()
