"""The hub over real WebSockets: fan-out to tabs, re-delivery on reconnect, live
updates, supervisors' wall, night duty's summary, audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from callcenter.appkeys import BUS
from callcenter.bus import DomainEvent
from callcenter.clock import ManualClock
from callcenter.console.keys import AGENT_HUB
from callcenter.console.models import AuditEntry
from callcenter.directory.models import FeeAccount, StaffUser
from callcenter.screenpop.sources import TicketSummary
from tests.console.helpers import OWNER_MOBILE, login, running_app, seed_directory


@asynccontextmanager
async def browser(client: TestClient[Any, Any]) -> AsyncIterator[aiohttp.ClientSession]:
    """A second browser (its own cookie jar) on the same server."""
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def frame(ws: Any, kind: str) -> dict[str, Any]:
    """The next frame of this kind (hello/wall frames in between are skipped)."""
    for _ in range(20):
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} frame")


async def nothing_pending(ws: Any) -> None:
    """Everything pushed before now has been read: a ping's pong comes next."""
    await ws.send_json({"type": "ping", "t": "probe"})
    while True:
        msg = await ws.receive_json(timeout=5)
        if msg["type"] == "pong":
            return
        assert msg["type"] in ("hello", "wall", "status"), f"unexpected frame {msg}"


async def agent_socket(client: TestClient[Any, Any], username: str) -> Any:
    """Sign in and open the console's WebSocket, past its hello."""
    await login(client, username)
    ws = await client.ws_connect("/ws/agent")
    await frame(ws, "hello")
    return ws


async def publish(client: TestClient[Any, Any], name: str, **data: Any) -> None:
    await client.app[BUS].publish_and_wait(DomainEvent(f"call.{name}", data))


