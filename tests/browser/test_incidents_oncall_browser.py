"""The emergency pages in a real Chromium at a desk size and a phone size: an
incident's timeline (what the engineer opens from the page's link) and the on-call
table, in Chinese, local times, numbers masked, fitting a phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.site import (
    OWNER_MASKED,
    OWNER_MOBILE,
    SIZES,
    Site,
    check,
    check_page,
    local,
    visit,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_incident_timeline_for_the_engineer(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("gong", size)
    page, watch = await visit(ctx, site.url(f"/incidents/{site.incident_id}"))
    try:
        text = await check_page(page, watch, size, tmp_path / f"incident-{size}.png",
                                primary='form[action$="/ack"] button',
                                labels=("紧急事件", "漏水/水管爆裂", "湖畔花园", "3栋1单元1201室",
                                        "时间线", "报警（热线紧急选项）", OWNER_MASKED,
                                        "我来处理（确认接警）"),
                                hidden=(OWNER_MOBILE,))
        assert local(site.incident_at, "%-m月%-d日") in text
        assert local(site.incident_at, "%H:%M") in text
        assert "其他" not in text  # every outcome has its words
    finally:
        await page.close()


async def test_engineer_acknowledges_from_a_phone(site: Site, tmp_path: Path) -> None:
    ctx = await site.signed_in("gong", "phone")
    page, watch = await visit(ctx, site.url(f"/incidents/{site.incident_id}"))
    try:
        await page.locator('form[action$="/ack"] button').tap()
        await page.wait_for_url(site.url(f"/incidents/{site.incident_id}"))
        await page.get_by_text("GONG 已接警").wait_for()
        text = await check_page(page, watch, "phone", tmp_path / "incident-acked.png",
                                primary='form[action$="/resolve"] button',
                                labels=("已确认接警，呼叫已停止", "接警人", "GONG 已接警（网页）"))
        assert "我来处理" not in text
        # 已解决 from the phone, with a note
        await page.fill('form[action$="/resolve"] input[name="note"]', "已关闭总阀")
        await page.locator('form[action$="/resolve"] button').tap()
        await page.get_by_role("status").wait_for()
        text = await check_page(page, watch, "phone", tmp_path / "incident-resolved.png",
                                primary=None, labels=("已标记为已解决", "已解决"))
        assert "已解决" in await page.inner_text("#incident-state")
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_the_incident_list(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("laowang", size)
    page, watch = await visit(ctx, site.url("/incidents"))
    try:
        await check_page(page, watch, size, tmp_path / f"incidents-{size}.png",
                         primary=f'[data-incident="{site.incident_id}"] a',
                         labels=("紧急事件", "漏水/水管爆裂", "湖畔花园"))
        await page.locator(f'[data-incident="{site.incident_id}"] a').click()
        await page.wait_for_url(site.url(f"/incidents/{site.incident_id}"))
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_on_call_table(site: Site, size: str, tmp_path: Path) -> None:
    text = await check(site, "laowang", size, "/oncall", tmp_path / f"oncall-{size}.png",
                       primary=None,
                       labels=("湖畔花园 · 值班表（未来14天）", "夜班值守", "当前值班", "LAOWANG",
                               "主值班", "夜班", "白班", "18:00–08:30", "周"))
    assert "GONG" in text


@pytest.mark.parametrize("size", SIZES)
async def test_night_dutys_home(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("laowang", size)
    page, watch = await visit(ctx, site.url("/"))  # the role's home
    try:
        assert page.url == site.url("/duty")
        await check_page(page, watch, size, tmp_path / f"duty-{size}.png",
                         primary='.duty-links a[href="/incidents"]',
                         labels=("夜班值守", "紧急事件", "未接来电", "湖畔花园 · 当前值班", "LAOWANG（我）",
                                 "全部紧急事件"))
        assert "就绪" not in await page.inner_text("main")  # no queue controls for night duty
    finally:
        await page.close()
