"""What the pop's buttons call, as console.js calls them: 呼叫值班工程师 opens an
incident; and who sees which numbers on a pop (an engineer: masked, always)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from callcenter.app import create_core_app
from callcenter.appkeys import BUS
from callcenter.bus import DomainEvent
from callcenter.console.config import ConsoleConfig
from callcenter.console.setup import setup_console
from callcenter.paging.models import Incident
from callcenter.paging.setup import setup_paging
from callcenter.screenpop.setup import setup_screenpop
from tests.console.helpers import (
    FAST_HASHER,
    OWNER_MOBILE,
    login,
    make_settings,
    seed_directory,
    serving,
)


class NoCalls:
    """The worker is not started: nobody is dialled in this test."""

    async def originate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no call expected")


@asynccontextmanager
async def console_with_paging(db_url: str, tmp: Path
                              ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_core_app(make_settings(db_url, tmp))
    setup_console(app, hasher=FAST_HASHER)
    setup_screenpop(app, wall_debounce_s=0, audit_flush_s=0)
    setup_paging(app, originator=NoCalls(), start_worker=False)  # type: ignore[arg-type]
    async with serving(app) as client:
        yield client


async def _pop(ws: Any) -> tuple[dict[str, Any], str]:
    for _ in range(20):
        msg = await ws.receive(timeout=5)
        data = json.loads(msg.data)
        if data["type"] == "pop":
            return data, msg.data
    raise AssertionError("no pop")


async def test_paging_the_engineer_from_a_pop_opens_an_incident(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with console_with_paging(db_url, tmp_path) as client:
        csrf = await login(client, "xiaoli")
        page = await (await client.get("/agent")).text()
        api = re.search(r'data-incidents-api="([^"]+)"', page)
        assert api and api.group(1) == ConsoleConfig().incidents_api
        ws = await client.ws_connect("/ws/agent")
        bus = client.app[BUS]
        await bus.publish_and_wait(DomainEvent("call.started", {
            "call_id": "p1", "caller": OWNER_MOBILE, "community": "hupan"}))
        await bus.publish_and_wait(DomainEvent("call.ringing", {
            "call_id": "p1", "extension": "8001"}))
        msg, _raw = await _pop(ws)
        pop = msg["pop"]
        room = next(r for r in pop["rooms"] if r["room_id"] == seed.rooms["3-1-1201"])
        # showPageForm's body, with the room the agent picked.
        r = await client.post(api.group(1), headers={"X-CSRF-Token": csrf}, json={
            "source": "agent", "category": "plumbing", "summary": "来电：张伟\n房号：" + room["label"],
            "community": pop["community"]["code"], "caller_number": pop["caller"]["display"],
            "call_id": msg["call"]["call_id"], "building": room["building"],
            "unit": room["unit"], "room": room["room"]})
        assert r.status == 201, await r.text()
        incident_id = (await r.json())["incident_id"]
        async with sessionmaker() as s:
            inc = (await s.scalars(select(Incident).where(Incident.id == incident_id))).one()
        assert inc.state == "open" and inc.source == "agent" and inc.category == "plumbing"
        assert inc.community_id == seed.community_id
        assert (inc.building, inc.unit, inc.room) == ("3", "1", "1201")
        assert "3栋1单元1201室" in inc.summary
        assert any(OWNER_MOBILE in c for c in inc.callers), inc.callers
        # The same request without the page's CSRF token is refused.
        r = await client.post(api.group(1), json={"source": "agent", "category": "plumbing",
                                                  "community": "hupan"})
        assert r.status == 403
        await ws.close()


async def test_an_engineer_sees_masked_numbers_on_a_pop(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with console_with_paging(db_url, tmp_path) as client:
        await login(client, "gong")
        ws = await client.ws_connect("/ws/agent")
        # A routed call rings the engineer's mobile (DialBegin towards it).
        await client.app[BUS].publish_and_wait(DomainEvent("call.ringing", {
            "call_id": "e1", "caller": OWNER_MOBILE, "community": "hupan",
            "target": "13633334444"}))
        msg, raw = await _pop(ws)
        pop = msg["pop"]
        assert pop["title"] == "张伟"
        assert pop["caller"]["display"] == "138****5678" and pop["caller"]["masked"]
        assert not pop["caller"].get("e164")
        phones = [p for person in pop["people"] + pop["household"] for p in person["phones"]]
        assert phones and all("****" in p for p in phones)
        # No full number anywhere in what reached the engineer's browser.
        assert OWNER_MOBILE not in raw and "13700002222" not in raw and "+86" not in raw
        await ws.close()
