"""The application skeleton: /healthz, token auth, JSON errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callcenter.app import create_app
from callcenter.appkeys import LINK_STATUS, SESSIONMAKER
from callcenter.auth.middleware import require_role
from callcenter.auth.tokens import create_token
from callcenter.errors import InvalidInput
from callcenter.settings import DatabaseSettings, Settings
from callcenter.web.errors import json_response, read_json_object
from tests.health_access import HEALTH_HEADERS, with_health_token


def _settings(db_url: str, tmp_path: Path) -> Settings:
    return with_health_token(Settings(data_dir=tmp_path, database=DatabaseSettings(url=db_url)))


@require_role("supervisor")
async def _supervisors_only(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if "n" not in body:
        raise InvalidInput("n is required", field="n")
    return json_response({"n": body["n"]})


@pytest.fixture
async def client(db_url: str, tmp_path: Path, aiohttp_client: object) -> TestClient:  # type: ignore[type-arg]
    app = create_app(_settings(db_url, tmp_path))
    app.router.add_post("/test/supervisors", _supervisors_only)
    return await aiohttp_client(app)  # type: ignore[operator,no-any-return]


@pytest.mark.filterwarnings("ignore:Changing state:DeprecationWarning")
async def test_healthz_reports_db_and_links(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/healthz", headers=HEALTH_HEADERS)
    assert resp.status == 200
    body = await resp.json()
    assert body["db"] == "ok" and body["status"] == "ok" and body["asterisk"] == {}
    client.app[LINK_STATUS] = lambda: {"pbx1": "disconnected"}
    body = await (await client.get("/healthz", headers=HEALTH_HEADERS)).json()
    assert body["status"] == "degraded" and body["asterisk"] == {"pbx1": "disconnected"}
    # Anyone else learns the same status and nothing more.
    anon = await client.get("/healthz")
    assert anon.status == 200 and await anon.json() == {"status": "degraded"}


@pytest.mark.filterwarnings("ignore:Changing state:DeprecationWarning")
async def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path, aiohttp_client: object) -> None:
    app = create_app(_settings(f"sqlite:///{tmp_path}/cc.sqlite3", tmp_path))
    client = await aiohttp_client(app)  # type: ignore[operator]
    from callcenter.appkeys import ENGINE
    from callcenter.db.engine import make_engine

    await app[ENGINE].dispose()
    app[ENGINE] = make_engine("postgresql://nobody@127.0.0.1:1/none")
    resp = await client.get("/healthz", headers=HEALTH_HEADERS)
    assert resp.status == 503
    assert (await resp.json())["db"] == "error"
    anon = await client.get("/healthz")
    assert anon.status == 503 and await anon.json() == {"status": "degraded"}


async def test_bearer_tokens_and_roles(client: TestClient) -> None:  # type: ignore[type-arg]
    async with client.app[SESSIONMAKER]() as s:
        sup = await create_token(s, role="supervisor", name="wall")
        agent = await create_token(s, role="agent")
    url = "/test/supervisors"
    assert (await client.post(url, json={"n": 1})).status == 401
    resp = await client.post(url, json={"n": 1}, headers={"Authorization": "Bearer nope"})
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    resp = await client.post(url, json={"n": 1}, headers={"Authorization": f"Bearer {agent}"})
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    resp = await client.post(url, json={"n": 1}, headers={"Authorization": f"Bearer {sup}"})
    assert resp.status == 200 and (await resp.json()) == {"n": 1}


async def test_bad_bodies_get_400_naming_the_field(client: TestClient) -> None:  # type: ignore[type-arg]
    async with client.app[SESSIONMAKER]() as s:
        sup = await create_token(s, role="supervisor")
    headers = {"Authorization": f"Bearer {sup}", "Content-Type": "application/json"}
    for body, field in ((b"{not json", "body"), (b"[1, 2]", "body"), (b"{}", "n")):
        resp = await client.post("/test/supervisors", data=body, headers=headers)
        assert resp.status == 400
        data = await resp.json()
        assert data["error"] == "invalid_input" and data["details"]["field"] == field
