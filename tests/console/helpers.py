"""Shared by the console and screen-pop tests: a small directory, staff, a running app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.auth.passwords import hash_password, make_hasher
from callcenter.clock import Clock
from callcenter.console.ports import StaffRef
from callcenter.console.setup import setup_console
from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    StaffUser,
    Tag,
    Unit,
)
from callcenter.screenpop.setup import setup_screenpop
from callcenter.screenpop.sources import OpenTicketsSource
from callcenter.settings import DatabaseSettings, HttpSettings, Settings

FAST_HASHER = make_hasher(time_cost=1, memory_cost=1024)
PASSWORD = "correct-horse-1"
OWNER_MOBILE = "13812345678"
TENANT_MOBILE = "13900001111"


@dataclass
class Seed:
    community_id: int = 0
    rooms: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    staff: dict[str, int] = field(default_factory=dict)


async def seed_directory(sm: async_sessionmaker[AsyncSession]) -> Seed:
    """湖畔花园: 张伟 owns 3-1-1201 (arrears 1200.50) and 5-2-0301; 李娜 is family in
    1201; 王芳 rents 0301 and shares 张伟's number? No: her own number."""
    seed = Seed()
    async with sm() as s:
        c = Community(code="hupan", name="湖畔花园", hotline_numbers=["075588886666"])
        s.add(c)
        await s.flush()
        seed.community_id = c.id

        async def room(b: str, u: str, n: str, arrears: str) -> Room:
            bld = Building(community_id=c.id, name=b)
            s.add(bld)
            await s.flush()
            unit = Unit(building_id=bld.id, name=u)
            s.add(unit)
            await s.flush()
            r = Room(unit_id=unit.id, number=n)
            s.add(r)
            await s.flush()
            s.add(FeeAccount(room_id=r.id, arrears=Decimal(arrears), area_m2=Decimal("95.20")))
            seed.rooms[f"{b}-{u}-{n}"] = r.id
            return r

        r1 = await room("3", "1", "1201", "1200.50")
        r2 = await room("5", "2", "0301", "0")
        vip = Tag(name="VIP")
        zhang = Person(name="张伟", tags=[vip])
        zhang.phones.append(PersonPhone(number="+86" + OWNER_MOBILE, raw=OWNER_MOBILE))
        zhang.rooms.append(PersonRoom(room_id=r1.id, role="owner"))
        zhang.rooms.append(PersonRoom(room_id=r2.id, role="owner"))
        li = Person(name="李娜")
        li.phones.append(PersonPhone(number="+8613700002222", raw="13700002222"))
        li.rooms.append(PersonRoom(room_id=r1.id, role="family"))
        wang = Person(name="王芳")
        wang.phones.append(PersonPhone(number="+86" + TENANT_MOBILE, raw=TENANT_MOBILE))
        wang.rooms.append(PersonRoom(room_id=r2.id, role="tenant"))
        s.add_all([zhang, li, wang])
        await s.flush()
        seed.people = {"张伟": zhang.id, "李娜": li.id, "王芳": wang.id}
        for username, role, ext, mobile, notify in (
            ("xiaoli", "agent", "8001", None, {}),
            ("xiaozhao", "agent", "8002", None, {}),
            ("laowang", "night_duty", None, "13611112222", {}),
            ("boss", "supervisor", "8009", None, {}),
            ("root", "admin", None, None, {}),
            ("gong", "engineer", None, "13633334444", {}),
        ):
            u = StaffUser(username=username, display_name=username.upper(), role=role,
                          extension=ext, mobile=mobile, notify=notify, all_communities=True,
                          password_hash=hash_password(FAST_HASHER, PASSWORD))
            s.add(u)
            await s.flush()
            seed.staff[username] = u.id
        await s.commit()
    return seed


def staff_ref(seed: Seed, username: str, role: str = "agent", ext: str | None = "8001") -> StaffRef:
    return StaffRef(seed.staff[username], username, username.upper(), role, ext, None)


class FakeOriginate:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    async def click_to_call(self, agent: StaffRef, number: str, *,
                            community: str | None = None) -> str:
        self.calls.append((agent.extension or "", number, community))
        return f"orig-{len(self.calls)}"


def make_settings(db_url: str, tmp: Path, *, max_age_s: int = 3600) -> Settings:
    return Settings(data_dir=tmp, database=DatabaseSettings(url=db_url),
                    http=HttpSettings(session_max_age_s=max_age_s))


@asynccontextmanager
async def serving(app: web.Application
                  ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """``app`` served on a free local port for the test's client."""
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def running_app(db_url: str, tmp: Path, *, clock: Clock | None = None,
                      tickets: OpenTicketsSource | None = None, max_age_s: int = 3600,
                      login_limit: int = 5, console: dict[str, Any] | None = None,
                      with_tickets: bool = False, with_callbacks: bool = False,
                      **screenpop: Any
                      ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_core_app(make_settings(db_url, tmp, max_age_s=max_age_s), clock=clock)
    setup_console(app, hasher=FAST_HASHER, login_limit=login_limit, **(console or {}))
    setup_screenpop(app, tickets=tickets, wall_debounce_s=0, audit_flush_s=0, **screenpop)
    if with_tickets:
        from callcenter.tickets import setup_tickets

        setup_tickets(app)
    if with_callbacks:
        from callcenter.calls.callbacks_http import setup_callbacks

        setup_callbacks(app)
    async with serving(app) as client:
        yield client


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD
                ) -> str:
    """Sign in through the form; return the session's CSRF token (from the page)."""
    page = await client.get("/login")
    token = _CSRF.search(await page.text())
    assert token, "login page has a CSRF field"
    resp = await client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": token.group(1)},
                             allow_redirects=False)
    assert resp.status == 302, await resp.text()
    home = await client.get("/agent" if username != "root" else "/supervisor")
    meta = _META.search(await home.text())
    assert meta and meta.group(1)
    return meta.group(1)
