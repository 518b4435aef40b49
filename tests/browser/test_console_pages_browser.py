"""The console's pages (坐席台, 查找业主, 通话记录, 监控墙) in a real Chromium at a
desk size and a phone size: zh-CN, local times, durations as 分:秒, numbers masked
for agents and shown to supervisors, nothing wider than a phone."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.browser.site import (
    OWNER_MASKED,
    OWNER_MOBILE,
    SIZES,
    TENANT_MOBILE,
    Site,
    check,
    check_page,
    local,
    visit,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_agent_desk(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("xiaoli", size)
    page, watch = await visit(ctx, site.url("/agent"))
    try:
        await page.wait_for_selector('body[data-ws="online"]', timeout=10000)
        text = await check_page(page, watch, size, tmp_path / f"agent-{size}.png",
                                primary='#status-form button[value="ready"]',
                                labels=("当前状态", "未就绪", "暂无来电", "最近通话", "已接听"),
                                hidden=(OWNER_MOBILE, TENANT_MOBILE))
        assert local(site.seeded_at - timedelta(minutes=30)) in text
        # Every state button is big enough for a thumb, and the search box beside them.
        if size == "phone":
            for button in await page.locator("#status-form button").all():
                box = await button.bounding_box()
                assert box is not None and box["height"] >= 40, box
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_owner_search_masks_numbers_for_an_agent(site: Site, size: str,
                                                       tmp_path: Path) -> None:
    text = await check(site, "xiaoli", size, "/search?q=%E5%BC%A0", tmp_path / f"search-{size}.png",
                       primary='main form button[type="submit"]',
                       labels=("张伟", "业主", "湖畔花园3栋1单元1201室", "1200.50 元", "VIP",
                               OWNER_MASKED, "呼叫"),
                       hidden=(OWNER_MOBILE,))
    assert "1 人" in text


@pytest.mark.parametrize("size", SIZES)
async def test_call_log_of_an_agent(site: Site, size: str, tmp_path: Path) -> None:
    text = await check(site, "xiaoli", size, "/history", tmp_path / f"history-{size}.png",
                       primary=None,
                       labels=("通话记录", OWNER_MASKED, "报修 › 水电", "已接听", "来电放弃",
                               "留言", "语音自助"),
                       hidden=(OWNER_MOBILE, TENANT_MOBILE))
    # Waits as 分:秒 (75.4 s → 1:15, 130 s → 2:10), times in Shanghai.
    assert "1:15" in text and "2:10" in text and "0:41" in text, text
    assert local(site.seeded_at - timedelta(minutes=95)) in text


@pytest.mark.parametrize("size", SIZES)
async def test_call_log_of_everyone_shows_a_supervisor_full_numbers(site: Site, size: str,
                                                                    tmp_path: Path) -> None:
    text = await check(site, "boss", size, "/history?all=1", tmp_path / f"history-all-{size}.png",
                       primary=None, labels=("通话记录", "只看我的", "XIAOLI", "已接听"))
    assert OWNER_MOBILE in text and TENANT_MOBILE in text


@pytest.mark.parametrize("size", SIZES)
async def test_supervisor_wall(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url("/supervisor"))
    try:
        await page.wait_for_selector('body[data-ws="online"]', timeout=10000)
        # The live wall fills the agents' table; their times count in 分:秒.
        agents = page.locator("#wall-agents")
        await agents.get_by_text("XIAOLI").wait_for(timeout=10000)
        text = await check_page(page, watch, size, tmp_path / f"wall-{size}.png",
                                primary=None,
                                labels=("今日来电", "已接听", "放弃", "平均等待", "排队等待",
                                        "坐席状态"))
        assert "(秒)" not in text
        avg = await page.locator('#today [data-k="avg_wait_s"]').inner_text()
        assert re.fullmatch(r"\d+:\d{2}", avg), avg
        since = await agents.locator("tr td:nth-child(4)").first.inner_text()
        assert since.count(":") == 1 and since.split(":")[1].isdigit(), since
    finally:
        await page.close()
