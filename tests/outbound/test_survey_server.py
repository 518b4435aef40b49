"""Campaign calls through the whole server (create_app, real database, real sockets)
against the Asterisk stand-in, over AsyncAGI and FastAGI: a supervisor marks a repair
完工, the server's dialer rings the owner, the owner presses a key, the ticket shows
the 回访 by 自动回访, and /outbound lists the call; a 催缴 campaign of the sample
community reaches its owners in arrears and its results download for the office."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.demo import DEMO_COMMUNITY_CODE, demo_settings
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn, HangUp, Phone, Press, ScaledClock, Wait
from tests.health_access import HEALTH_HEADERS, with_health_token
from tests.integration.demo_db import heartbeat_seen, seed_demo_db
from tests.integration.test_hotline_e2e import FixedTimeClock
from tests.integration.test_hotline_routing_e2e import MONDAY_10AM, OWNER
from ticketing.models import Ticket

CONTEXTS = {"asyncagi": "callcenter-outbound", "fastagi": "callcenter-outbound-fastagi"}


@pytest.mark.parametrize("transport", ["asyncagi", "fastagi"])
async def test_a_finished_repair_is_surveyed_by_the_server_and_the_key_lands_on_the_ticket(
        db_url: str, tmp_path: Path, transport: str) -> None:
    base = with_health_token(replace(demo_settings(tmp_path, 0),
                                     database=DatabaseSettings(url=db_url)))
    settings = replace(base, outbound=replace(base.outbound, survey_delay_s=0.0,
                                              context=CONTEXTS[transport],
                                              caller_ids=(f"{DEMO_COMMUNITY_CODE}=4008001234",)))
    await seed_demo_db(db_url, MONDAY_10AM.date())
    owner = Phone(OWNER, answer_after=1, script=[Wait(2), Press("4"), Wait(3), HangUp()])
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport,
                                            clock=ScaledClock(10), phones=[owner])
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(MONDAY_10AM),
                                              transcribe=False)))
    await client.start_server()
    try:
        await heartbeat_seen(standin)
        for _ in range(200):
            health = await (await client.get("/healthz", headers=HEALTH_HEADERS)).json()
            if health["asterisk"].get("standin") == "connected":
                break
            await asyncio.sleep(0.05)
        async with client.app[SESSIONMAKER]() as s:
            sup = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}
        resp = await client.post("/api/tickets", headers=sup, json={
            "source": "phone", "category": "plumbing", "summary": "厨房水管漏水",
            "caller_number": OWNER, "community": DEMO_COMMUNITY_CODE})
        assert resp.status == 201, await resp.text()
        tid = (await resp.json())["id"]
        async with client.app[SESSIONMAKER]() as s:  # the repair is under way
            await s.execute(update(Ticket).where(Ticket.id == tid).values(
                state="in_progress", department="engineering"))
            await s.commit()
        resp = await client.post(f"/api/tickets/{tid}/actions", headers=sup,
                                 json={"action": "complete", "note": "更换角阀，已试水"})
        assert resp.status == 200, await resp.text()
        ticket: dict[str, object] = {}
        for _ in range(300):
            ticket = await (await client.get(f"/api/tickets/{tid}", headers=sup)).json()
            if ticket["state"] != "resolved":
                break
            await asyncio.sleep(0.05)
        assert ticket["state"] == "followed_up", ticket
        text = str(ticket)
        assert "自动回访" in text and "4" in text
        jobs: dict[str, list[dict[str, object]]] = {"jobs": []}
        for _ in range(200):  # the dialer writes the job once the call has ended
            jobs = await (await client.get("/api/outbound/jobs?state=done", headers=sup)).json()
            if jobs["jobs"]:
                break
            await asyncio.sleep(0.05)
        [job] = jobs["jobs"]
        assert job["ticket_id"] == tid and job["result"]["score"] == 4
        assert job["history"][0]["outcome_label"] == "已接听"
        page = await (await client.get("/outbound?state=all", headers={
            **sup, "Accept": "text/html"})).text()
        assert "回访调查" in page and "满意度 4 分" in page
        # the owner saw the community's own number
        shown = {dict(e).get("CallerIDNum") for e in standin.events
                 if dict(e).get("Event") == "NewCallerid"}
        assert "4008001234" in shown
    finally:
        await client.close()
        await standin.stop()


@pytest.mark.parametrize("transport", ["asyncagi", "fastagi"])
async def test_a_fee_campaign_reaches_the_owners_in_arrears_and_its_results_download(
        db_url: str, tmp_path: Path, transport: str) -> None:
    from sqlalchemy import select

    from callcenter.directory.models import FeeAccount, PersonPhone, PersonRoom, StaffUser
    from callcenter.oncall.router import national_number

    base = with_health_token(replace(demo_settings(tmp_path, 0),
                                     database=DatabaseSettings(url=db_url)))
    settings = replace(base, outbound=replace(base.outbound, context=CONTEXTS[transport]))
    await seed_demo_db(db_url, MONDAY_10AM.date())
    client = TestClient(TestServer(create_app(settings, clock=FixedTimeClock(MONDAY_10AM),
                                              transcribe=False)))
    await client.start_server()
    async with client.app[SESSIONMAKER]() as s:
        owing = list((await s.scalars(select(PersonPhone.number).join(
            PersonRoom, PersonRoom.person_id == PersonPhone.person_id).join(
            FeeAccount, FeeAccount.room_id == PersonRoom.room_id).where(
            FeeAccount.arrears >= 100, PersonRoom.role == "owner",
            PersonPhone.position == 0))).all())
        boss = (await s.scalars(select(StaffUser.id).where(
            StaffUser.role == "supervisor"))).first()
        assert boss is not None
        sup = {"Authorization": "Bearer " + await create_token(
            s, role="supervisor", name="boss", user_id=boss)}
    assert owing, "the sample community has owners in arrears"
    phones = [Phone(national_number(n), answer_after=1, script=[Wait(40), HangUp()])
              for n in set(owing)]
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport,
                                            clock=ScaledClock(20), phones=phones)
    await standin.start()
    try:
        await heartbeat_seen(standin)
        resp = await client.post("/api/outbound/campaigns", headers=sup, json={
            "community": DEMO_COMMUNITY_CODE, "min_amount": 100, "min_age_days": 0})
        assert resp.status == 201, await resp.text()
        built = await resp.json()
        assert built["queued"] >= 1
        campaign: dict[str, object] = {}
        for _ in range(600):
            listing = await (await client.get("/api/outbound/campaigns", headers=sup)).json()
            campaign = listing["campaigns"][0]
            if campaign["final"] == campaign["total"]:
                break
            await asyncio.sleep(0.05)
        assert campaign["final"] == campaign["total"] == built["queued"], campaign
        assert campaign["done"] == built["queued"]
        csv = (await (await client.get(f"/outbound/campaigns/{campaign['id']}.csv",
                                       headers=sup)).read()).decode("utf-8-sig")
        rows = csv.strip().splitlines()[1:]
        assert len(rows) == built["queued"] and all("已接听，听完提醒" in r for r in rows)
        # The reminders are calls the server placed: in the log as such, not as hotline
        # calls (the day's figures count none of them) nor as missed calls to call back.
        calls: list[dict[str, object]] = []
        for _ in range(100):
            calls = (await (await client.get("/api/calls", headers=sup)).json())["calls"]
            if len(calls) >= built["queued"] and all(c["ended_at"] for c in calls):
                break
            await asyncio.sleep(0.05)
        assert calls and {c["direction"] for c in calls} == {"out"}
        report = await (await client.get("/api/reports/calls", headers=sup)).json()
        assert report["total"]["calls"] == 0, report["total"]
        callbacks = await (await client.get("/api/callbacks", headers=sup)).json()
        assert callbacks["count"] == 0
        history = await (await client.get("/history?all=1", headers={
            **sup, "Accept": "text/html"})).text()
        assert "呼出（已接通）" in history and "语音自助" not in history
    finally:
        await client.close()
        await standin.stop()
