"""The whole server as ``create_app`` builds it, against the Asterisk stand-in
over real sockets: what the demo runs, proved end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.demo import demo_settings
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn, Phone, Press, Wait
from tests.health_access import HEALTH_HEADERS, with_health_token
from tests.integration.demo_db import heartbeat_seen, seed_demo_db


@pytest.fixture
async def running(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient, AsteriskStandIn]]:  # type: ignore[type-arg]
    settings = with_health_token(replace(demo_settings(tmp_path, 0),
                                         database=DatabaseSettings(url=db_url)))
    await seed_demo_db(db_url, datetime.now(UTC).date())
    phones = [Phone("13700000011", "陈师傅", answer_after=0.2, script=[Wait(0.3), Press("1")]),
              Phone("8202", "赵师傅", answer_after=0.2, script=[Wait(0.3), Press("2")])]
    standin = AsteriskStandIn.from_settings(settings, phones=phones, prompt_seconds=0.05)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    try:
        yield client, standin
    finally:
        await client.close()
        await standin.stop()


async def _wait_for(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Poll the server's own API, as a supervisor's screen would (20 s at most)."""
    for _ in range(200):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met within 20 s")


async def test_an_emergency_reported_over_the_api_pages_the_engineer_who_accepts(
    running: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]
) -> None:
    client, standin = running

    async def linked() -> bool:
        body = await (await client.get("/healthz", headers=HEALTH_HEADERS)).json()
        return bool(body["asterisk"].get("standin") == "connected")

    await _wait_for(linked)
    async with client.app[SESSIONMAKER]() as s:
        token = await create_token(s, role="supervisor")
    headers = {"Authorization": f"Bearer {token}"}
    resp = await client.post("/api/incidents", headers=headers, json={
        "community": "lakeside", "category": "plumbing", "building": "3", "unit": "2",
        "room": "1201", "caller": "13812345678", "summary": "厨房水管爆裂"})
    assert resp.status in (200, 201), await resp.text()
    incident_id = (await resp.json())["incident_id"]

    async def acknowledged() -> bool:
        timeline = await (await client.get(f"/api/incidents/{incident_id}", headers=headers)).json()
        return bool(timeline["state"] == "acknowledged")

    await _wait_for(acknowledged)
    timeline = await (await client.get(f"/api/incidents/{incident_id}", headers=headers)).json()
    phone_attempts = [a for a in timeline["attempts"] if a["channel"] == "phone"]
    assert phone_attempts and phone_attempts[-1]["outcome"] == "accepted"
    assert timeline["acked_by"] == "工程 陈师傅"
    dialled = [dict(e).get("Channel", "") for e in standin.events
               if dict(e).get("Event") == "Newchannel"]
    assert any("13700000011" in name for name in dialled), dialled
