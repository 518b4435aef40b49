"""The callback worklist over HTTP: the list (masked for agents, in local time and
分:秒, no codes), 回拨 from the list or the console's click-to-call, 标记已处理, and
bad input answered with the field it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.appkeys import BUS, CALLBACKS
from callcenter.bus import DomainEvent
from callcenter.console.models import AuditEntry
from tests.calls.test_callbacks import ended
from tests.console.helpers import (
    OWNER_MOBILE,
    TENANT_MOBILE,
    FakeOriginate,
    login,
    running_app,
    seed_directory,
)


def answered_callback(number: str, linkedid: str) -> DomainEvent:
    now = datetime.now(UTC)
    return DomainEvent("call.answered", {
        "linkedid": linkedid, "asterisk": "pbx1", "community": "hupan",
        "caller_number": number, "started_at": now - timedelta(seconds=8), "outgoing": True,
        "answered_at": now}, at=now)


async def test_the_list_the_page_a_callback_and_marking_done(sessionmaker: Any, db_url: str,
                                                            tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    originate = FakeOriginate()
    async with running_app(db_url, tmp_path, with_callbacks=True,
                           console={"originate": originate}) as client:
        service = client.app[CALLBACKS]
        started = datetime.now(UTC) - timedelta(minutes=30)
        await service.handle(ended("q-1", "abandoned", started=started, lasted=65.4,
                                   number=OWNER_MOBILE, queue="frontdesk",
                                   ivr_path=["人工服务"]))
        await service.handle(ended("i-1", "ivr_only", started=started, lasted=20,
                                   number=TENANT_MOBILE, ivr_path=["报修", "水电"]))
        csrf = await login(client, "xiaoli")
        listing = await (await client.get("/api/callbacks", params={"state": "open"})).json()
        assert listing["open_count"] == 2 and listing["count"] == 2
        by_caller = {c["caller"]: c for c in listing["callbacks"]}
        owner = by_caller["张伟"]  # the directory's person, matched by the number
        assert owner["number"] == "138****5678" and owner["community_name"] == "湖畔花园"
        assert [m["label"] for m in owner["missed"]] == ["排队等待 1:05 后挂机"]
        assert owner["missed"][0]["ivr_path"] == ["人工服务"]
        assert by_caller["王芳"]["missed"][0]["label"] == "在语音导航中挂机"
        page = await (await client.get("/callbacks")).text()
        assert "张伟" in page and "138****5678" in page and "排队等待 1:05 后挂机" in page
        assert "报修 → 水电" in page and "待回拨" in page
        assert (started + timedelta(hours=8)).strftime("%H:%M") in page  # Shanghai, not UTC
        for raw in (OWNER_MOBILE, "+86", "q-1", "frontdesk", "hupan", "abandoned", "ivr_only"):
            assert raw not in page, raw
        # Bad bodies: the field named.
        h = {"X-CSRF-Token": csrf}
        url = f"/api/callbacks/{owner['id']}/done"
        for body, field in (({}, "outcome"), ({"outcome": "maybe"}, "outcome"),
                            ({"outcome": "reached", "note": "长" * 501}, "note"),
                            ({"outcome": "reached", "note": 5}, "note")):
            r = await client.post(url, json=body, headers=h)
            assert r.status == 400 and (await r.json())["details"]["field"] == field, body
        r = await client.get("/api/callbacks", params={"state": "later"})
        assert r.status == 400 and (await r.json())["details"]["field"] == "state"
        r = await client.get("/api/callbacks", params={"day": "2026-13-01"})
        assert r.status == 400 and (await r.json())["details"]["field"] == "day"
        assert (await client.post("/api/callbacks/999999/done", json={"outcome": "reached"},
                                  headers=h)).status == 404
        # 回拨 from the list: the agent's extension, then the owner's number.
        r = await client.post(f"/api/callbacks/{owner['id']}/call", headers=h)
        assert r.status == 200, await r.text()
        assert originate.calls == [("8001", "+86" + OWNER_MOBILE, "hupan")]
        async with sessionmaker() as s:  # calling someone is an access to their record
            audited = (await s.scalars(select(AuditEntry).where(
                AuditEntry.detail == "callback"))).all()
        assert [(a.username, a.person_id) for a in audited] == [
            ("xiaoli", seed.people["张伟"])]
        [entry] = [c for c in (await (await client.get("/api/callbacks")).json())["callbacks"]
                   if c["id"] == owner["id"]]
        assert entry["state"] == "open" and [d["label"] for d in entry["dialled"]] == ["正在呼叫"]
        await client.app[BUS].publish_and_wait(answered_callback(OWNER_MOBILE, "out-1"))
        done = (await (await client.get("/api/callbacks", params={"state": "done"})).json())
        [entry] = done["callbacks"]
        assert (entry["state_label"], entry["done_label"], entry["done_by"]) == (
            "已处理", "回拨接通", "XIAOLI")
        assert (await client.post(f"/api/callbacks/{owner['id']}/call", headers=h)).status == 409
        assert (await client.post(url, json={"outcome": "reached"}, headers=h)).status == 409
        # The console's own click-to-call of 王芳 is a callback of her entry too.
        tenant = by_caller["王芳"]
        r = await client.post("/api/console/call", json={"person_id": seed.people["王芳"],
                                                         "phone": 0}, headers=h)
        assert r.status == 200, await r.text()
        await client.app[BUS].publish_and_wait(answered_callback(TENANT_MOBILE, "out-2"))
        listing = await (await client.get("/api/callbacks")).json()
        assert listing["open_count"] == 0
        assert {c["id"]: c["done_by"] for c in listing["callbacks"]}[tenant["id"]] == "XIAOLI"
        # Night duty has no extension: told so, nothing dialled.
        await service.handle(ended("q-2", "abandoned", started=datetime.now(UTC),
                                   number=OWNER_MOBILE, queue="frontdesk"))
        fresh = (await (await client.get("/api/callbacks", params={"state": "open"})).json()
                 )["callbacks"][0]
        client.session.cookie_jar.clear()
        night = await login(client, "laowang")
        r = await client.post(f"/api/callbacks/{fresh['id']}/call",
                              headers={"X-CSRF-Token": night})
        assert r.status == 400 and (await r.json())["details"]["field"] == "extension"
        # The page's no-JS form marks it done with a note and comes back to the list.
        r = await client.post(f"/api/callbacks/{fresh['id']}/done",
                              data={"outcome": "not_needed", "note": "业主说不用回了",
                                    "csrf_token": night}, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/callbacks"
        page = await (await client.get("/callbacks", params={"state": "done"})).text()
        assert "手工处理：无需回拨" in page and "业主说不用回了" in page and "LAOWANG" in page
        assert (await (await client.get("/api/callbacks")).json())["open_count"] == 0


async def test_an_open_console_hears_when_the_worklist_changed(sessionmaker: Any, db_url: str,
                                                              tmp_path: Path) -> None:
    """The agent's WebSocket gets a ``callbacks`` frame (no number in it) when a miss
    lands, so the top bar's count updates without waiting for its poll."""
    import asyncio
    import json

    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path, with_callbacks=True) as client:
        await login(client, "xiaoli")
        async with client.ws_connect("/ws/agent") as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello"
            await client.app[CALLBACKS].handle(ended(
                "q-9", "abandoned", started=datetime.now(UTC), number=OWNER_MOBILE,
                queue="frontdesk"))
            frames = []
            for _ in range(5):
                frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                frames.append(frame)
                if frame["type"] == "callbacks":
                    break
            assert frames[-1] == {"type": "callbacks", "state": "open"}, frames
