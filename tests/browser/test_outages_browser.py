"""停水停电通知 in a real Chromium at a desk size and a phone size: a supervisor posts
a notice for 3栋1–2单元 from /outages and ends it early; the front desk reads the
live ones; on a group incident's page one click posts 发布停水通知 for its building
and the incident's log records it. No sideways scrolling at 1366×768 either."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER
from ivr.outages.models import OutageNotice
from tests.browser.site import SIZES, Site, check, visit
from ticketing.http import TICKETS
from ticketing.services import NewTicket

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def _incident(site: Site, size: str, category: str = "plumbing") -> int:
    """An open incident of 3栋 (one per category: a second report would join it)."""
    service = site.app[TICKETS].service
    made = [await service.create(NewTicket(
        source="phone", category=category, summary="3栋停水停电了",
        caller_number=f"1371111{size == 'phone':d}{i:03d}", community_id=site.seed.community_id,
        said_building="3", said_unit="2", said_room=f"{i}01", created_by="xiaoli"))
        for i in (1, 2)]
    group_id = made[-1].group_id
    assert group_id is not None
    return group_id


@pytest.mark.parametrize("size", SIZES)
async def test_a_supervisor_posts_and_ends_a_notice(site: Site, size: str, tmp_path: Path
                                                    ) -> None:
    text = f"3栋今天14点到18点停水检修（{'桌面' if size == 'desk' else '手机'}）"
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url("/outages"))
    try:
        await check(site, "boss", size, "/outages", tmp_path / f"outages-{size}.png",
                    primary="#new-outage button[type=submit]",
                    labels=("停水停电通知", "发布通知", "生效中的通知", "来电听到的内容"))
        await page.select_option('#new-outage select[name="kind"]', "water")
        await page.fill('#new-outage input[name="building"]', "3")
        await page.fill('#new-outage input[name="unit_from"]', "1")
        await page.fill('#new-outage input[name="unit_to"]', "2")
        await page.fill('#new-outage textarea[name="text"]', text)
        async with page.expect_navigation():
            await page.click("#new-outage button[type=submit]")
        body = await page.inner_text("body")
        assert "通知已发布" in body and text in body and "湖畔花园3栋1–2单元" in body
        row = page.locator("#live-outages tr", has_text=text)
        assert await row.count() == 1
        await row.locator('input[name="note"]').fill("提前恢复供水")
        async with page.expect_navigation():
            await row.locator("button[type=submit]").click()
        body = await page.inner_text("body")
        assert "通知已结束" in body
        ended = page.locator("#ended-outages tr", has_text=text)
        assert "提前结束：提前恢复供水" in await ended.inner_text()
        assert await page.locator("#live-outages tr", has_text=text).count() == 0
        watch.assert_clean()
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_one_click_on_a_group_incident_posts_its_notice(site: Site, size: str,
                                                              tmp_path: Path) -> None:
    # 给排水 offers 停水 first, 电气 停电 first; each posts its own.
    category, kind, label = (("plumbing", "water", "停水") if size == "desk"
                             else ("electrical", "power", "停电"))
    group_id = await _incident(site, size, category)
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url(f"/ticket-groups/{group_id}"))
    button = f'.outage-form[data-kind="{kind}"] button[type=submit]'
    try:
        await check(site, "boss", size, f"/ticket-groups/{group_id}",
                    tmp_path / f"group-outage-{size}.png", primary=button,
                    labels=("停水停电通知", "发布停水通知", "发布停电通知"))
        prefilled = await page.input_value(f'.outage-form[data-kind="{kind}"] textarea')
        assert prefilled.startswith(f"3栋目前{label}")
        async with page.expect_navigation():
            await page.click(button)
        body = await page.inner_text("body")
        assert "发布停水停电通知" in body and f"发布{label}通知（3栋" in body
        watch.assert_clean()
    finally:
        await page.close()
    async with site.app[SESSIONMAKER]() as s:
        [notice] = (await s.scalars(select(OutageNotice).where(
            OutageNotice.group_id == group_id))).all()
    assert notice.building == "3" and notice.kind == kind and notice.ended_at is None
    # The front desk reads it (no form, no end button) on its own page.
    text = await check(site, "xiaoli", size, "/outages", tmp_path / f"outages-agent-{size}.png",
                       primary=None, labels=("生效中的通知", "湖畔花园3栋", f"3栋目前{label}"))
    assert "来电听到的内容" not in text  # no form to post one
    ctx = await site.signed_in("xiaoli", size)
    page, watch = await visit(ctx, site.url("/outages"))
    try:
        assert await page.locator("#new-outage, form.outage-end").count() == 0
    finally:
        await page.close()


async def test_the_pages_fit_a_1366_desk(site: Site, tmp_path: Path) -> None:
    ctx = await site.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                         viewport={"width": 1366, "height": 768})
    try:
        group_id = await _incident(site, "desk", "elevator")
        await ctx.add_cookies(await (await site.signed_in("boss", "desk")).cookies())
        for path in ("/outages", f"/ticket-groups/{group_id}"):
            page, watch = await visit(ctx, site.url(path))
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1366, f"{path} is {width}px wide"
            await page.screenshot(path=str(tmp_path / "desk-1366.png"), full_page=True)
            watch.assert_clean()
            await page.close()
    finally:
        await ctx.close()
