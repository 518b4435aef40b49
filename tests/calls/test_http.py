"""/api/calls/live and /api/calls over HTTP, fed by a real AMI socket."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.ami.parser import encode_frame
from callcenter.ami.setup import setup_ami
from callcenter.app import create_app
from callcenter.appkeys import BUS, SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.calls.http import setup_calls
from callcenter.settings import settings_from_mapping
from tests.ami.fakeami import FakeAmi
from tests.ami.test_client import until
from tests.ami.test_links import NO_CHANNELS, QUEUE_EVENTS, script


def factory(cfg: LinkConfig) -> AmiLink:
    return AmiLink(cfg, rng=random.Random(3), reconnect_base_s=0.01)


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    script(server, channels=NO_CHANNELS, new_messages=0)
    yield server
    await server.close()


@pytest.fixture
async def client(ami: FakeAmi, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = settings_from_mapping({
        "data_dir": str(tmp_path),
        "asterisk": [{"name": "pbx1", "host": "127.0.0.1", "port": ami.port, "username": "cc",
                      "secret": "s3cr3t-Pa55", "community": "lakeside"}],
    })
    app: web.Application
    links = AmiLinks(settings.asterisk, publish=lambda e: app[BUS].publish(e),
                     link_factory=factory)
    app = create_app(settings, ami_links=links)
    async with TestClient(TestServer(app)) as c:
        yield c


async def token(client: TestClient, role: str) -> dict[str, str]:
    async with client.app[SESSIONMAKER]() as s:
        return {"Authorization": f"Bearer {await create_token(s, role=role)}"}


async def get_json(client: TestClient, path: str, headers: dict[str, str],
                   status: int = 200) -> Any:
    resp = await client.get(path, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_live_then_logged(client: TestClient, ami: FakeAmi) -> None:
    agent = await token(client, "agent")
    assert (await client.get("/api/calls/live")).status == 401
    assert (await client.get("/api/calls/live", headers=await token(client, "engineer"))).status == 403
    await until(lambda: bool(ami.actions("CoreShowChannels")))
    connect = next(i for i, f in enumerate(QUEUE_EVENTS) if f.event == "AgentConnect")
    for f in QUEUE_EVENTS[: connect + 1]:
        ami.push(encode_frame(f.headers))
    body: dict[str, Any] = {}

    async def live() -> bool:
        nonlocal body
        body = await get_json(client, "/api/calls/live", agent)
        return bool(body["calls"]) and body["calls"][0]["state"] == "answered"

    for _ in range(200):
        if await live():
            break
        await asyncio.sleep(0.01)
    [call] = body["calls"]
    assert call["linkedid"] == "probe-q-1" and call["uniqueid"] == "probe-q-1"
    assert call["asterisk"] == "pbx1" and call["community"] == "lakeside"
    # Agents read the live view masked (docs: who sees full numbers).
    assert call["caller_number"] == "137****0000" and call["caller_name"] == "张三 客服测试"
    assert call["queue"] == "frontdesk" and call["answered_by"] == "Agent 1001"
    assert call["started_at"]
    for f in QUEUE_EVENTS[connect + 1:]:
        ami.push(encode_frame(f.headers))
    logged: dict[str, Any] = {}
    for _ in range(400):
        logged = await get_json(client, "/api/calls?number=13700000000", agent)
        if logged["calls"] and logged["calls"][0]["outcome"]:
            break
        await asyncio.sleep(0.01)
    [row] = logged["calls"]
    assert row["outcome"] == "answered" and row["caller_number"] == "137****0000"
    assert (await get_json(client, "/api/calls/live", agent))["calls"] == []
    # ``from``/``to`` are days in the site's time zone; started_at is UTC.
    started = datetime.fromisoformat(row["started_at"])
    day = started.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert (await get_json(client, f"/api/calls?from={day}&to={day}", agent))["count"] == 1
    assert (await get_json(client, "/api/calls?from=2000-01-01&to=2000-01-02", agent))["count"] == 0


async def test_the_call_log_and_links_are_set_up_once(client: TestClient) -> None:
    with pytest.raises(RuntimeError, match="already set up"):
        setup_calls(client.app)
    with pytest.raises(RuntimeError, match="already set up"):
        setup_ami(client.app)


@pytest.mark.parametrize(("query", "field"), [
    ("from=yesterday", "from"),
    ("to=2026-13-01", "to"),
    ("from=2026-11-22&to=2026-11-21", "to"),
    ("number=abc", "number"),
    ("limit=0", "limit"),
    ("limit=x", "limit"),
])
async def test_bad_parameters_are_400_naming_the_field(
        client: TestClient, query: str, field: str) -> None:
    body = await get_json(client, f"/api/calls?{query}", await token(client, "supervisor"), 400)
    assert body["error"] == "invalid_input" and body["details"]["field"] == field