async def test_pop_reaches_every_tab_of_the_agent_and_only_that_agent(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as a, browser(a) as zhao:
        await login(a, "xiaoli")
        tab1 = await a.ws_connect("/ws/agent")
        tab2 = await a.ws_connect("/ws/agent")
        await login(zhao, "xiaozhao")
        zhao_ws = await zhao.ws_connect("/ws/agent")
        for ws in (tab1, tab2, zhao_ws):
            assert (await frame(ws, "hello"))["user"]["role"] == "agent"

        await publish(a, "started", call_id="c1", caller=OWNER_MOBILE, community="hupan")
        await publish(a, "ivr_choice", call_id="c1", label="报修")
        await publish(a, "ringing", call_id="c1", queue="frontdesk",
                      interface="Local/8001@from-queue/n")
        for ws in (tab1, tab2):
            msg = await frame(ws, "pop")
            assert msg["call"]["state"] == "ringing" and msg["call"]["call_id"] == "c1"
            pop = msg["pop"]
            assert pop["title"] == "张伟" and pop["caller"]["display"] == OWNER_MOBILE
            assert pop["ivr_path"] == ["报修"]
            assert pop["rooms"][0]["arrears"] == "1200.50"
        await nothing_pending(zhao_ws)

        await publish(a, "answered", call_id="c1", interface="PJSIP/8001")
        for ws in (tab1, tab2):
            msg = await frame(ws, "pop")
            assert msg["call"]["state"] == "answered" and msg["call"]["answered_by_me"]
        await publish(a, "ended", call_id="c1")
        for ws in (tab1, tab2):
            assert (await frame(ws, "pop"))["call"]["state"] == "ended"

        await a.app[AGENT_HUB].settle()
        async with sessionmaker() as s:
            rows = (await s.scalars(select(AuditEntry).where(AuditEntry.reason == "pop"))).all()
        assert {(r.username, r.person_id) for r in rows} == {
            ("xiaoli", seed.people["张伟"]), ("xiaoli", seed.people["李娜"]),
            ("xiaoli", seed.people["王芳"])}
        assert all(r.detail == "call c1" for r in rows)
        assert all(r.source == "ws:127.0.0.1" for r in rows)


async def test_reconnecting_browser_gets_calls_still_ringing_it(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        ws = await client.ws_connect("/ws/agent")
        await frame(ws, "hello")
        await ws.close()
        # Rings while the browser is away (e.g. Wi-Fi dropped).
        await publish(client, "ringing", call_id="c2", caller=OWNER_MOBILE, extension="8001")
        await publish(client, "ringing", call_id="c3", caller="13500009999", extension="8002")
        ws = await client.ws_connect("/ws/agent")
        await frame(ws, "hello")
        msg = await frame(ws, "pop")
        assert msg["call"]["call_id"] == "c2" and msg["pop"]["title"] == "张伟"
        await nothing_pending(ws)  # c3 rings someone else
        await publish(client, "ended", call_id="c2")
        assert (await frame(ws, "pop"))["call"]["state"] == "ended"
        await ws.close()
        ws = await client.ws_connect("/ws/agent")
        await frame(ws, "hello")
        await nothing_pending(ws)  # an ended call is not re-delivered
        await ws.close()


async def test_ring_all_then_answered_by_colleague_updates_the_other_card(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        ws = await client.ws_connect("/ws/agent")
        await publish(client, "ringing", call_id="c4", caller="13500009999", interface="PJSIP/8001")
        await publish(client, "ringing", call_id="c4", interface="PJSIP/8002")
        pop = await frame(ws, "pop")
        assert pop["pop"]["title"] == "陌生来电" and not pop["pop"]["known"]
        await publish(client, "answered", call_id="c4", interface="PJSIP/8002")
        msg = await frame(ws, "pop")
        assert msg["call"]["state"] == "answered"
        assert not msg["call"]["answered_by_me"] and msg["call"]["answered_by"] == "XIAOZHAO"
        await publish(client, "transferred", call_id="c4", to="PJSIP/8001")
        msg = await frame(ws, "pop")
        assert msg["call"]["state"] == "transferred" and msg["call"]["answered_by_me"]
        await ws.close()


async def test_supervisor_wall_follows_calls_and_agent_states(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as boss, browser(boss) as agent:
        await login(boss, "boss")
        wall_ws = await boss.ws_connect("/ws/agent")
        first = await frame(wall_ws, "wall")
        assert first["wall"]["waiting"] == [] and first["wall"]["today"]["offered"] == 0
        csrf = await login(agent, "xiaoli")
        agent_ws = await agent.ws_connect("/ws/agent")
        await frame(agent_ws, "hello")
        r = await agent.post("/api/console/status", json={"state": "paused", "reason": "用餐"},
                             headers={"X-CSRF-Token": csrf})
        assert r.status == 200
        assert (await frame(agent_ws, "status"))["status"]["state"] == "paused"

        await publish(boss, "ringing", call_id="c5", caller=OWNER_MOBILE, queue="frontdesk",
                      interface="PJSIP/8002")
        await boss.app[AGENT_HUB].settle()
        wall = None
        for _ in range(10):
            wall = (await frame(wall_ws, "wall"))["wall"]
            if wall["waiting"]:
                break
        assert wall is not None
        assert [(c["call_id"], c["title"], c["caller"]) for c in wall["waiting"]] == [
            ("c5", "张伟", OWNER_MOBILE)]
        states = {a["name"]: a for a in wall["agents"]}
        assert states["XIAOLI"]["state"] == "paused" and states["XIAOLI"]["reason"] == "用餐"
        assert states["XIAOZHAO"]["state"] == "offline"
        await publish(boss, "answered", call_id="c5", interface="PJSIP/8002")
        await publish(boss, "started", call_id="c6", caller="13500009999")
        await publish(boss, "abandoned", call_id="c6")
        await boss.app[AGENT_HUB].settle()
        while True:
            wall = (await frame(wall_ws, "wall"))["wall"]
            if wall["today"]["abandoned"]:
                break
        assert [(c["call_id"], c["agent"]) for c in wall["talking"]] == [("c5", "XIAOZHAO")]
        assert wall["waiting"] == []
        assert wall["today"]["offered"] == 2 and wall["today"]["answered"] == 1
        page = await boss.get("/supervisor")
        assert page.status == 200 and "监控墙" in await page.text()


async def test_offline_night_duty_gets_a_summary_through_their_notifier(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook)
    hook_server = TestServer(hook_app, host="127.0.0.1", port=0)
    await hook_server.start_server()
    async with sessionmaker() as s:
        await s.execute(update(StaffUser).where(StaffUser.username == "laowang")
                        .values(notify={"webhook": str(hook_server.make_url("/hook"))}))
        await s.commit()
    try:
        async with running_app(db_url, tmp_path) as client:
            # DialBegin to the night duty's mobile through the trunk.
            await publish(client, "ringing", call_id="n1", caller=OWNER_MOBILE, community="hupan",
                          interface="PJSIP/13611112222@trunk")
            await client.app[AGENT_HUB].settle()
            assert len(received) == 1
            msg = received[0]
            assert msg["title"] == "来电：张伟（湖畔花园）" and msg["key"] == "n1"
            assert msg["fields"]["来电"] == "138****5678"
            assert msg["fields"]["房号"].startswith("湖畔花园")
            assert "欠费" in msg["fields"]
            # Ringing again (retry leg) does not send a second summary.
            await publish(client, "ringing", call_id="n1", mobile="13611112222")
            await client.app[AGENT_HUB].settle()
            assert len(received) == 1
            async with sessionmaker() as s:
                rows = (await s.scalars(select(AuditEntry)
                                        .where(AuditEntry.person_id == seed.people["张伟"]))).all()
            assert [(r.username, r.reason, r.source) for r in rows] == [
                ("laowang", "pop", "notify:webhook")]
    finally:
        await hook_server.close()


async def test_websocket_needs_a_session_and_same_origin(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        r = await client.get("/ws/agent")
        assert r.status == 401
        await login(client, "xiaoli")
        r = await client.get("/ws/agent", headers={"Origin": "https://evil.example",
                                                   "Connection": "Upgrade", "Upgrade": "websocket",
                                                   "Sec-WebSocket-Version": "13",
                                                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        assert r.status == 403


async def test_late_events_of_an_ended_call_do_not_revive_it(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        await publish(client, "ringing", call_id="z1", caller=OWNER_MOBILE, extension="8001")
        await publish(client, "ended", call_id="z1")
        await publish(client, "ringing", call_id="z1", caller=OWNER_MOBILE, extension="8001")
        hub = client.app[AGENT_HUB]
        assert "z1" not in hub.calls
        assert [h["call_id"] for h in hub.history] == ["z1"]
        ws = await client.ws_connect("/ws/agent")
        await frame(ws, "hello")
        await nothing_pending(ws)
        await ws.close()


async def test_pop_is_built_when_the_call_comes_in_and_refreshed_when_stale(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    """The pop is built on ``call.started`` (the caller is still in the IVR), so
    ringing shows it without a database trip; one older than ``pop_fresh_s`` is
    shown at once and rebuilt behind it, and the card updates if it changed."""
    seed = await seed_directory(sessionmaker)
    clock = ManualClock()
    async with running_app(db_url, tmp_path, clock=clock, pop_fresh_s=20) as client:
        hub = client.app[AGENT_HUB]
        ws = await agent_socket(client, "xiaoli")
        await publish(client, "started", call_id="c9", caller=OWNER_MOBILE, community="hupan")
        await hub.settle()
        assert hub.calls["c9"].pop is not None, "built before anyone is rung"
        assert hub.calls["c9"].pop["rooms"][0]["arrears"] == "1200.50"

        # The owner pays while waiting in the queue; 30 s later the queue rings xiaoli.
        async with sessionmaker() as s:
            await s.execute(update(FeeAccount).where(FeeAccount.room_id == seed.rooms["3-1-1201"])
                            .values(arrears=Decimal("0")))
            await s.commit()
        await clock.advance(30)
        await publish(client, "ringing", call_id="c9", interface="Local/8001@from-queue/n")
        first = await frame(ws, "pop")
        assert first["pop"]["rooms"][0]["arrears"] == "1200.50"  # shown at once, as built
        second = await frame(ws, "pop")  # then the rebuilt one
        assert second["call"]["state"] == "ringing"
        assert second["pop"]["rooms"][0]["arrears"] == "0.00"
        assert not second["pop"]["rooms"][0]["in_arrears"]
        await hub.settle()
        await nothing_pending(ws)  # one rebuild, no loop of refreshes


async def test_a_fresh_prefetched_pop_is_not_rebuilt(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    clock = ManualClock()
    async with running_app(db_url, tmp_path, clock=clock, pop_fresh_s=20) as client:
        hub = client.app[AGENT_HUB]
        ws = await agent_socket(client, "xiaoli")
        await publish(client, "started", call_id="c10", caller=OWNER_MOBILE)
        await hub.settle()
        built = hub.calls["c10"].pop
        await clock.advance(5)
        await publish(client, "ringing", call_id="c10", interface="Local/8001@from-queue/n")
        assert (await frame(ws, "pop"))["pop"]["title"] == "张伟"
        await hub.settle()
        await nothing_pending(ws)
        assert hub.calls["c10"].pop is built


async def test_a_ticket_created_during_the_call_updates_the_card(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    tickets = _Tickets()
    async with running_app(db_url, tmp_path, tickets=tickets) as client:
        hub = client.app[AGENT_HUB]
        ws = await agent_socket(client, "xiaoli")
        await publish(client, "ringing", call_id="c11", caller=OWNER_MOBILE,
                      interface="Local/8001@from-queue/n")
        assert (await frame(ws, "pop"))["pop"]["rooms"][0]["open_tickets"] == []
        tickets.rows.append(TicketSummary(ticket_id=7, room_id=seed.rooms["3-1-1201"],
                                          title="厨房漏水", state="new", state_label="待派单"))
        await client.app[BUS].publish_and_wait(DomainEvent(
            "ticket.created", {"person_id": seed.people["张伟"],
                               "room_id": seed.rooms["3-1-1201"], "number": "T-7"}))
        await hub.settle()
        msg = await frame(ws, "pop")
        assert [t["title"] for t in msg["pop"]["rooms"][0]["open_tickets"]] == ["厨房漏水"]
        # A ticket about someone else leaves the card alone.
        await client.app[BUS].publish_and_wait(DomainEvent(
            "ticket.created", {"person_id": 999_999, "room_id": 999_999, "number": "T-8"}))
        await hub.settle()
        await nothing_pending(ws)


class _Tickets:
    """Open tickets from a list the test fills (the ticket tables are another part)."""

    def __init__(self) -> None:
        self.rows: list[TicketSummary] = []

    def open_tickets(self, conn: Any, room_ids: Any, person_ids: Any) -> list[TicketSummary]:
        return [t for t in self.rows if t.room_id in room_ids]


class _DoorCardTicket:
    """张伟's repair of no room (a door card), beside his rooms' repairs."""

    def __init__(self, person_id: int) -> None:
        self.person_id = person_id

    def open_tickets(self, conn: Any, room_ids: Any, person_ids: Any) -> list[TicketSummary]:
        if self.person_id not in person_ids:
            return []
        return [TicketSummary(9, None, "门禁卡补办", "new", "新建", "T-9")]


async def test_pop_names_the_room_the_ivr_chose_and_each_persons_rooms(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    r1201, r0301 = seed.rooms["3-1-1201"], seed.rooms["5-2-0301"]
    async with running_app(db_url, tmp_path, tickets=_DoorCardTicket(seed.people["张伟"])) as client:
        ws = await agent_socket(client, "xiaoli")
        await publish(client, "started", call_id="r1", caller=OWNER_MOBILE, community="hupan")
        await publish(client, "ringing", call_id="r1", extension="8001")
        pop = (await frame(ws, "pop"))["pop"]
        assert pop["ivr_room_id"] is None  # nothing chosen yet: the console takes the first
        assert [r["room_id"] for r in pop["rooms"]] == [r1201, r0301]
        zhang = pop["people"][0]
        assert [(r["room_id"], r["role"]) for r in zhang["rooms"]] == [
            (r1201, "owner"), (r0301, "owner")]
        assert [t["title"] for t in pop["other_open_tickets"]] == ["门禁卡补办"]
        # The fee-balance branch of the IVR records the room's label as a step.
        await publish(client, "ivr_choice", call_id="r1", label="湖畔花园5栋2单元0301室")
        pop = (await frame(ws, "pop"))["pop"]
        assert pop["ivr_room_id"] == r0301


async def test_a_pop_delivered_on_reconnect_is_audited(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        ws = await agent_socket(client, "xiaoli")
        await ws.close()
        # Rings while the browser is away: nobody sees it, nothing to audit yet.
        await publish(client, "ringing", call_id="c9", caller=OWNER_MOBILE, extension="8001")
        hub = client.app[AGENT_HUB]
        await hub.settle()
        async with sessionmaker() as s:
            assert (await s.scalars(select(AuditEntry))).all() == []
        for _ in range(2):  # each opening is a row of its own
            ws = await client.ws_connect("/ws/agent")
            assert (await frame(ws, "pop"))["call"]["call_id"] == "c9"
            await ws.close()
        await hub.settle()
        async with sessionmaker() as s:
            rows = (await s.scalars(select(AuditEntry).where(AuditEntry.reason == "pop"))).all()
        zhang = [r for r in rows if r.person_id == seed.people["张伟"]]
        assert len(zhang) == 2
        assert all(r.username == "xiaoli" and r.detail == "call c9"
                   and r.source == "ws-reconnect:127.0.0.1" for r in zhang)
        assert {r.person_id for r in rows} == {seed.people[n] for n in ("张伟", "李娜", "王芳")}


async def test_a_pop_that_cannot_be_built_shows_the_number_then_the_record(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    """The database times out while the phone rings: the agent still gets the card at
    once (number, IVR path, flagged degraded, no 登记 form), and the record replaces it
    when a retry succeeds; only that opening of the record is audited."""
    seed = await seed_directory(sessionmaker)
    clock = ManualClock()
    async with running_app(db_url, tmp_path, clock=clock) as a:
        ws = await agent_socket(a, "xiaoli")
        hub = a.app[AGENT_HUB]
        real = hub._builder.build
        failures = 1

        async def flaky(ctx: Any) -> dict[str, Any]:
            nonlocal failures
            if failures:
                failures -= 1
                raise TimeoutError("QueuePool limit of size 5 overflow 10 reached")
            return await real(ctx)

        hub._builder.build = flaky  # type: ignore[method-assign]
        sleeping = clock.sleepers
        await publish(a, "ringing", call_id="c9", caller=OWNER_MOBILE, extension="8001",
                      ivr_path=["报修"])
        msg = await frame(ws, "pop")
        assert msg["pop"]["degraded"] is True and msg["pop"]["title"] == "来电（资料暂不可用）"
        assert msg["pop"]["caller"]["display"] == OWNER_MOBILE
        assert msg["call"]["state"] == "ringing"
        await hub.settle()
        async with sessionmaker() as s:
            assert not (await s.scalars(select(AuditEntry))).all()
        for _ in range(100):
            if clock.sleepers > sleeping:
                break
            await asyncio.sleep(0.01)
        await clock.advance(1.0)
        msg = await frame(ws, "pop")
        assert "degraded" not in msg["pop"] and msg["pop"]["title"] == "张伟"
        await hub.settle()
        async with sessionmaker() as s:
            rows = (await s.scalars(select(AuditEntry).where(AuditEntry.reason == "pop"))).all()
        assert ("xiaoli", seed.people["张伟"]) in {(r.username, r.person_id) for r in rows}
