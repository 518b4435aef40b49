"""An emergency escalation on two real server processes: its steps are dialled by the
server that owns the community's link; kill -9 of that server mid-escalation, and
the standby, once it holds the lease, dials the rest: each step exactly once, none
skipped (the step in flight at the kill is recorded interrupted, not re-dialled)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.bus import EventBus
from callcenter.clock import SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.demo import DEMO_COMMUNITY_CODE, free_port
from callcenter.directory.models import StaffUser
from callcenter.paging.models import PageAttempt, PagingTimer
from callcenter.paging.services import IncidentRequest, PagingConfig, PagingService
from callcenter.simulator import AsteriskStandIn, Phone
from callcenter.simulator.scenario import Answer
from tests.cluster.serve_node import settings_for
from tests.ha.pair import Node, OriginateSpy, lease_holder, until
from tests.integration.demo_db import demo_db

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])
LINK = "standin"
STEPS = [{"target": "oncall", "role": "engineer", "ring_timeout_s": 5, "retries": 1},
         {"target": "backup", "role": "engineer", "ring_timeout_s": 5, "retries": 0}]
ROUNDS = 2
EXPECTED_ATTEMPTS = ROUNDS * 3  # (oncall x2, backup x1) per round


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[AsteriskStandIn, int]]:
    async with demo_db(db_url, datetime.now(UTC).date()) as sm, sm() as s:
        staff = (await s.scalars(select(StaffUser))).all()
        numbers = [n for u in staff for n in (u.mobile, u.extension) if n]
    ami_port = free_port()
    settings = settings_for(db_url, tmp_path / "a", 0, ami_port, free_port())
    standin = AsteriskStandIn.from_settings(settings, ivr_transport="asyncagi",
                                            prompt_seconds=0.05)
    for number in numbers:  # nobody answers: the escalation runs every step
        standin.add_phone(Phone(number, behaviour=Answer.NO_ANSWER))
    await standin.start()
    try:
        yield standin, ami_port
    finally:
        await standin.stop()


async def open_escalation(db_url: str) -> tuple[int, PagingService]:
    engine = make_engine(db_url)
    service = PagingService(make_sessionmaker(engine), SystemClock(), EventBus(), PagingConfig())
    await service.set_policy(DEMO_COMMUNITY_CODE, "plumbing", STEPS, max_rounds=ROUNDS,
                             restart_wait_s=1)
    opened = await service.open_incident(IncidentRequest(
        community=DEMO_COMMUNITY_CODE, category="plumbing", source="ivr", building="3",
        unit="2", room="1203", caller_number="13911112222", call_id="1700000000.9"))
    await engine.dispose()
    return opened.incident_id, service


async def phone_attempts(db_url: str, incident_id: int) -> list[tuple[int, int, str | None]]:
    """(attempt id, timer id, outcome) of the incident's phone attempts."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.execute(
                select(PageAttempt.id, PageAttempt.timer_id, PageAttempt.outcome)
                .where(PageAttempt.incident_id == incident_id, PageAttempt.channel == "phone")
                .order_by(PageAttempt.id))).all()
            timers = (await s.scalars(select(PagingTimer).where(
                PagingTimer.incident_id == incident_id))).all()
    finally:
        await engine.dispose()
    done_without_attempt = [t.id for t in timers if t.done and not any(r[1] == t.id for r in rows)]
    assert not done_without_attempt, f"steps skipped: timers {done_without_attempt}"
    return [(int(r[0]), int(r[1]), r[2]) for r in rows]


@pytest.mark.parametrize("after_kill", ["standby", "restart"])
async def test_an_escalation_survives_the_kill_of_its_dialling_server_each_step_once(
        world: tuple[AsteriskStandIn, int], db_url: str, tmp_path: Path, after_kill: str) -> None:
    """``standby``: B takes the link over. ``restart``: no second server, A is started
    again at once (systemd's Restart=always); it takes over its previous life's claims
    when it starts (they used to wait out the paging lease, 90 s)."""
    standin, ami_port = world
    spy = OriginateSpy().install()
    real_time = {"CALLCENTER_TEST_CLOCK": "system"}  # the steps fall due by the wall clock
    a = Node("server-a", db_url, tmp_path / "a", ami_port, tmp_path / "a.log", real_time)
    b = Node("server-b", db_url, tmp_path / "b", ami_port, tmp_path / "b.log", real_time)
    try:
        await a.start()
        await until(lambda: lease_holder(db_url, LINK), 10, "nobody took the lease")
        if after_kill == "standby":
            await b.start()
        assert (await lease_holder(db_url, LINK))[0] == "server-a"
        incident_id, _ = await open_escalation(db_url)
        await until(lambda: len(spy.sent) >= 2, 30, "the escalation never dialled twice")
        a_session = spy.sent[0][1]
        assert {s for _, s, _, _ in spy.sent} == {a_session}  # the owner dials, B hands back
        await asyncio.sleep(0.5)  # the second ring is in flight
        a.kill9()
        killed_at = time.monotonic()
        if after_kill == "restart":
            assert a.proc is not None
            await a.proc.wait()
            await a.start()

        async def finished() -> bool:
            rows = await phone_attempts(db_url, incident_id)
            return len([r for r in rows if r[2] != "deferred"]) >= EXPECTED_ATTEMPTS \
                and all(r[2] is not None for r in rows)

        await until(finished, 60, lambda: f"escalation unfinished: {spy.sent}", step_s=0.5)
        rows = await phone_attempts(db_url, incident_id)
        dialled = Counter(att for _, _, _, att in spy.sent)
        real = [r for r in rows if r[2] != "deferred"]
        assert len(real) == EXPECTED_ATTEMPTS
        # every attempt rang exactly once: the interrupted one by A, none twice
        assert all(dialled[str(att)] == 1 for att, _, _ in real), (dialled, rows)
        assert sum(dialled.values()) == len(real)
        after = [s for t, s, _, _ in spy.sent if t > killed_at]
        assert after and a_session not in after  # the rest went out through another session
        assert (await lease_holder(db_url, LINK))[0] == (
            "server-b" if after_kill == "standby" else "server-a")
    finally:
        spy.restore()
        await asyncio.gather(a.stop(), b.stop())
