"""Two real server processes on one PostgreSQL database and one Asterisk (the stand-in
in this process), as issue 14 sets them up.

The IVR runs on server A only, honestly so: the stand-in hands calls to A's FastAGI
port (both servers listen to AMI and both see every call, but until one owner per
link drives AsyncAGI only one may run the IVR, and with FastAGI Asterisk itself picks
the server). The agent 小王 is signed in on server B; the supervisor watches the
wall on A.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy import select

from callcenter.auth.tokens import create_token
from callcenter.cluster.setup import application_name, listen_dsn
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.demo import DEMO_PASSWORD, free_port
from callcenter.directory.models import StaffUser
from callcenter.simulator import AsteriskStandIn, Caller, Press, Wait
from tests.cluster.serve_node import settings_for
from tests.integration.demo_db import seed_demo_db

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])

ROOT = Path(__file__).resolve().parents[2]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


class Server:
    def __init__(self, name: str, db_url: str, data_dir: Path, ami_port: int,
                 fastagi_port: int, log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.args = ["-m", "tests.cluster.serve_node", db_url, str(data_dir), str(self.port),
                     str(ami_port), str(fastagi_port)]
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # A wait of 3 s before the bus reconnects: the test acts inside that gap.
        env = {**os.environ, "CALLCENTER_SERVER_ID": self.name, "CALLCENTER_BUS_RETRY_S": "3"}
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                stderr=err)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line.strip() == b"ready", self.log.read_text()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Browser:
    """A signed-in member of staff on one server: a cookie jar and a /ws/agent socket
    whose frames are collected."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.frames: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def login(self, username: str) -> None:
        page = await (await self.http.get(self.server.url + "/login")).text()
        token = _CSRF.search(page)
        assert token
        resp = await self.http.post(self.server.url + "/login", allow_redirects=False, data={
            "username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)})
        assert resp.status == 302, await resp.text()
        home = await (await self.http.get(self.server.url + "/agent")).text()
        meta = _META.search(home)
        assert meta
        self.csrf = meta.group(1)

    async def open_socket(self) -> None:
        ws = await self.http.ws_connect(self.server.url + "/ws/agent")

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.frames.append(json.loads(msg.data))
                    self._new.set()

        self._reader = asyncio.get_running_loop().create_task(read())

    async def frame(self, pred: Callable[[dict[str, Any]], bool], within_s: float,
                    what: str) -> dict[str, Any]:
        """The first frame so far or to come that ``pred`` accepts."""
        seen = 0
        async with asyncio.timeout(within_s):
            while True:
                for f in self.frames[seen:]:
                    if pred(f):
                        return f
                seen = len(self.frames)
                self._new.clear()
                try:
                    await self._new.wait()
                except TimeoutError:
                    break
        raise AssertionError(f"{what}: frames {self.frames[-5:]}")

    async def status(self, state: str, reason: str = "") -> None:
        body = {"state": state, "reason": reason} if reason else {"state": state}
        resp = await self.http.post(self.server.url + "/api/console/status", json=body,
                                    headers={"X-CSRF-Token": self.csrf})
        assert resp.status == 200, await resp.text()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.http.close()


async def _frame(browser: Browser, pred: Callable[[dict[str, Any]], bool], within_s: float,
                 what: str) -> dict[str, Any]:
    try:
        return await browser.frame(pred, within_s, what)
    except TimeoutError:
        raise AssertionError(f"{what}: frames {browser.frames[-5:]}") from None


def _agent_on_wall(frame: dict[str, Any], user_id: int) -> dict[str, Any] | None:
    if frame.get("type") != "wall":
        return None
    return next((a for a in frame["wall"]["agents"] if a["user_id"] == user_id), None)


async def _bus_backend(db_url: str, server: str) -> int | None:
    conn = await asyncpg.connect(listen_dsn(db_url))
    try:
        pid = await conn.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                                  application_name(server))
        return int(pid) if pid is not None else None
    finally:
        await conn.close()


async def _until(pred: Callable[[], Any], within_s: float, what: str) -> Any:
    """Poll another process's database writes (no event crosses the process)."""
    for _ in range(int(within_s / 0.05)):
        if found := await pred():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(what)


@pytest.fixture
async def pair(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[AsteriskStandIn, Server, Server]]:
    ami_port, fastagi_a, fastagi_b = free_port(), free_port(), free_port()
    await seed_demo_db(db_url, datetime.now(UTC).date())
    settings_a = settings_for(db_url, tmp_path / "a", 0, ami_port, fastagi_a)
    standin = AsteriskStandIn.from_settings(settings_a, ivr_transport="fastagi",
                                            prompt_seconds=0.05)
    await standin.start()
    a = Server("server-a", db_url, tmp_path / "a", ami_port, fastagi_a, tmp_path / "a.log")
    b = Server("server-b", db_url, tmp_path / "b", ami_port, fastagi_b, tmp_path / "b.log")
    try:
        await asyncio.gather(a.start(), b.start())
        yield standin, a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())
        await standin.stop()


