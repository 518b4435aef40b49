"""The tickets REST API over a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.appkeys import BUS, SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.bus import DomainEvent
from callcenter.clock import ManualClock
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.models import Ticket


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    tokens: dict[str, str]
    seeded: Seeded
    events: list[DomainEvent]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(self, method: str, path: str, role: str | None = "agent",
                   **kw: Any) -> tuple[int, Any]:
        headers = self.auth(role) if role else {}
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json() if "json" in ctype else await resp.text()
            return resp.status, body


@pytest.fixture
async def api(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
              tmp_path: Path) -> AsyncIterator[Api]:
    seeded = await seed_directory(sessionmaker)
    tokens = {}
    async with sessionmaker() as s:
        for role in ("agent", "engineer", "supervisor", "night_duty"):
            tokens[role] = await create_token(s, role=role, name=f"{role}1")
    settings = settings_from_mapping({"data_dir": str(tmp_path / "data"),
                                      "database": {"url": db_url}})
    app = create_core_app(settings, clock=ManualClock())
    setup_tickets(app, ingest=False)
    events: list[DomainEvent] = []

    async def grab(app: web.Application) -> AsyncIterator[None]:
        async def on(e: DomainEvent) -> None:
            events.append(e)
        app[BUS].subscribe("*", on)
        yield

    app.cleanup_ctx.append(grab)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield Api(client, tokens, seeded, events)
    finally:
        await client.close()


def leak(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"category": "plumbing", "summary": "厨房水管漏水",
                            "caller_number": "13912345678", "source": "agent"}
    body.update(kw)
    return body


async def test_create_get_and_walk_the_lifecycle(api: Api) -> None:
    status, t = await api.call("POST", "/api/tickets",
                               json=leak(room_id=api.seeded.room_3_2_1201))
    assert status == 201, t
    assert t["number"] == "BX20261123-0001"
    assert (t["state"], t["department"], t["community"]) == ("new", "engineering", "hupan")
    assert t["location"] == "湖畔花园3栋2单元1201室"
    assert t["created_by"] == "agent1"
    assert t["events"][0]["to"] == "new" and t["recording"] is None

    status, got = await api.call("GET", f"/api/tickets/{t['id']}", role="engineer")
    assert status == 200 and got["number"] == t["number"]

    # Moving on is the work-order actions' (tests/ticketing/test_workorders_api.py);
    # the old free "to any state" route is gone.
    status, body = await api.call("POST", f"/api/tickets/{t['id']}/transitions",
                                  json={"to": "closed"})
    assert status == 404
    status, body = await api.call("POST", f"/api/tickets/{t['id']}/actions", role="supervisor",
                                  json={"action": "cancel", "note": "业主已自行处理"})
    assert status == 200, body
    assert body["state"] == "cancelled"
    assert [e["actor"] for e in body["events"]] == ["agent1", "supervisor1"]
    await api.client.app[BUS].drain()
    assert [e.name for e in api.events] == ["ticket.created", "ticket.changed"]


async def test_illegal_transition_is_a_409_naming_both_states(api: Api) -> None:
    _, t = await api.call("POST", "/api/tickets", json=leak())
    status, body = await api.call("POST", f"/api/tickets/{t['id']}/actions",
                                  json={"action": "archive"})
    assert status == 409
    assert body["error"] == "illegal_transition"
    assert body["details"]["from"] == "new" and body["details"]["action"] == "archive"
    assert body["message"] == "工单当前为「新建」，不能归档"
    _, again = await api.call("GET", f"/api/tickets/{t['id']}")
    assert again["state"] == "new"


async def test_emergency_via_api_requests_an_incident(api: Api) -> None:
    status, t = await api.call("POST", "/api/tickets", json=leak(
        category="elevator", emergency=True, summary="电梯困人", building="12",
        community="hupan"))
    assert status == 201 and t["priority"] == "emergency"
    assert t["location"] == "12栋" and t["room_id"] is None  # not in the directory: as said
    await api.client.app[BUS].drain()
    inc = [e.data for e in api.events if e.name == "incident.requested"]
    assert len(inc) == 1
    assert inc[0]["building"] == "12" and inc[0]["community"] == "hupan"
    assert inc[0]["category"] == "elevator" and inc[0]["ticket_id"] == t["id"]


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"summary": "x"}, "category"),
    ({"category": "roof", "summary": "x"}, "category"),
    ({"category": "plumbing"}, "summary"),
    ({"category": "plumbing", "summary": ""}, "summary"),
    ({"category": "plumbing", "summary": 12}, "summary"),
    ({"category": "plumbing", "summary": "x", "priority": "asap"}, "priority"),
    ({"category": "plumbing", "summary": "x", "emergency": "yes"}, "emergency"),
    ({"category": "plumbing", "summary": "x", "room_id": "12"}, "room_id"),
    ({"category": "plumbing", "summary": "x", "room_id": True}, "room_id"),
    ({"category": "plumbing", "summary": "x", "room_id": 99999}, "room_id"),
    ({"category": "plumbing", "summary": "x", "person_id": -1}, "person_id"),
    ({"category": "plumbing", "summary": "x", "community": "nowhere"}, "community"),
    ({"category": "plumbing", "summary": "x", "source": "pigeon"}, "source"),
    ({"category": "plumbing", "summary": "x", "description": ["a"]}, "description"),
]


async def test_bad_create_is_a_400_naming_the_field(api: Api) -> None:
    for body, field in BAD_CREATES:
        status, resp = await api.call("POST", "/api/tickets", json=body)
        assert status == 400, (body, resp)
        assert resp["error"] == "invalid_input" and resp["details"]["field"] == field, body
    _, page = await api.call("GET", "/api/tickets")
    assert page["total"] == 0


async def test_bad_bodies_and_transition_input(api: Api) -> None:
    async with api.client.post("/api/tickets", data=b"{not json",
                               headers={**api.auth("agent"),
                                        "Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["details"]["field"] == "body"
    status, resp = await api.call("POST", "/api/tickets", json=["a"])
    assert status == 400 and resp["details"]["field"] == "body"
    _, t = await api.call("POST", "/api/tickets", json=leak())
    status, resp = await api.call("POST", f"/api/tickets/{t['id']}/actions", json={})
    assert status == 400 and resp["details"]["field"] == "action"
    status, resp = await api.call("POST", f"/api/tickets/{t['id']}/actions",
                                  json={"action": "teleport"})
    assert status == 400 and resp["details"]["field"] == "action"
    status, resp = await api.call("POST", f"/api/tickets/{t['id']}/actions",
                                  json={"action": "cancel", "note": 5})
    assert status == 400 and resp["details"]["field"] == "note"
    for path in ("/api/tickets/999999", "/api/tickets/abc", "/api/tickets/-1"):
        status, resp = await api.call("GET", path)
        assert status == 404, path
    status, _ = await api.call("POST", "/api/tickets/424242/actions",
                               json={"action": "cancel", "note": "x"})
    assert status == 404


async def test_unauthenticated_is_401_and_wrong_role_is_403(api: Api) -> None:
    for method, path in (("GET", "/api/tickets"), ("POST", "/api/tickets"),
                         ("GET", "/api/tickets/1"), ("POST", "/api/tickets/1/actions"),
                         ("GET", "/recordings/1")):  # pages send browsers to /login
        status, body = await api.call(method, path, role=None, json={})
        assert status == 401, (method, path)
    async with api.client.get("/api/tickets", headers={"Authorization": "Bearer cct_forged"}) as r:
        assert r.status == 401
    status, body = await api.call("POST", "/api/tickets", role="engineer", json=leak())
    assert status == 403 and body["error"] == "forbidden"
    _, page = await api.call("GET", "/api/tickets", role="engineer")
    assert page["total"] == 0


async def test_list_filters_and_pagination(api: Api) -> None:
    s = api.seeded
    made = []
    for body in (leak(room_id=s.room_3_2_1201),
                 leak(category="noise", summary="楼上装修噪音", room_id=s.room_5_1_801),
                 leak(category="fire", emergency=True, summary="楼道冒烟",
                      room_id=s.room_other_1_1_101)):
        status, t = await api.call("POST", "/api/tickets", json=body)
        assert status == 201
        made.append(t["id"])
    async with api.client.app[SESSIONMAKER]() as session:
        await session.execute(update(Ticket).where(Ticket.id == made[0])
                              .values(state="dispatched"))
        await session.commit()

    async def ids(query: str) -> list[int]:
        status, page = await api.call("GET", f"/api/tickets?{query}")
        assert status == 200, page
        return [t["id"] for t in page["items"]]

    everything = await ids("")
    assert sorted(everything) == sorted(made)
    assert await ids("state=dispatched") == [made[0]]
    assert sorted(await ids("state=new,dispatched")) == sorted(made)
    assert await ids("category=noise") == [made[1]]
    assert await ids("priority=emergency") == [made[2]]
    assert await ids("community=binjiang") == [made[2]]
    assert await ids(f"community={s.other_community_id}") == [made[2]]
    assert await ids(f"room_id={s.room_5_1_801}") == [made[1]]
    assert await ids("q=装修") == [made[1]]
    assert sorted(await ids("since=2026-11-23&until=2026-11-23")) == sorted(made)
    assert await ids("since=2026-11-24") == []
    assert await ids("until=2026-11-22") == []
    status, page = await api.call("GET", "/api/tickets?limit=2&offset=2")
    assert page["total"] == 3 and len(page["items"]) == 1 and page["limit"] == 2
    for query, field in (("state=open", "state"), ("category=x", "category"),
                         ("priority=high", "priority"), ("community=nowhere", "community"),
                         ("room_id=abc", "room_id"), ("since=yesterday", "since"),
                         ("since=2026-11-24&until=2026-11-22", "until"), ("limit=0", "limit"),
                         ("limit=1000", "limit"), ("offset=-1", "offset"), ("q=" + "x" * 101, "q")):
        status, body = await api.call("GET", f"/api/tickets?{query}")
        assert status == 400 and body["details"]["field"] == field, query
