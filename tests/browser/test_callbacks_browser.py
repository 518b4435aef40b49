"""The 未接来电回拨 page in a real Chromium at a desk size and a phone size: zh-CN,
local times, waits as 分:秒, the number masked for an agent, no codes, the 回拨 button
big enough to tap; the top bar's count of open entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from callcenter.appkeys import CALLBACKS, CLOCK
from tests.browser.site import OWNER_MASKED, OWNER_MOBILE, SIZES, Site, check, local, visit

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


SEEDED: dict[str, datetime] = {}


async def _entries(site: Site) -> None:
    service = site.app[CALLBACKS]
    if SEEDED:
        return
    now = SEEDED["at"] = site.app[CLOCK].now()
    for linkedid, number, minutes, data in (
            ("cb-1", OWNER_MOBILE, 50, {"outcome": "abandoned", "queue": "frontdesk",
                                        "wait_s": 65.4, "ivr_path": ["人工服务"]}),
            ("cb-2", OWNER_MOBILE, 20, {"outcome": "ivr_only", "ivr_path": ["报修", "水电"]}),
            ("cb-3", "13700002222", 10, {"outcome": "ivr_only", "ivr_path": ["物业费"]})):
        started = now - timedelta(minutes=minutes)
        await service.missed({"linkedid": linkedid, "asterisk": "pbx1", "started_at": started,
                              "ended_at": started + timedelta(seconds=70), **data},
                             community="hupan", number="+86" + number, at=now)


@pytest.mark.parametrize("size", SIZES)
async def test_the_callback_worklist_of_an_agent(site: Site, size: str, tmp_path: Path) -> None:
    await _entries(site)
    text = await check(site, "xiaoli", size, "/callbacks", tmp_path / f"callbacks-{size}.png",
                       primary='form[action$="/call"] button',
                       labels=("未接来电回拨", "2 条待回拨", "张伟", "李娜", OWNER_MASKED,
                               "2 次", "排队等待 1:05 后挂机", "在语音导航中挂机",
                               "报修 → 水电", "回拨", "标记已处理", "已联系", "湖畔花园"),
                       hidden=(OWNER_MOBILE, "13700002222"))
    assert local(SEEDED["at"] - timedelta(minutes=50), "%H:%M:%S") in text  # Shanghai time


async def test_the_top_bar_counts_the_open_entries_on_the_agent_desk(site: Site) -> None:
    await _entries(site)
    ctx = await site.signed_in("xiaoli", "desk")
    page, watch = await visit(ctx, site.url("/agent"))
    try:
        badge = page.locator("[data-callback-count]")
        await badge.wait_for(state="visible", timeout=10000)
        assert (await badge.inner_text()).strip() == "2"
        watch.assert_clean()
    finally:
        await page.close()
