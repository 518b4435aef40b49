"""A server with tickets, departments and one person of each kind, for work-order tests.

Each kind of actor has a token bound to its own staff user, so the server sees
who they are (the assignee, the department head) and not only their role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.appkeys import BUS
from callcenter.auth.tokens import create_token
from callcenter.bus import DomainEvent
from callcenter.clock import ManualClock
from callcenter.directory.models import StaffUser
from callcenter.reports.http import setup_reports
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.departments import MemberInput, put_department
from ticketing.models import CallbackTask, Ticket

# kind → (username, role); "chen" is in 工程部, "zhou" heads it, "ma" is an engineer
# of no department, the rest are who their role says.
PEOPLE: dict[str, tuple[str, str]] = {
    "agent": ("xiaoli", "agent"),
    "night_duty": ("laowang", "night_duty"),
    "engineer": ("xiaoma", "engineer"),
    "assignee": ("chen", "engineer"),
    "head": ("zhou", "engineer"),
    "supervisor": ("boss", "supervisor"),
    "admin": ("root", "admin"),
}
KINDS = tuple(PEOPLE)
DISPLAY = {"xiaoli": "小李", "laowang": "老王", "xiaoma": "小马", "chen": "陈师傅",
           "zhou": "周工", "boss": "赵主管", "root": "管理员"}
# Tiny but real image headers (the server sniffs magic bytes, not names).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    sm: async_sessionmaker[AsyncSession]
    clock: ManualClock
    seeded: Seeded
    tokens: dict[str, str]
    users: dict[str, int]
    data_dir: Path
    events: list[DomainEvent] = field(default_factory=list)

    def auth(self, kind: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[kind]}"}

    async def call(self, method: str, path: str, kind: str | None = "agent",
                   **kw: Any) -> tuple[int, Any]:
        headers = {**(self.auth(kind) if kind else {}), **kw.pop("headers", {})}
        async with self.client.request(method, path, headers=headers, **kw) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json() if "json" in ctype else await resp.read()
            return resp.status, body

    async def new_ticket(self, **kw: Any) -> dict[str, Any]:
        body = {"category": "plumbing", "summary": "厨房水管漏水", "source": "agent",
                "caller_number": "13912345678", "room_id": self.seeded.room_3_2_1201, **kw}
        status, t = await self.call("POST", "/api/tickets", json=body)
        assert status == 201, t
        return dict(t)

    async def act(self, ticket_id: int, kind: str, action: str, **body: Any
                  ) -> tuple[int, Any]:
        return await self.call("POST", f"/api/tickets/{ticket_id}/actions", kind=kind,
                               json={"action": action, **body})

    async def force(self, ticket_id: int, state: str, *, assignee: str | None = "assignee",
                    callback: bool = False) -> None:
        """Put a ticket straight into ``state`` (a test's shortcut, not a transition)."""
        async with self.sm() as s:
            await s.execute(update(Ticket).where(Ticket.id == ticket_id).values(
                state=state, department="engineering",
                assignee_id=self.users[assignee] if assignee else None))
            if callback:
                s.add(CallbackTask(ticket_id=ticket_id, reason="测试", created_at=self.clock.now()))
            await s.commit()

    async def state_of(self, ticket_id: int) -> str:
        status, t = await self.call("GET", f"/api/tickets/{ticket_id}", kind="supervisor")
        assert status == 200
        return str(t["state"])


@pytest.fixture
async def world(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                tmp_path: Path) -> AsyncIterator[World]:
    seeded = await seed_directory(sessionmaker)
    users: dict[str, int] = {}
    tokens: dict[str, str] = {}
    async with sessionmaker() as s:
        for kind, (username, role) in PEOPLE.items():
            u = StaffUser(username=username, display_name=DISPLAY[username], role=role,
                          all_communities=True, active=True)
            s.add(u)
            await s.flush()
            users[kind] = u.id
        await s.commit()
        await put_department(s, seeded.community_id, "engineering", name="工程部",
                             oncall_role="engineer",
                             members=[MemberInput(users["assignee"]),
                                      MemberInput(users["head"], head=True)])
        await put_department(s, seeded.community_id, "customer_service", name="客服部",
                             oncall_role="agent", members=[MemberInput(users["agent"])])
        await s.commit()
        for kind, (username, role) in PEOPLE.items():
            tokens[kind] = await create_token(s, role=role, name=username, user_id=users[kind])
    data_dir = tmp_path / "data"
    settings = settings_from_mapping({"data_dir": str(data_dir), "database": {"url": db_url}})
    clock = ManualClock()
    app = create_core_app(settings, clock=clock)
    setup_tickets(app, ingest=False)
    setup_reports(app)  # the KPI reads what the work orders log
    events: list[DomainEvent] = []

    async def grab(app: web.Application) -> AsyncIterator[None]:
        async def on(e: DomainEvent) -> None:
            events.append(e)
        app[BUS].subscribe("ticket.changed", on)
        yield

    app.cleanup_ctx.append(grab)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield World(client, sessionmaker, clock, seeded, tokens, users, data_dir, events)
    finally:
        await client.close()
