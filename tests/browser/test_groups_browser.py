"""Group incidents (群发事件) in a real Chromium at a desk size and a phone size: the
list, the incident with its reporters (numbers masked for the front desk), the ticket
page's 「属于事件」 line, and the supervisor's 办结 form, which moves the reporters'
tickets to 已完工."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.site import SIZES, Site, check, visit
from ticketing.http import TICKETS
from ticketing.services import NewTicket

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CALLERS = ("13711110001", "13711110002")


async def _incident(site: Site) -> tuple[int, list[int]]:
    service = site.app[TICKETS].service
    made = [await service.create(NewTicket(
        source="phone", category="plumbing", summary="8栋停水了", caller_number=number,
        community_id=site.seed.community_id, said_building="8", said_unit="1",
        said_room=f"0{i}01", created_by="xiaoli")) for i, number in enumerate(CALLERS, 1)]
    group_id = made[-1].group_id
    assert group_id is not None
    return group_id, [t.id for t in made]


@pytest.mark.parametrize("size", SIZES)
async def test_group_incident_pages(site: Site, size: str, tmp_path: Path) -> None:
    group_id, tickets = await _incident(site)
    text = await check(site, "xiaoli", size, "/ticket-groups", tmp_path / f"groups-{size}.png",
                       primary='.filters button[type="submit"]',
                       labels=("群发事件", "湖畔花园8栋 给排水", "2 户报告", "处理中"))
    assert "plumbing" not in text
    text = await check(site, "xiaoli", size, f"/ticket-groups/{group_id}",
                       tmp_path / f"group-{size}.png", primary=".action-link button",
                       labels=("报告人", "事件记录", "建立事件", "加入事件", "移出", "137****0001"),
                       hidden=CALLERS)
    text = await check(site, "gong", size, f"/tickets/{tickets[0]}",
                       tmp_path / f"member-{size}.png", primary=None,
                       labels=("属于事件", "湖畔花园8栋 给排水", "2 户报告"))
    # the supervisor closes it from the page
    ctx = await site.signed_in("boss", size)
    page, watch = await visit(ctx, site.url(f"/ticket-groups/{group_id}"))
    try:
        text = await check(site, "boss", size, f"/ticket-groups/{group_id}",
                           tmp_path / f"group-boss-{size}.png", primary=".action-close button",
                           labels=("办结事件", "13711110001"))
        await page.fill('.action-close input[name="note"]', "二次供水泵已修复")
        async with page.expect_navigation():
            await page.click(".action-close button[type=submit]")
        body = await page.inner_text("body")
        assert "已办结" in body and "二次供水泵已修复" in body and "已完工" in body
        watch.assert_clean()
    finally:
        await page.close()
