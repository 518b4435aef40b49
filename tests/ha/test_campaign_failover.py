"""A 催缴 campaign through a kill -9: two real server processes on one PostgreSQL and
one Asterisk stand-in. Server A owns the link and dials; it is killed with SIGKILL
while reminders ring and talk. Server B takes the link over, adopts the calls that
were in AsyncAGI, dials the owners A had not reached yet, and finishes A's jobs once
their calls are surely over. Every owner is dialled once and hears their reminder."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from callcenter.auth.tokens import create_token
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.demo import DEMO_COMMUNITY_CODE, free_port
from callcenter.directory.models import FeeAccount, PersonPhone, PersonRoom, StaffUser
from callcenter.oncall.router import national_number
from callcenter.outbound.models import FINAL, OutboundJob
from callcenter.simulator import AsteriskStandIn, HangUp, Phone, Wait
from tests.cluster.serve_node import office_hours_offset_s, settings_for
from tests.ha.pair import Node, lease_holder, until
from tests.integration.demo_db import seed_demo_db

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])
MIN_AMOUNT = 2500  # a dozen or so owners of the sample community


def dialled(standin: AsteriskStandIn) -> Counter[str]:
    return Counter(str(dict(e).get("Channel", "")).split("@")[0].removeprefix("Local/")
                   for e in standin.events if dict(e).get("Event") == "Newchannel"
                   and str(dict(e).get("Channel", "")).endswith(";2")
                   and "@phones" in str(dict(e).get("Channel", "")))


async def test_a_campaign_goes_on_after_a_kill_9_and_nobody_is_dialled_twice(
        db_url: str, tmp_path: Path) -> None:
    await seed_demo_db(db_url, datetime.now(UTC).date())
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    async with sm() as s:
        owing = sorted({national_number(n) for n in (await s.scalars(
            select(PersonPhone.number).join(PersonRoom, PersonRoom.person_id ==
                                             PersonPhone.person_id)
            .join(FeeAccount, FeeAccount.room_id == PersonRoom.room_id)
            .where(FeeAccount.arrears >= MIN_AMOUNT, PersonRoom.role == "owner",
                   PersonPhone.position == 0))).all()})
        boss = (await s.scalars(select(StaffUser.id).where(
            StaffUser.role == "supervisor"))).first()
        token = await create_token(s, role="supervisor", name="boss", user_id=boss)
    assert len(owing) >= 4, owing
    ami_port = free_port()
    settings = settings_for(db_url, tmp_path / "a", 0, ami_port, free_port())
    phones = [Phone(n, answer_after=2, script=[Wait(20), HangUp()]) for n in owing]
    standin = AsteriskStandIn.from_settings(settings, ivr_transport="asyncagi",
                                            prompt_seconds=0.05, phones=phones)
    await standin.start()
    env = {"CALLCENTER_TEST_CLOCK_OFFSET_S": str(office_hours_offset_s()),
           "CALLCENTER_TEST_OUTBOUND_SHORT_CALLS": "5,30"}
    a = Node("server-a", db_url, tmp_path / "a", ami_port, tmp_path / "a.log", env=env)
    b = Node("server-b", db_url, tmp_path / "b", ami_port, tmp_path / "b.log", env=env)
    try:
        await a.start()
        async def a_owns() -> bool:
            return (await lease_holder(db_url, "standin"))[0] == "server-a"
        await until(a_owns, 10, "server A never took the link")
        await b.start()
        async with aiohttp.ClientSession() as http, http.post(
                f"{a.url}/api/outbound/campaigns", headers={"Authorization": f"Bearer {token}"},
                json={"community": DEMO_COMMUNITY_CODE, "min_amount": MIN_AMOUNT,
                      "min_age_days": 0}) as resp:
            assert resp.status == 201, await resp.text()
            queued = (await resp.json())["queued"]
        assert queued == len(owing)
        await until(lambda: len(dialled(standin)) >= 3, 15, "server A never dialled")
        a.kill9()
        before = dialled(standin)

        async def all_final() -> bool:
            async with sm() as s:
                left = await s.scalar(select(func.count()).select_from(OutboundJob).where(
                    OutboundJob.state.notin_(list(FINAL))))
            return left == 0
        await until(all_final, 120, lambda: f"jobs still open; A had dialled {dict(before)}")
        async with sm() as s:
            jobs = list((await s.scalars(select(OutboundJob))).all())
        assert {j.state for j in jobs} == {"done"}, [(j.number, j.state, j.note) for j in jobs]
        counts = dialled(standin)
        assert sorted(counts) == owing and set(counts.values()) == {1}, counts
        assert (await lease_holder(db_url, "standin"))[0] == "server-b"
    finally:
        await a.stop()
        await b.stop()
        await standin.stop()
        await engine.dispose()
