"""Timers live in the database: restarts resume, two workers never double-dial,
duplicates join, and a failing secondary channel never blocks the phones."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import ManualClock
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.notify.robots import JsonWebhook
from callcenter.paging.models import IncidentReport, PageAttempt, PagingTimer
from callcenter.paging.services import IncidentRequest
from callcenter.paging.worker import WorkerConfig
from tests.paging.conftest import (
    NO_ANSWER,
    Dial,
    ScriptedOriginator,
    Staff,
    answer,
    make_paging,
    target,
)
from tests.paging.test_escalation import leak, phone_rows

SM = async_sessionmaker[AsyncSession]


async def test_duplicate_report_joins_the_open_incident(sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(default=NO_ANSWER))
    first = await p.service.open_incident(leak(caller_number="13911112222"))
    await p.clock.advance(29 * 60)
    second = await p.service.open_incident(leak(caller_number="13933334444", unit="1",
                                                room="101", source="voicemail"))
    assert not second.created and second.incident_id == first.incident_id
    # Other building or other category: a new incident.
    other_building = await p.service.open_incident(leak(building="5"))
    other_category = await p.service.open_incident(leak(category="elevator"))
    assert other_building.created and other_category.created
    tl = await p.service.timeline(first.incident_id)
    assert tl["callers"] == ["13911112222", "13933334444"]
    assert [(r["source"], r["duplicate"]) for r in tl["reports"]] == [
        ("ivr", False), ("voicemail", True)]
    async with sessionmaker() as session:
        timers = (await session.scalars(select(PagingTimer).where(
            PagingTimer.incident_id == first.incident_id))).all()
    assert len(timers) == 1  # the duplicate paged nobody
    assert "incident.joined" in p.events.names()
    # Past the window the same place and category is a new incident.
    await p.clock.advance(2 * 60)
    later = await p.service.open_incident(leak())
    assert later.created and later.incident_id != first.incident_id
    await p.close()


async def test_incident_requested_event_opens_an_incident(sessionmaker: SM, staff: Staff) -> None:
    from callcenter.bus import DomainEvent

    p = make_paging(sessionmaker)
    p.bus.subscribe("incident.requested", p.service.on_incident_requested)
    # The shape ticketing publishes for a voicemail triaged as an emergency.
    await p.bus.publish_and_wait(DomainEvent("incident.requested", {
        "ticket_id": 42, "number": "T-42", "community": "lakeside",
        "community_id": staff.community_id, "building": "7", "unit": None, "room": None,
        "room_id": None, "location": "7栋", "category": "elevator",
        "caller": "13955556666", "caller_name": "", "summary": "电梯困人 语音留言 " * 200}))
    # A bad event is logged, not raised into the bus.
    await p.bus.publish_and_wait(DomainEvent("incident.requested", {"community": "lakeside"}))
    async with sessionmaker() as session:
        reports = (await session.scalars(select(IncidentReport))).all()
    assert [(r.source, r.reference, r.caller_number) for r in reports] == [
        ("voicemail", "T-42", "13955556666")]
    await p.close()


async def test_restart_between_steps_resumes_without_redial(sessionmaker: SM, staff: Staff) -> None:
    clock = ManualClock()
    a = make_paging(sessionmaker, clock=clock, originator=ScriptedOriginator(default=NO_ANSWER))
    await a.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0, "wait_s": 120}, {"target": "backup", "retries": 0}])
    opened = await a.service.open_incident(leak())
    await a.worker.run_due()
    await a.close()  # the server stops
    assert [d.channel for d in a.originator.dials] == [target("e1")]

    b = make_paging(sessionmaker, clock=clock, originator=ScriptedOriginator(
        {target("e2"): [answer("1")]}))
    assert await b.worker.run_due() == 0  # not due yet: nothing dialled again
    await clock.advance(120)
    assert await b.worker.run_due() == 1
    assert [d.channel for d in b.originator.dials] == [target("e2")]
    tl = await b.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [("工程师e1", "no_answer"), ("工程师e2", "accepted")]
    await b.close()


async def test_crash_mid_call_is_not_redialled_after_restart(sessionmaker: SM, staff: Staff) -> None:
    clock = ManualClock()
    hung = ScriptedOriginator(default=NO_ANSWER)
    hung.block = asyncio.Event()  # the Originate never comes back: the server dies mid-call
    a = make_paging(sessionmaker, clock=clock, originator=hung,
                    worker_config=WorkerConfig(lease_s=300))
    await a.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 1}, {"target": "backup", "retries": 0}])
    opened = await a.service.open_incident(leak())
    running = asyncio.get_running_loop().create_task(a.worker.run_due())
    await asyncio.wait_for(hung.entered.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await a.close()

    b = make_paging(sessionmaker, clock=clock, originator=ScriptedOriginator(
        {target("e1"): [answer("1")]}), worker_config=WorkerConfig(lease_s=300))
    assert await b.worker.run_due() == 0  # the claim is still within its lease
    await clock.advance(301)
    await b.worker.run_due()
    tl = await b.service.timeline(opened.incident_id)
    rows = [(a["person"], a["try"], a["outcome"], a["error_code"])
            for a in tl["attempts"] if a["channel"] == "phone"]
    # Try 0 was interrupted and not dialled again; the policy's retry (try 1) was.
    assert rows == [("工程师e1", 0, "interrupted", "worker_lost"), ("工程师e1", 1, "accepted", None)]
    assert len(b.originator.dials) == 1
    await b.close()


async def test_two_workers_on_one_database_dial_each_step_once(
        db_url: str, sessionmaker: SM, staff: Staff) -> None:
    engine2 = make_engine(db_url)
    sm2 = make_sessionmaker(engine2)
    try:
        clock = ManualClock()
        dials: list[Dial] = []
        small = WorkerConfig(batch=1)
        alpha_phone = ScriptedOriginator(default=NO_ANSWER, dial_log=dials)
        a = make_paging(sessionmaker, clock=clock, worker_id="alpha", worker_config=small,
                        originator=alpha_phone)
        b = make_paging(sm2, clock=clock, worker_id="beta", worker_config=small,
                        originator=ScriptedOriginator(default=NO_ANSWER, dial_log=dials))
        await a.service.set_policy("lakeside", "plumbing", [
            {"target": "oncall", "retries": 1}, {"target": "backup", "retries": 0}],
            max_rounds=1)
        ids = []
        for n in range(12):
            ids.append((await a.service.open_incident(leak(building=str(n)))).incident_id)
        # Alpha is held in the middle of its first dial while beta works: both take
        # part whatever the scheduler does, and neither may take the other's step.
        alpha_phone.block = asyncio.Event()
        first = asyncio.create_task(a.worker.run_due())
        await alpha_phone.entered.wait()
        await b.worker.run_due()
        alpha_phone.block.set()
        await first
        await asyncio.gather(a.worker.run_due(), b.worker.run_due(), a.worker.run_due(),
                             b.worker.run_due())
        keys = Counter((d.variables["CC_INCIDENT"], d.variables["CC_PAGE_ATTEMPT"])
                       for d in dials)
        assert len(dials) == 12 * 3
        assert set(keys.values()) == {1}
        async with sessionmaker() as session:
            attempts = (await session.scalars(select(PageAttempt))).all()
        per_step = Counter((r.incident_id, r.round, r.step, r.try_no) for r in attempts)
        assert len(per_step) == 36 and set(per_step.values()) == {1}
        # Both workers took part (each claimed some timers).
        assert {r.worker for r in attempts} == {"alpha", "beta"}
        await a.close()
        await b.close()
    finally:
        await engine2.dispose()


async def test_failing_webhook_is_recorded_while_phones_go_on(
        sessionmaker: SM, staff: Staff) -> None:
    hits: list[Any] = []

    async def broken(request: web.Request) -> web.Response:
        hits.append(await request.json())
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_post("/hook", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            hook = JsonWebhook(http, f"http://127.0.0.1:{port}/hook", timeout_s=5)
            p = make_paging(sessionmaker, notifiers=[hook], originator=ScriptedOriginator(
                {target("e1"): [NO_ANSWER], target("e2"): [answer("1")]}))
            await p.service.set_policy("lakeside", "plumbing", [
                {"target": "oncall", "retries": 0, "channels": ["phone", "webhook"]},
                {"target": "backup", "retries": 0}])
            opened = await p.service.open_incident(leak())
            await p.worker.run_due()
            await p.worker.drain_side_tasks()
            tl = await p.service.timeline(opened.incident_id)
            assert phone_rows(tl) == [("工程师e1", "no_answer"), ("工程师e2", "accepted")]
            hooks = [a for a in tl["attempts"] if a["channel"] == "webhook"]
            assert len(hooks) == 1 and hooks[0]["outcome"] == "failed"
            assert hooks[0]["error_code"] == "notify_failed" and "500" in hooks[0]["detail"]
            assert hits and hits[0]["title"] == "紧急事件：漏水/水管爆裂"
            await p.close()
    finally:
        await runner.cleanup()


async def test_background_loop_dials_as_soon_as_an_incident_opens(
        sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator({target("e1"): [answer("1")]}),
                    worker_config=WorkerConfig(poll_interval_s=3600))
    await p.worker.start()
    opened = await p.service.open_incident(leak())
    for _ in range(200):
        if (await p.service.get(opened.incident_id)).state == "acknowledged":
            break
        await asyncio.sleep(0.01)
    assert (await p.service.get(opened.incident_id)).state == "acknowledged"
    await p.close()


async def test_open_incident_rejects_bad_input(sessionmaker: SM, staff: Staff) -> None:
    from callcenter.oncall.errors import UnknownCommunity
    from callcenter.paging.errors import InvalidIncident
    from callcenter.paging.services import incident_request_from_json

    p = make_paging(sessionmaker)
    with pytest.raises(InvalidIncident) as e1:
        incident_request_from_json({"community": "lakeside"}, source="api")
    assert e1.value.details["field"] == "category"
    with pytest.raises(InvalidIncident) as e2:
        incident_request_from_json({"category": "fire", "building": "x" * 40}, source="api")
    assert e2.value.details["field"] == "building"
    with pytest.raises(UnknownCommunity):
        await p.service.open_incident(IncidentRequest("nowhere", "fire", "api"))
    with pytest.raises(InvalidIncident):
        await p.service.open_incident(IncidentRequest("lakeside", "fire", "fax"))
    await p.close()


async def test_concurrent_claims_never_overlap(db_url: str, sessionmaker: SM, staff: Staff) -> None:
    engine2 = make_engine(db_url)
    try:
        clock = ManualClock()
        a = make_paging(sessionmaker, clock=clock, worker_id="alpha",
                        worker_config=WorkerConfig(batch=3))
        b = make_paging(make_sessionmaker(engine2), clock=clock, worker_id="beta",
                        worker_config=WorkerConfig(batch=3))
        for n in range(30):
            await a.service.open_incident(leak(building=f"b{n}"))

        async def drain(w: Any) -> list[int]:
            got: list[int] = []
            while batch := await w.claim_due():
                got += [t.id for t in batch]
            return got

        got_a, got_b = await asyncio.gather(drain(a.worker), drain(b.worker))
        assert not set(got_a) & set(got_b)
        assert len(got_a) + len(got_b) == 30
        await a.close()
        await b.close()
    finally:
        await engine2.dispose()


async def test_personal_channels_of_the_paged_person_and_supervisors(
        sessionmaker: SM, staff: Staff) -> None:
    from callcenter.directory.models import StaffUser
    from callcenter.paging.notifiers import user_notifiers

    got: list[tuple[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((request.match_info["who"], await request.json()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/u/{who}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/u"
    async with sessionmaker() as session:
        for uid, who in ((staff.e1, "e1"), (staff.sup, "sup")):
            user = await session.get(StaffUser, uid)
            assert user is not None
            user.notify = {"webhook": f"{base}/{who}", "fax": "0755-1"}
        await session.commit()
    try:
        async with aiohttp.ClientSession() as http:
            p = make_paging(sessionmaker, originator=ScriptedOriginator(default=NO_ANSWER),
                            user_notifiers=user_notifiers(http))
            await p.service.set_policy("lakeside", "plumbing", [
                {"target": "oncall", "retries": 0, "channels": ["phone", "webhook"]}],
                max_rounds=1)
            opened = await p.service.open_incident(leak())
            await p.worker.run_due()
            await p.worker.drain_side_tasks()
            assert sorted(who for who, _ in got) == ["e1", "sup"]
            to_sup = next(body for who, body in got if who == "sup")
            assert "所有人员均未接警" in to_sup["text"]
            tl = await p.service.timeline(opened.incident_id)
            hooks = sorted((a["person"], a["step"], a["outcome"]) for a in tl["attempts"]
                           if a["channel"] == "webhook")
            assert hooks == [("工程师e1", 0, "sent"), ("工程师sup", -1, "sent")]
            await p.close()
    finally:
        await runner.cleanup()


async def test_graceful_stop_hands_back_steps_not_yet_dialled(sessionmaker: SM, staff: Staff) -> None:
    clock = ManualClock()
    a = make_paging(sessionmaker, clock=clock)
    opened = await a.service.open_incident(leak())
    claimed = await a.worker.claim_due()  # claimed, but the server stops before dialling
    assert [t.incident_id for t in claimed] == [opened.incident_id]
    await a.close()
    b = make_paging(sessionmaker, clock=clock, originator=ScriptedOriginator(
        {target("e1"): [answer("1")]}))
    assert await b.worker.run_due() == 1  # at once, no lease to wait out
    assert (await b.service.get(opened.incident_id)).state == "acknowledged"
    await b.close()


async def test_heartbeat_keeps_a_long_step_claimed(sessionmaker: SM, staff: Staff) -> None:
    clock = ManualClock()
    cfg = WorkerConfig(lease_s=90)
    a = make_paging(sessionmaker, clock=clock, worker_config=cfg, worker_id="alive")
    b = make_paging(sessionmaker, clock=clock, worker_config=cfg, worker_id="other")
    await a.service.open_incident(leak())
    assert len(await a.worker.claim_due()) == 1
    await clock.advance(80)
    await a.worker.heartbeat()
    await clock.advance(80)  # 160 s since the claim, 80 s since the heartbeat
    assert await b.worker.claim_due() == []
    await clock.advance(11)  # the heartbeats stopped: the claim is stale
    assert len(await b.worker.claim_due()) == 1
    await a.close()
    await b.close()
