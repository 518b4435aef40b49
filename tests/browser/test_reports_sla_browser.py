"""Pages this change added or changed, in a real Chromium at a desk size and a phone
size: the supervisor's 话务报表 with its charts, the 绩效 (KPI) page, and a ticket whose SLA clock ran out
(the 超时 badge on the ticket page and its row on the wall). Its own module: the
breach it fires would change what the other modules' walls show."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from callcenter.appkeys import CLOCK, SESSIONMAKER
from tests.browser.site import SIZES, Site, check, check_page, visit
from ticketing.models import Ticket
from ticketing.setup import SLA_CLOCK, SLA_WORKER
from ticketing.sla_models import SlaTimer
from ticketing.sla_timers import breaches_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_the_report_page_with_its_charts(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url("/reports"))
    try:
        # The seed's calls: one answered (75 s wait), one abandoned, a voicemail, an IVR-only.
        text = await check_page(page, watch, size, tmp_path / f"reports-{size}.png",
                                primary='form.filters button[type="submit"]',
                                labels=("话务报表", "接通率", "50.0%", "服务水平", "导出 CSV",
                                        "导出 Excel", "合计", "小区：湖畔花园"))
        assert "1:15" in text  # the average wait as 分:秒
        charts = page.locator("svg.chart")
        assert await charts.count() == 3
        main = await page.locator("main").bounding_box()
        assert main is not None
        for i in range(3):
            box = await charts.nth(i).bounding_box()
            assert box is not None and box["height"] > 80, box
            # Each chart fits the screen: it scales down rather than scroll.
            assert box["x"] >= main["x"] - 1 and box["x"] + box["width"] <= main["x"] + main["width"] + 1
        tips = await page.locator("svg.chart title").evaluate_all(
            "(els) => els.map((el) => el.textContent)")
        assert any(t.endswith("接通 1 通") for t in tips), tips
        assert any(t.endswith("放弃 1 通") for t in tips), tips
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_the_kpi_page(site: Site, size: str, tmp_path: Path) -> None:
    # The seed: two tickets taken in by 小李 (one dispatched, by the old transition, to
    # nobody): 小李 counts 2 at the front desk, and no doer has finished anything.
    text = await check(site, "boss", size, "/reports/kpi", tmp_path / f"kpi-{size}.png",
                       primary='form.filters button[type="submit"]',
                       labels=("绩效考核（3:3:4）", "前台受理", "XIAOLI", "综合得分",
                               "本时段没有处理人员的工单", "导出 CSV"))
    assert "front_desk" not in text and "xiaoli" not in text


async def _fire_response_breach(site: Site, ticket_id: int) -> None:
    """The seed made its tickets without the SLA clock: the app's clock arms this one's
    timers, its 15-minute response clock is made due a minute ago, and the app's own
    worker fires it."""
    async with site.app[SESSIONMAKER]() as s:
        ticket = await s.get(Ticket, ticket_id)
        assert ticket is not None
        await site.app[SLA_CLOCK].ticket_added(s, ticket)
        await s.execute(update(SlaTimer).where(
            SlaTimer.ticket_id == ticket_id, SlaTimer.kind == "response").values(
            due_at=site.app[CLOCK].now() - timedelta(minutes=1)))
        await s.commit()
    await site.app[SLA_WORKER].run_due()
    async with site.app[SESSIONMAKER]() as s:
        assert [b.kind for b in await breaches_for(s, ticket_id)] == ["response"]


@pytest.mark.parametrize("size", SIZES)
async def test_a_ticket_past_its_response_time_shows_red_on_its_page_and_the_wall(
        site: Site, size: str, tmp_path: Path) -> None:
    ticket_id = site.tickets["agent"]  # still 受理: nobody has dispatched it
    await _fire_response_breach(site, ticket_id)
    text = await check(site, "boss", size, f"/tickets/{ticket_id}",
                       tmp_path / f"ticket-sla-{size}.png", primary=None,
                       labels=("超时", "超过15分钟未响应", "时限"))
    assert "response" not in text
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url("/supervisor"))
    try:
        await page.wait_for_selector('body[data-ws="online"]', timeout=10000)
        wall = await check_page(page, watch, size, tmp_path / f"wall-sla-{size}.png",
                                primary=None, labels=("超时工单", "超过15分钟未响应", "厨房水管漏水"))
        assert await page.locator('[data-k="sla_red"]').inner_text() == "1"
        assert "没有超时工单" not in wall
    finally:
        await page.close()
