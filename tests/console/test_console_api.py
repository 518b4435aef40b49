"""Search (audited, masked per role), the audit page and its CSV, click-to-call,
recording an unknown caller, agent status through the port."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.appkeys import BUS
from callcenter.bus import DomainEvent
from callcenter.console.keys import AGENT_HUB
from callcenter.console.models import AuditEntry
from callcenter.console.ports import RecordingAgentStatus
from callcenter.directory.services import lookup_by_number
from tests.console.helpers import (
    OWNER_MOBILE,
    FakeOriginate,
    login,
    running_app,
    seed_directory,
)


async def test_search_is_audited_and_masked_for_agents(sessionmaker: Any, db_url: str,
                                                       tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        r = await client.get("/api/console/search", params={"q": "张伟"})
        assert r.status == 200
        results = (await r.json())["results"]
        assert [p["name"] for p in results] == ["张伟"]
        assert results[0]["phones"] == ["138****5678"]
        assert {x["label"] for x in results[0]["rooms"]} == {"湖畔花园3栋1单元1201室",
                                                             "湖畔花园5栋2单元0301室"}
        # By room, and a search that finds nobody: both audited.
        r = await client.get("/api/console/search", params={"q": "3-1-1201"})
        assert {p["name"] for p in (await r.json())["results"]} == {"张伟", "李娜"}
        r = await client.get("/api/console/search", params={"q": "不存在的人"})
        assert (await r.json())["results"] == []
        page = await client.get("/search", params={"q": OWNER_MOBILE})
        text = await page.text()
        table = text.split('<table class="results">')[1]
        # What the agent typed is echoed; the results show the number masked.
        assert "张伟" in table and "138****5678" in table and OWNER_MOBILE not in table
        bad = await client.get("/api/console/search")
        assert bad.status == 400 and (await bad.json())["details"]["field"] == "q"
    async with sessionmaker() as s:
        rows = (await s.scalars(select(AuditEntry).where(AuditEntry.reason == "search")
                                .order_by(AuditEntry.id))).all()
    assert [(r.username, r.person_id, r.detail) for r in rows] == [
        ("xiaoli", seed.people["张伟"], "q=张伟"),
        ("xiaoli", seed.people["张伟"], "q=3-1-1201"),
        ("xiaoli", seed.people["李娜"], "q=3-1-1201"),
        ("xiaoli", None, "q=不存在的人"),
        ("xiaoli", seed.people["张伟"], f"q={OWNER_MOBILE}"),
    ]
    assert all(r.source == "127.0.0.1" for r in rows)


async def test_supervisor_sees_full_numbers_in_search(sessionmaker: Any, db_url: str,
                                                      tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "boss")
        r = await client.get("/api/console/search", params={"q": "王芳"})
        assert (await r.json())["results"][0]["phones"] == ["13900001111"]


async def test_admin_reads_and_exports_the_audit_log(sessionmaker: Any, db_url: str,
                                                     tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        await client.get("/api/console/search", params={"q": "=cmd|' /C calc'!A0"})
        await client.get("/api/console/search", params={"q": "王芳"})
        await client.post("/logout", data={"csrf_token": await _csrf(client)})
        await login(client, "root")
        page = await client.get("/admin/audit", params={"username": "xiaoli", "reason": "search"})
        text = await page.text()
        assert page.status == 200 and "访问审计" in text and "q=王芳" in text
        only = await client.get("/admin/audit", params={"person_id": str(seed.people["王芳"])})
        assert "q=王芳" in await only.text()
        bad = await client.get("/admin/audit", params={"since": "yesterday"})
        assert bad.status == 400 and (await bad.json())["details"]["field"] == "since"
        export = await client.get("/admin/audit.csv", params={"username": "xiaoli"})
        assert export.status == 200 and export.content_type == "text/csv"
        body = (await export.read()).decode("utf-8")
        assert body.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
        assert rows[0][:6] == ["id", "at", "user_id", "username", "person_id", "reason"]
        details = {r[7] for r in rows[1:]}
        assert "q=王芳" in details
        # A query that looks like a spreadsheet formula is neutralised.
        assert not any(d.startswith("=") for d in details)


async def _csrf(client: Any) -> str:
    import re

    text = await (await client.get("/agent")).text()
    m = re.search(r'<meta name="csrf-token" content="([^"]*)"', text)
    assert m
    return m.group(1)


async def test_click_to_call_rings_the_agent_then_the_owner(sessionmaker: Any, db_url: str,
                                                            tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    originate = FakeOriginate()
    async with running_app(db_url, tmp_path, console={"originate": originate}) as client:
        csrf = await login(client, "xiaoli")
        h = {"X-CSRF-Token": csrf}
        r = await client.post("/api/console/call", json={"person_id": seed.people["张伟"],
                                                         "phone": 0}, headers=h)
        assert r.status == 200 and "8001" in (await r.json())["message"]
        assert originate.calls == [("8001", "+8613812345678", None)]
        # Call back the caller of a live call.
        await client.app[BUS].publish_and_wait(DomainEvent("call.ringing", {
            "linkedid": "cb1", "caller_number": TENANT, "community": "hupan", "target": "8001"}))
        r = await client.post("/api/console/call", json={"call_id": "cb1"}, headers=h)
        assert r.status == 200
        assert originate.calls[-1] == ("8001", "+8613900001111", "hupan")
        for body, field in (({"person_id": seed.people["张伟"], "phone": 5}, "phone"),
                            ({"person_id": "x"}, "person_id"), ({}, "person_id")):
            r = await client.post("/api/console/call", json=body, headers=h)
            assert r.status == 400 and (await r.json())["details"]["field"] == field
        r = await client.post("/api/console/call", json={"call_id": "nope"}, headers=h)
        assert r.status == 404
        assert len(originate.calls) == 2


TENANT = "13900001111"


async def test_click_to_call_without_telephony_is_503(sessionmaker: Any, db_url: str,
                                                      tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        csrf = await login(client, "xiaoli")
        r = await client.post("/api/console/call", json={"person_id": seed.people["张伟"]},
                              headers={"X-CSRF-Token": csrf})
        assert r.status == 503 and "电话系统未连接" in (await r.json())["message"]


async def test_unknown_caller_is_recorded_and_the_pop_refreshed(sessionmaker: Any, db_url: str,
                                                                tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        csrf = await login(client, "xiaoli")
        ws = await client.ws_connect("/ws/agent")
        await client.app[BUS].publish_and_wait(DomainEvent("call.ringing", {
            "linkedid": "u1", "caller_number": "13500009999", "community": "hupan",
            "target": "8001"}))
        msg = await _pop(ws)
        assert msg["pop"]["title"] == "陌生来电"
        h = {"X-CSRF-Token": csrf}
        r = await client.post("/api/console/unknown-caller",
                              json={"call_id": "u1", "name": "赵六", "room": "9-9-999"}, headers=h)
        assert r.status == 400 and (await r.json())["details"]["field"] == "room"
        r = await client.post("/api/console/unknown-caller",
                              json={"call_id": "u1", "name": " "}, headers=h)
        assert r.status == 400 and (await r.json())["details"]["field"] == "name"
        r = await client.post("/api/console/unknown-caller",
                              json={"call_id": "u1", "name": "赵六", "room": "3栋1单元1201",
                                    "role": "tenant", "note": "新租户"}, headers=h)
        assert r.status == 201
        msg = await _pop(ws)
        assert msg["pop"]["known"] and msg["pop"]["title"] == "赵六"
        assert msg["pop"]["rooms"][0]["room_id"] == seed.rooms["3-1-1201"]
        await ws.close()
    async with sessionmaker() as s:
        people = await lookup_by_number(s, "13500009999")
        assert [(p.name, p.units[0].role) for p in people] == [("赵六", "tenant")]


async def _pop(ws: Any) -> dict[str, Any]:
    while True:
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == "pop":
            return msg


async def test_agent_status_goes_through_the_port(sessionmaker: Any, db_url: str,
                                                  tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client:
        csrf = await login(client, "xiaoli")
        h = {"X-CSRF-Token": csrf}
        for body in ({"state": "paused", "reason": "培训"}, {"state": "wrap_up"},
                     {"state": "ready", "reason": "ignored"}):
            r = await client.post("/api/console/status", json=body, headers=h)
            assert r.status == 200
        r = await client.post("/api/console/status", json={"state": "asleep"}, headers=h)
        assert r.status == 400 and (await r.json())["details"]["field"] == "state"
        assert port.calls == [("xiaoli", "paused", "培训"), ("xiaoli", "wrap_up", "话后处理"),
                              ("xiaoli", "ready", "")]
        hub = client.app[AGENT_HUB]
        assert hub.agent_states[next(iter(hub.agent_states))].state == "ready"
        page = await client.get("/agent")
        assert "就绪" in await page.text()


async def test_ticket_from_the_console_is_audited_and_shows_on_the_next_pop(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path, with_tickets=True) as client:
        csrf = await login(client, "xiaoli")
        # Without the CSRF header the tickets API refuses a session-authenticated POST.
        body = {"source": "phone", "category": "plumbing", "summary": "厨房漏水",
                "room_id": seed.rooms["3-1-1201"], "person_id": seed.people["张伟"],
                "caller_number": OWNER_MOBILE}
        r = await client.post("/api/tickets", json=body)
        assert r.status == 403
        r = await client.post("/api/tickets", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status == 201
        number = (await r.json())["number"]
        await client.app[BUS].drain()
        hub = client.app[AGENT_HUB]
        await hub.settle()

        async with sessionmaker() as s:
            rows = (await s.scalars(select(AuditEntry).where(AuditEntry.reason == "ticket"))).all()
        assert [(r.username, r.person_id, r.source) for r in rows] == [
            ("xiaoli", seed.people["张伟"], f"ticket:{number}")]
        assert rows[0].user_id == seed.staff["xiaoli"]
        ws = await client.ws_connect("/ws/agent")
        await client.app[BUS].publish_and_wait(DomainEvent("call.ringing", {
            "linkedid": "t1", "caller_number": OWNER_MOBILE, "target": "8001"}))
        msg = await _pop(ws)
        room = next(r for r in msg["pop"]["rooms"] if r["room_id"] == seed.rooms["3-1-1201"])
        assert [(t["title"], t["state_label"], t["reference"]) for t in room["open_tickets"]] == [
            ("厨房漏水", "新建", number)]
        await ws.close()
