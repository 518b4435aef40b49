"""The ticket pages in a real Chromium at a desk size and a phone size: the list
becomes cards on a phone, the detail shows the "listen to the recording" banner,
numbers are masked for agents, night duty and engineers and shown to supervisors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.site import (
    LISTEN_NOTICE,
    OWNER_MASKED,
    OWNER_MOBILE,
    PHONE,
    SIZES,
    TENANT_MASKED,
    TENANT_MOBILE,
    Site,
    check,
    check_page,
    local,
    visit,
)
from ticketing.http import TICKETS
from ticketing.services import NewTicket

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_list(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("xiaoli", size)
    page, watch = await visit(ctx, site.url("/tickets"))
    try:
        text = await check_page(page, watch, size, tmp_path / f"tickets-{size}.png",
                                primary='.filters button[type="submit"]',
                                labels=("共 3 条", "给排水", "电梯", "紧急", "普通", "新建", "已派单",
                                        "湖畔花园3栋1单元1201室", OWNER_MASKED, TENANT_MASKED),
                                hidden=(OWNER_MOBILE, TENANT_MOBILE))
        assert local(site.seeded_at, "%Y-%m-%d %H:%M") in text
        # Chromium in Chinese: the date filters read 年/月/日.
        assert "年" in await page.locator('input[name="since"]').evaluate(
            "(el) => el.type === 'date' ? '年' : ''")
        rows = page.locator("table.tickets tbody tr")
        assert await rows.count() == 3
        if size == "phone":
            # One card per ticket: the rows stack, each as wide as the screen allows.
            boxes = [await rows.nth(i).bounding_box() for i in range(3)]
            assert all(b is not None and b["width"] <= PHONE["width"] for b in boxes)
            assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"]  # type: ignore[index]
            cell = rows.first.locator('td[data-label="摘要"]')
            label = await cell.evaluate("(el) => getComputedStyle(el, '::before').content")
            assert label == '"摘要"', label
        # The filter works from the phone: 紧急 only.
        await page.select_option('select[name="priority"]', "emergency")
        await page.click('.filters button[type="submit"]')
        await page.wait_for_url("**priority=emergency**")
        assert await rows.count() == 1
        assert "5栋电梯困人" in await rows.first.inner_text()
        watch.assert_clean()
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_waiting_for_someone_to_listen(site: Site, size: str,
                                                    tmp_path: Path) -> None:
    ctx = await site.signed_in("laowang", size)
    page, watch = await visit(ctx, site.url(f"/tickets/{site.tickets['listen']}"))
    try:
        await check_page(page, watch, size, tmp_path / f"ticket-listen-{size}.png",
                         primary='.wo-actions button[type="submit"]',
                         labels=("语音留言（未能识别）", "其他", "语音留言", TENANT_MASKED,
                                 "处理记录", "派单", "取消"),
                         hidden=(TENANT_MOBILE,))
        banner = page.locator(".listen-notice")
        assert await banner.inner_text() == LISTEN_NOTICE
        box = await banner.bounding_box()
        assert box is not None and box["x"] + box["width"] <= SIZES[size]["width"]
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_ticket_detail_for_an_engineer_masks_the_owner(site: Site, size: str,
                                                             tmp_path: Path) -> None:
    text = await check(site, "gong", size, f"/tickets/{site.tickets['agent']}",
                       tmp_path / f"ticket-engineer-{size}.png",
                       primary=None,  # not theirs: nothing to do but read
                       labels=("厨房水管漏水", "给排水", "张伟", OWNER_MASKED, "坐席录入",
                               "当前没有您可以做的操作"),
                       hidden=(OWNER_MOBILE,))
    # The number written in the description is masked too.
    assert f"业主来电（{OWNER_MASKED}）" in text


@pytest.mark.parametrize("size", SIZES)
async def test_supervisor_dispatches_an_emergency_ticket(site: Site, size: str,
                                                         tmp_path: Path) -> None:
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url(f"/tickets/{site.tickets['emergency']}"))
    try:
        text = await check_page(page, watch, size, tmp_path / f"ticket-boss-{size}.png",
                                primary='.wo-actions button[type="submit"]',
                                labels=("5栋电梯困人", "紧急", "已派单", "已派工程部陈师傅", "BOSS",
                                        "改派", "接单"))
        assert TENANT_MOBILE in text  # supervisors see full numbers
    finally:
        await page.close()


async def test_a_ticket_that_does_not_exist_is_a_chinese_page(site: Site, tmp_path: Path) -> None:
    for size in SIZES:
        await check(site, "xiaoli", size, "/tickets/999999", tmp_path / f"ticket-404-{size}.png",
                    allow_status=(404,), primary="main a.button", labels=("未找到", "返回首页"))


@pytest.mark.parametrize("size", SIZES)
async def test_a_complaint_shows_its_grade_and_the_front_desk_regrades_it(
        site: Site, size: str, tmp_path: Path) -> None:
    made = await site.app[TICKETS].service.create(NewTicket(
        source="phone", category="complaint", complaint_grade="important",
        summary="保安态度恶劣", caller_number=OWNER_MOBILE, community_id=site.seed.community_id,
        created_by="xiaoli"))
    ctx = await site.signed_in("xiaoli", size)
    page, watch = await visit(ctx, site.url(f"/tickets/{made.id}"))
    try:
        await check_page(page, watch, size, tmp_path / f"complaint-{size}.png",
                         primary=".action-grade button",
                         labels=("投诉等级", "重要投诉", "调整投诉等级"), hidden=(OWNER_MOBILE,))
        assert await page.inner_text("dd.complaint-grade") == "重要投诉"
        await page.select_option('.action-grade select[name="complaint_grade"]', "major")
        await page.fill('.action-grade input[name="reason"]', "业主要投诉到住建局")
        async with page.expect_navigation():
            await page.click(".action-grade button[type=submit]")
        text = await check_page(page, watch, size, tmp_path / f"complaint-major-{size}.png",
                                primary=None, labels=("重大投诉", "业主要投诉到住建局"))
        assert "important" not in text and "major" not in text
        assert await page.inner_text("dd.complaint-grade") == "重大投诉"
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_an_engineer_lands_on_the_tickets_assigned_to_them(
        site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("gong", size)
    page, watch = await visit(ctx, site.url("/"))
    try:
        assert page.url == site.url("/tickets?mine=1")
        await check_page(page, watch, size, tmp_path / f"engineer-home-{size}.png",
                         primary='.filters button[type="submit"]', labels=("工单",))
    finally:
        await page.close()
