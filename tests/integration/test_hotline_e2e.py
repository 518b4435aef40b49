"""A caller walks the hotline menus: the whole server against the stand-in,
over both ways Asterisk hands a call to an application (FastAGI, AsyncAGI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.appkeys import CALL_LOG, ENGINE, SESSIONMAKER
from callcenter.clock import SystemClock
from callcenter.demo import demo_settings
from callcenter.directory.models import Community, PersonPhone, PersonRoom
from callcenter.paging.worker import IDLE_TASK_NAME
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Press, Wait
from tests.health_access import HEALTH_HEADERS, with_health_token
from tests.integration.demo_db import heartbeat_seen, seed_demo_db
from ticketing.listen import LISTEN_IDLE_TASK_NAME
from ticketing.models import Ticket
from ticketing.sla_worker import SLA_IDLE_TASK_NAME

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FixedTimeClock(SystemClock):
    """Real sleeps, but "now" is a chosen moment: office hours or a holiday."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def now(self) -> datetime:
        return self.when


async def _start(db_url: str, tmp_path: Path, when: datetime, transport: str
                 ) -> tuple[TestClient, AsteriskStandIn]:  # type: ignore[type-arg]
    settings = with_health_token(replace(demo_settings(tmp_path, 0),
                                         database=DatabaseSettings(url=db_url)))
    await seed_demo_db(db_url, datetime.now(UTC).date())
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport, prompt_seconds=0.05)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(when), transcribe=False)))
    await client.start_server()
    await heartbeat_seen(standin)
    return client, standin


@pytest.fixture
async def office(db_url: str, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[tuple[TestClient, AsteriskStandIn]]:  # type: ignore[type-arg]
    transport = getattr(request, "param", "fastagi")
    client, standin = await _start(db_url, tmp_path, datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI),
                                   transport)
    yield client, standin
    await client.close()
    await standin.stop()


async def _linked(client: TestClient) -> None:  # type: ignore[type-arg]
    """Wait until the server's AMI link to the stand-in is up."""
    for _ in range(100):
        if (await (await client.get("/healthz", headers=HEALTH_HEADERS)).json())["asterisk"].get("standin") == "connected":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server never connected to the stand-in")


async def _call_log_path(client: TestClient, number: str) -> list[str]:  # type: ignore[type-arg]
    for _ in range(150):
        rows = await client.app[CALL_LOG].search(number=number)
        ended = [r for r in rows if r.ended_at is not None]
        if ended:
            return list(ended[0].ivr_path or [])
        await asyncio.sleep(0.1)
    raise AssertionError("the call never reached the call log")


@pytest.mark.parametrize("office", ["fastagi", "asyncagi"], indirect=True)
async def test_known_owner_reports_a_repair_in_office_hours_and_reaches_the_queue(
    office: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]
) -> None:
    client, standin = office
    await _linked(client)
    standin.place_call(Caller(number="13812345678", name="业主", did="4008001234",
                              script=[Wait(0.3), Press("1"), Wait(0.3), Press("1"), Wait(1.0),
                                      HangUp()]))
    path = await _call_log_path(client, "13812345678")
    assert path == ["报修", "水电"]
    assert any(dict(e).get("Event") == "QueueCallerJoin" for e in standin.events)


@pytest.mark.parametrize("office", ["fastagi", "asyncagi"], indirect=True)
async def test_a_message_left_from_the_menu_becomes_a_ticket_with_its_room_and_path(
    office: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]
) -> None:
    """报修 → 其他 leaves a voicemail: the IVR sets VM_CATEGORY, the stand-in's
    app_voicemail writes it into msgNNNN.txt, the ingest makes the ticket."""
    client, standin = office
    await _linked(client)
    standin.place_call(Caller(number="13812345678", name="业主", did="4008001234",
                              script=[Wait(0.3), Press("1"), Wait(0.3), Press("4"), Wait(1.5),
                                      HangUp()]))
    sm = client.app[SESSIONMAKER]
    for _ in range(150):
        async with sm() as s:
            tickets = (await s.scalars(select(Ticket))).all()
            owner_rooms = (await s.scalars(
                select(PersonRoom.room_id).join(PersonPhone,
                                                PersonPhone.person_id == PersonRoom.person_id)
                .where(PersonPhone.number == "+8613812345678"))).all()
        if tickets:
            break
        await asyncio.sleep(0.1)
    [ticket] = tickets
    assert ticket.source == "voicemail" and ticket.caller_number == "13812345678"
    assert ticket.description.endswith("语音导航：报修 → 其他")
    assert ticket.room_id is not None and ticket.room_id in owner_rooms
    [txt] = list(standin.pbx.spool.root.rglob("msg*.txt"))
    assert "category=cc1;call=" in txt.read_text(encoding="utf-8")


@pytest.mark.parametrize("office", ["fastagi", "asyncagi"], indirect=True)
async def test_a_call_runs_for_the_community_whose_hotline_was_dialled(
    office: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, standin = office
    async with client.app[SESSIONMAKER]() as s:
        s.add(Community(code="binjiang", name="滨江小区", hotline_numbers=["075566667777"]))
        await s.commit()
    await _linked(client)
    caplog.set_level(logging.INFO, logger="callcenter.app")
    standin.place_call(Caller(number="13812345678", name="业主", did="0755-6666-7777",
                              script=[Wait(0.3), Press("1"), Wait(0.3), Press("1"), Wait(1.0),
                                      HangUp()]))
    await _call_log_path(client, "13812345678")
    assert "for community binjiang (dialled number)" in caplog.text


@pytest.mark.parametrize("office", ["fastagi", "asyncagi"], indirect=True)
@pytest.mark.parametrize("script", [
    [Wait(0.2), HangUp()],                                         # during the greeting
    [Wait(0.3), Press("1"), Wait(0.1), HangUp()],                  # in the repair menu
    [Wait(0.3), Press("3"), Wait(0.1), HangUp()],                  # while the balance is said
    [Wait(0.3), Press("1"), Wait(0.3), Press("4"), Wait(0.2), HangUp()],  # leaving a message
], ids=["greeting", "repair-menu", "fee-balance", "voicemail"])
async def test_a_caller_who_hangs_up_leaves_nothing_behind(
    office: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]
    script: list[Any],
) -> None:
    """The real services (database sessions, on-call routing, the call log): after
    the caller is gone no database connection is held and no IVR task is left."""
    client, standin = office
    await _linked(client)
    before = asyncio.all_tasks()
    standin.place_call(Caller(number="13812345678", name="业主", did="4008001234",
                              script=list(script)))
    await _call_log_path(client, "13812345678")
    pool = client.app[ENGINE].sync_engine.pool
    for _ in range(100):
        # Tasks of this call: not the stand-in's (Asterisk's side, on the same loop)
        # nor the idle polls of the paging, listen and SLA workers, which make new ones.
        idle = ("standin:", IDLE_TASK_NAME, LISTEN_IDLE_TASK_NAME, SLA_IDLE_TASK_NAME)
        left = {t for t in asyncio.all_tasks() - before - {asyncio.current_task()}
                if not t.get_name().startswith(idle)}
        if pool.checkedout() == 0 and not left and not standin.pbx.channels:
            break
        await asyncio.sleep(0.05)
    assert pool.checkedout() == 0
    assert not left, [repr(t.get_coro()) for t in left]
    assert not standin.pbx.channels