async def test_two_servers_share_the_ivr_path_agent_states_and_tickets_and_re_read_after_a_gap(
        pair: tuple[AsteriskStandIn, Server, Server], db_url: str) -> None:
    standin, a, b = pair
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    async with sm() as s:
        ids = {u.username: u.id for u in (await s.scalars(select(StaffUser))).all()}
        token = await create_token(s, role="supervisor")
    await engine.dispose()
    wang = Browser(b)  # 小王 at the front desk, signed in on B
    wang_on_a = Browser(a)  # 小王's second device, on A
    boss = Browser(a)  # 主管 周经理 watches the wall on A
    try:
        await wang.login("agent2")
        await wang.open_socket()
        await boss.login("sup1")
        await boss.open_socket()
        # 小王 presses 就绪 on B: A's wall shows it, and shows 小王 online (on B).
        await wang.status("ready")
        shown = await _frame(boss, lambda f: (ag := _agent_on_wall(f, ids["agent2"])) is not None
                             and ag["state"] == "ready" and ag["online"], 15,
                             "A's wall never showed 小王 就绪 and online")
        assert shown["wall"]["agents"]

        # An owner calls; A runs the menu (报修 → 水电), the queue rings 小王 on B.
        standin.place_call(Caller(number="13812345678", name="王建国", did="4008001234",
                                  script=[Wait(0.3), Press("1"), Wait(0.3), Press("1"),
                                          Wait(60)]))
        pop = await _frame(wang, lambda f: f.get("type") == "pop"
                           and f["pop"].get("ivr_path") == ["报修", "水电"], 30,
                           "小王 on B never got the pop with the IVR path A learned")
        assert pop["pop"]["known"] and pop["pop"]["people"]
        person_id = pop["pop"]["people"][0]["person_id"]
        room_id = pop["pop"]["rooms"][0]["room_id"]
        call_id = pop["call"]["call_id"]

        # A ticket created on A shows on B's pop (a new open repair of the room).
        bearer = {"Authorization": f"Bearer {token}"}
        resp = await wang.http.post(a.url + "/api/tickets", headers=bearer, json={
            "category": "plumbing", "summary": "卫生间下水堵塞", "person_id": person_id,
            "room_id": room_id, "caller_number": "13812345678"})
        assert resp.status == 201, await resp.text()
        await _frame(wang, lambda f: f.get("type") == "pop" and f["call"]["call_id"] == call_id
                     and any(t["title"] == "卫生间下水堵塞" for r in f["pop"]["rooms"]
                             for t in r["open_tickets"]), 15,
                     "the ticket created on A never showed on B's pop")

        # B's LISTEN connection is killed; it waits 3 s before reconnecting. Meanwhile
        # 小王 goes 小休 from the device on A and another ticket is made on A.
        pid = await _bus_backend(db_url, "server-b")
        assert pid is not None
        await wang_on_a.login("agent2")
        conn = await asyncpg.connect(listen_dsn(db_url))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            await wang_on_a.status("paused", "用餐")
            resp = await wang.http.post(a.url + "/api/tickets", headers=bearer, json={
                "category": "plumbing", "summary": "阳台漏水", "person_id": person_id,
                "room_id": room_id, "caller_number": "13812345678"})
            assert resp.status == 201, await resp.text()
            # A wrote the state (then NOTIFYed) while B was not listening.
            await _until(lambda: conn.fetchval(
                "SELECT state = 'paused' FROM agent_states WHERE user_id = $1", ids["agent2"]),
                5, "A never wrote 小王's 小休")
            assert await _bus_backend(db_url, "server-b") is None  # B heard none of it
        finally:
            await conn.close()
        # Back on the bus, B re-reads: 小王's own console on B shows 小休 (用餐), the
        # pop has the second ticket.
        status = await _frame(wang, lambda f: f.get("type") == "status"
                              and f["status"]["state"] == "paused", 20,
                              "B never re-read 小王's 小休 set on A")
        assert status["status"]["reason"] == "用餐"
        await _frame(wang, lambda f: f.get("type") == "pop" and f["call"]["call_id"] == call_id
                     and any(t["title"] == "阳台漏水" for r in f["pop"]["rooms"]
                             for t in r["open_tickets"]), 20,
                     "B never re-read the ticket created on A while it was off the bus")
        assert await _bus_backend(db_url, "server-b") not in (None, pid)
    finally:
        for browser in (wang, wang_on_a, boss):
            await browser.close()
