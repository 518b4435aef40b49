"""An agent is 未就绪 until they press 就绪; when their session ends (logout, expiry,
the user disabled) they leave the queue and their WebSockets close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import update

from callcenter.appkeys import BUS
from callcenter.bus import DomainEvent
from callcenter.clock import ManualClock
from callcenter.console.keys import AGENT_HUB, SESSION_WATCH
from callcenter.console.ports import RecordingAgentStatus
from callcenter.directory.models import StaffUser
from callcenter.screenpop.hub import SESSION_ENDED
from tests.console.helpers import OWNER_MOBILE, login, running_app, seed_directory


async def _hello(ws: Any) -> dict[str, Any]:
    for _ in range(10):
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == "hello":
            return msg
    raise AssertionError("no hello")


async def _closed(ws: Any) -> aiohttp.WSMessage:
    """The next non-data message: the server's close, with its code."""
    for _ in range(50):
        msg = await ws.receive(timeout=5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING):
            return msg
        assert msg.type == aiohttp.WSMsgType.TEXT
        assert '"pop"' not in msg.data, f"a pop reached a socket whose session ended: {msg.data}"
    raise AssertionError("socket not closed")


async def _ring_xiaoli(client: Any, call_id: str) -> None:
    await client.app[BUS].publish_and_wait(DomainEvent("call.ringing", {
        "call_id": call_id, "caller": OWNER_MOBILE, "extension": "8001"}))


async def test_a_new_agent_is_not_ready_until_pressing_ready(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client:
        csrf = await login(client, "xiaoli")
        page = await (await client.get("/agent")).text()
        assert 'data-state="not_ready"' in page and ">未就绪<" in page
        ws = await client.ws_connect("/ws/agent")
        assert (await _hello(ws))["status"]["state"] == "not_ready"
        hub = client.app[AGENT_HUB]
        assert hub.agent_states[seed.staff["xiaoli"]].state == "not_ready"
        assert port.calls == []  # signing in alone does not touch the queue
        r = await client.post("/api/console/status", json={"state": "ready"},
                              headers={"X-CSRF-Token": csrf})
        assert r.status == 200 and (await r.json())["label"] == "就绪"
        assert port.calls == [("xiaoli", "ready", "")]
        await ws.close()


async def test_logout_leaves_the_queue_and_closes_the_sockets_before_any_pop(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client:
        csrf = await login(client, "xiaoli")
        await client.post("/api/console/status", json={"state": "ready"},
                          headers={"X-CSRF-Token": csrf})
        tab1 = await client.ws_connect("/ws/agent")
        tab2 = await client.ws_connect("/ws/agent")
        for ws in (tab1, tab2):
            await _hello(ws)
        r = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert r.status == 302
        assert port.calls[-1] == ("xiaoli", "signed_out", "")
        hub = client.app[AGENT_HUB]
        assert seed.staff["xiaoli"] not in hub.agent_states
        assert not hub.online(seed.staff["xiaoli"])
        await _ring_xiaoli(client, "after-logout")
        for ws in (tab1, tab2):
            assert (await _closed(ws)).data == SESSION_ENDED


async def test_logout_of_one_device_keeps_the_agent_in_the_queue(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client, \
            aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                  cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        csrf = await login(client, "xiaoli")
        await login(phone, "xiaoli")  # type: ignore[arg-type]
        await client.post("/api/console/status", json={"state": "ready"},
                          headers={"X-CSRF-Token": csrf})
        desk = await client.ws_connect("/ws/agent")
        mobile = await phone.ws_connect("/ws/agent")
        for ws in (desk, mobile):
            await _hello(ws)
        await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert (await _closed(desk)).data == SESSION_ENDED
        assert ("xiaoli", "signed_out", "") not in port.calls
        await _ring_xiaoli(client, "still-here")
        msg = await mobile.receive_json(timeout=5)
        while msg["type"] != "pop":
            msg = await mobile.receive_json(timeout=5)
        assert msg["call"]["call_id"] == "still-here"
        await mobile.close()


async def test_an_expired_session_gets_no_pop_and_its_agent_leaves_the_queue(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    clock = ManualClock()
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, clock=clock, max_age_s=600,
                           console={"agent_status": port, "session_check_s": 30}) as client:
        csrf = await login(client, "xiaoli")
        await client.post("/api/console/status", json={"state": "ready"},
                          headers={"X-CSRF-Token": csrf})
        ws = await client.ws_connect("/ws/agent")
        await _hello(ws)
        await clock.advance(601)  # past the session's end, between two checks
        await _ring_xiaoli(client, "after-expiry")
        assert (await _closed(ws)).data == SESSION_ENDED
        # The watch, on the same clock, takes the agent out of the queue.
        for _ in range(100):
            if ("xiaoli", "signed_out", "") in port.calls:
                break
            await clock.advance(30)
            await asyncio.sleep(0.02)
        assert port.calls[-1] == ("xiaoli", "signed_out", "")
        assert seed.staff["xiaoli"] not in client.app[AGENT_HUB].agent_states


async def test_disabling_a_user_closes_their_socket_and_leaves_the_queue(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    port = RecordingAgentStatus()
    async with running_app(db_url, tmp_path, console={"agent_status": port}) as client:
        csrf = await login(client, "xiaoli")
        await client.post("/api/console/status", json={"state": "paused", "reason": "用餐"},
                          headers={"X-CSRF-Token": csrf})
        ws = await client.ws_connect("/ws/agent")
        await _hello(ws)
        # As `callcenter user disable xiaoli` does, from another process.
        async with sessionmaker() as s:
            await s.execute(update(StaffUser).where(StaffUser.id == seed.staff["xiaoli"])
                            .values(active=False))
            await s.commit()
        await client.app[SESSION_WATCH].sweep()
        assert (await _closed(ws)).data == SESSION_ENDED
        assert port.calls[-1] == ("xiaoli", "signed_out", "")
        assert not client.app[AGENT_HUB].online(seed.staff["xiaoli"])
