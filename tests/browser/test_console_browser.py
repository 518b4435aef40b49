"""A real Chromium (Debian's, through Playwright) drives the console: sign in as an
agent; a known owner calls the Asterisk stand-in, which queues the call and rings
the agent's extension over real AMI (AmiLinks → tracker → bus → hub); the pop
shows name, room, arrears and the open repair; the agent creates a ticket from it
and finds it in the ticket list.

Screenshots of failures go to test-artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.appkeys import BUS, CLOCK
from callcenter.bus import DomainEvent
from callcenter.calls.models import CallLog
from callcenter.settings import AsteriskSettings, Secret
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, ScaledClock, Wait
from tests.console.helpers import OWNER_MOBILE, PASSWORD, make_settings, seed_directory
from ticketing.models import Ticket
from ticketing.services import NewTicket, TicketService

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(params=["sqlite"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The browser test runs on SQLite only (the database paths are covered elsewhere)."""
    return str(request.param)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def test_agent_sees_pop_and_creates_ticket(browser: Any, sessionmaker: Any, db_url: str,
                                                 tmp_path: Path, request: pytest.FixtureRequest
                                                 ) -> None:
    seed = await seed_directory(sessionmaker)
    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm",
                              clock=ScaledClock(speed=20))
    await standin.start()
    settings = replace(make_settings(db_url, tmp_path), asterisk=(AsteriskSettings(
        name="pbx1", host="127.0.0.1", port=standin.ami_port, username="cc",
        secret=Secret("ccsecret"), community="hupan"),))
    app = create_app(settings, transcribe=False)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    page = await browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    try:
        service = TicketService(sessionmaker, app[BUS], app[CLOCK], timezone="Asia/Shanghai")
        await service.create(NewTicket(source="agent", category="plumbing", summary="厨房水管漏水",
                                       room_id=seed.rooms["3-1-1201"],
                                       person_id=seed.people["张伟"], created_by="xiaozhao"))
        # A repair of 张伟's about no room of his: shown apart from the rooms.
        await service.create(NewTicket(source="agent", category="other", summary="小区门禁卡补办",
                                       person_id=seed.people["张伟"], created_by="xiaozhao"))
        # Two earlier calls from the owner, 08:05 and 09:30 UTC: 16:05 and 17:30 in Shanghai.
        async with sessionmaker() as s:
            for lid, hour, minute, outcome in (("old-1", 8, 5, "ivr_only"),
                                               ("old-2", 9, 30, "emergency")):
                at = datetime(2026, 11, 20, hour, minute, tzinfo=UTC)
                s.add(CallLog(linkedid=lid, asterisk="pbx1", community="hupan",
                              caller_number="+86" + OWNER_MOBILE, started_at=at,
                              ended_at=at + timedelta(minutes=1), outcome=outcome))
            await s.commit()
        # The agent's desk phone rings for a long while (simulated seconds).
        standin.add_phone(Phone("8001", answer_after=600))
        base = str(server.make_url("/")).rstrip("/")
        await page.goto(f"{base}/agent")
        assert "/login" in page.url
        await page.fill('input[name="username"]', "xiaoli")
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button[type="submit"]')
        await page.wait_for_url(f"{base}/agent")
        await page.wait_for_selector('body[data-ws="online"]', timeout=10000)
        # Signed in is not taking calls: the agent says so by pressing 就绪.
        state = page.locator("#agent-state")
        assert await state.inner_text() == "未就绪"
        await page.get_by_role("button", name="就绪", exact=True).click()
        await page.wait_for_selector('#agent-state[data-state="ready"]', timeout=10000)
        assert await state.inner_text() == "就绪"

        call = standin.place_call(Caller(number=OWNER_MOBILE, name="张伟", context="queue-entry",
                                         script=[Wait(6000), HangUp()]))
        linkedid = call.app.linkedid
        card = page.locator(f'article.card[data-call-id="{linkedid}"]')
        await card.wait_for(timeout=10000)
        assert await card.locator(".caller-name").inner_text() == "张伟"
        assert await card.locator(".caller-number").inner_text() == OWNER_MOBILE
        rooms = await card.locator("table.rooms").inner_text()
        assert "湖畔花园3栋1单元1201室" in rooms and "1200.50 元" in rooms
        assert "厨房水管漏水（新建）" in rooms
        assert "队列 frontdesk" in await card.locator(".card-head").inner_text()
        people = await card.locator(".people").inner_text()
        assert "李娜" in people and "同户" in people
        # Each person with their own rooms; 张伟 owns two.
        zhang = await card.locator(f'.people li[data-person-id="{seed.people["张伟"]}"]').inner_text()
        assert "3栋1单元1201室（业主）" in zhang and "5栋2单元0301室（业主）" in zhang, zhang
        assert "小区门禁卡补办（新建）" in await card.locator(".other-tickets").inner_text()
        # The IVR's fee-balance branch settled on 张伟's second room: the forms default to it.
        r0301 = seed.rooms["5-2-0301"]
        await app[BUS].publish_and_wait(DomainEvent("call.ivr_choice", {
            "call_id": linkedid, "label": "湖畔花园5栋2单元0301室"}))
        await card.locator(".ivr").get_by_text("湖畔花园5栋2单元0301室").wait_for(timeout=10000)
        recent = card.locator("details.recent")
        await recent.locator("summary").click()
        recent_text = await recent.inner_text()
        assert "2026-11-20 17:30 紧急呼叫" in recent_text, recent_text
        assert "2026-11-20 16:05 语音自助" in recent_text, recent_text
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "console_pop.png"), full_page=True)

        await card.get_by_role("button", name="创建报修单").click()
        form = card.locator("form.ticket-form")
        await form.wait_for()
        room_select = form.locator('select[name="room_id"]')
        assert await room_select.input_value() == str(r0301)
        summary = form.locator('input[name="summary"]')
        assert "5栋2单元0301室" in await summary.input_value()
        # Picking the other room carries its label into the prefilled text...
        await room_select.select_option(str(seed.rooms["3-1-1201"]))
        assert "3栋1单元1201室" in await summary.input_value()
        assert "湖畔花园3栋1单元1201室" in await form.locator("textarea").input_value()
        assert OWNER_MOBILE not in await form.locator("textarea").input_value()
        # ...and back: the ticket goes to the room chosen, not the first one.
        await room_select.select_option(str(r0301))
        await form.locator('select[name="category"]').select_option("plumbing")
        await form.locator('input[name="summary"]').fill("卫生间地漏反水")
        await form.get_by_role("button", name="提交报修单").click()
        notice = card.locator(".notice")
        await notice.wait_for(state="visible", timeout=10000)
        text = await notice.inner_text()
        assert text.startswith("报修单已创建"), text
        # The card updates itself with the new open repair, keeping the message.
        await card.get_by_text("卫生间地漏反水（新建）").wait_for(timeout=10000)
        assert (await card.locator(".notice").inner_text()).startswith("报修单已创建")

        # The supervisor's wall shows the call waiting, live over the WebSocket.
        boss_ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
        boss = await boss_ctx.new_page()
        await boss.goto(f"{base}/login")
        await boss.fill('input[name="username"]', "boss")
        await boss.fill('input[name="password"]', PASSWORD)
        await boss.click('button[type="submit"]')
        await boss.wait_for_url(f"{base}/supervisor")
        await boss.wait_for_selector('body[data-ws="online"]', timeout=10000)
        waiting = boss.locator("#wall-waiting")
        await waiting.get_by_text("张伟").wait_for(timeout=10000)
        assert OWNER_MOBILE in await waiting.inner_text()
        agents = await boss.locator("#wall-agents").inner_text()
        assert "XIAOLI" in agents and "就绪" in agents
        await boss.screenshot(path=str(ARTIFACTS / "console_wall.png"), full_page=True)
        await boss_ctx.close()

        async with sessionmaker() as s:
            made = (await s.scalars(select(Ticket).where(Ticket.summary == "卫生间地漏反水"))).one()
        assert made.room_id == r0301 and made.person_id == seed.people["张伟"]
        # The number is the ticket's caller, not part of its text.
        assert made.caller_number == OWNER_MOBILE and OWNER_MOBILE not in made.description

        await page.goto(f"{base}/tickets")
        listing = await page.locator("table.tickets").inner_text()
        assert "卫生间地漏反水" in listing and "厨房水管漏水" in listing
        await page.screenshot(path=str(ARTIFACTS / "console_tickets.png"), full_page=True)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        raise
    finally:
        await page.close()
        await server.close()
        await standin.stop()
