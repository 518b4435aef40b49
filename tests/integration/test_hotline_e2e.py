"""A caller walks the hotline menus: the whole server against the stand-in,
over both ways Asterisk hands a call to an application (FastAGI, AsyncAGI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_app
from callcenter.appkeys import CALL_LOG
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.demo import demo_settings, seed_directory, seed_staff
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Press, Wait

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FixedTimeClock(SystemClock):
    """Real sleeps, but "now" is a chosen moment: office hours or a holiday."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def now(self) -> datetime:
        return self.when


async def _start(db_url: str, tmp_path: Path, when: datetime, transport: str
                 ) -> tuple[TestClient, AsteriskStandIn]:  # type: ignore[type-arg]
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url))
    engine = make_engine(db_url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    await seed_directory(sm)
    await seed_staff(sm, datetime.now(UTC).date())
    await engine.dispose()
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport, prompt_seconds=0.05)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(when), transcribe=False)))
    await client.start_server()
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
    for _ in range(100):
        if (await (await client.get("/healthz")).json())["asterisk"].get("standin") == "connected":
            break
        await asyncio.sleep(0.05)
    standin.place_call(Caller(number="13812345678", name="业主", did="4008001234",
                              script=[Wait(0.3), Press("1"), Wait(0.3), Press("1"), Wait(1.0),
                                      HangUp()]))
    path = await _call_log_path(client, "13812345678")
    assert path == ["报修", "水电"]
    assert any(dict(e).get("Event") == "QueueCallerJoin" for e in standin.events)
