"""Each ring the on-call router makes shows in the call log with its call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_core_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.calls.http import setup_calls
from callcenter.calls.models import CallLog
from callcenter.clock import ManualClock
from callcenter.oncall.router import call_log_id
from callcenter.oncall.services import dialled_numbers
from callcenter.oncall.setup import ONCALL_ROUTER, setup_oncall
from callcenter.settings import settings_from_mapping
from ivr.agi import AgiResult, parse_agi_result
from tests.oncall.test_router import CallerChannel
from tests.oncall.test_who_is_on_call import local, seed

LINKEDID = "1700000100.1"  # the caller's first channel; the IVR runs on .5


class FastAgiCaller(CallerChannel):
    """Over FastAGI the environment has no linkedid: Asterisk is asked for it."""

    async def send_command(self, command: str) -> AgiResult:
        if command == "GET VARIABLE CHANNEL(linkedid)":
            self.commands.append(command)
            return parse_agi_result(f"200 result=1 ({LINKEDID})")
        return await super().send_command(command)


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[TestClient]:
    settings = settings_from_mapping({"database": {"url": db_url}})
    app = create_core_app(settings, clock=ManualClock(local(2026, 11, 23, 22)))
    setup_calls(app)
    setup_oncall(app)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        yield c


async def test_call_log_rows_carry_the_routers_attempts(client: TestClient) -> None:
    app = client.app
    await seed(app[SESSIONMAKER])
    started = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    async with app[SESSIONMAKER]() as s:
        s.add_all([CallLog(linkedid=LINKEDID, asterisk="pbx1", caller_number="+8613911112222",
                           started_at=started, ivr_path=["报修"], rung=[]),
                   CallLog(linkedid="1700000200.1", asterisk="pbx1", started_at=started,
                           ivr_path=[], rung=[])])
        await s.commit()
    call = FastAgiCaller(["NOANSWER", "ANSWER"])
    result = await app[ONCALL_ROUTER].route(call, "lakeside", "night_duty")
    assert result.outcome == "answered"

    async with app[SESSIONMAKER]() as s:
        headers = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}
    resp = await client.get("/api/calls", headers=headers)
    assert resp.status == 200, await resp.text()
    rows = {r["linkedid"]: r for r in (await resp.json())["calls"]}
    attempts = rows[LINKEDID]["attempts"]
    assert [(a["who"], a["number"], a["role"], a["position"], a["outcome"]) for a in attempts] == [
        ("zhang", "802 / 13800000002", "night_duty", 0, "no_answer"),
        ("li", "803 / 13800000003", "night_duty", 1, "answered"),
    ]
    assert attempts[0]["at"] == local(2026, 11, 23, 22).astimezone(UTC).isoformat()
    assert attempts[0]["dial_status"] == "NOANSWER" and attempts[0]["ended_at"]
    # Another call's row has none of them.
    assert rows["1700000200.1"]["attempts"] == []


async def test_the_linkedid_comes_from_the_channel_or_falls_back_to_the_uniqueid() -> None:
    assert await call_log_id(FastAgiCaller([])) == LINKEDID
    plain = CallerChannel([])  # Asterisk does not say: the uniqueid
    assert await call_log_id(plain) == "1700000100.5"
    plain.env["agi_linkedid"] = "1700000099.9"
    assert await call_log_id(plain) == "1700000099.9"
    # With the linkedid in the environment Asterisk is not asked again.
    assert plain.commands.count("GET VARIABLE CHANNEL(linkedid)") == 1


def test_dialled_numbers_of_dial_strings() -> None:
    assert dialled_numbers("PJSIP/802&PJSIP/13800000002@trunk") == ["802", "13800000002"]
    assert dialled_numbers("SIP/gw/13800000002") == ["13800000002"]
    assert dialled_numbers("") == []
