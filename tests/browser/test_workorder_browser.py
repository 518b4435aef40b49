"""A work order through the pages in a real Chromium: the front desk files a walk-in
about a common area with the 新建工单 form (desk size), dispatches it to 工程部's
on-call person, the engineer takes it, arrives and finishes with a photo (phone
size), the 回访 gives 2 分 so 归档 is refused until the supervisor's callback is done."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.appkeys import SESSIONMAKER
from callcenter.directory.models import Community
from tests.browser.site import Site, check_page, visit
from ticketing.departments import MemberInput, put_department

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def submit(page: object, form: str) -> None:
    async with page.expect_navigation():  # type: ignore[attr-defined]
        await page.click(f"{form} button[type=submit]")  # type: ignore[attr-defined]


async def test_a_work_order_from_the_form_to_the_archive(site: Site, tmp_path: Path) -> None:
    async with site.app[SESSIONMAKER]() as s:
        hupan = (await s.scalars(select(Community.id).where(Community.code == "hupan"))).one()
        await put_department(s, hupan, "engineering", name="工程部", oncall_role="engineer",
                             members=[MemberInput(site.seed.staff["gong"], head=False)])
        await s.commit()

    desk = await site.signed_in("xiaoli", "desk")
    page, watch = await visit(desk, site.url("/tickets"))
    await check_page(page, watch, "desk", tmp_path / "new-ticket.png",
                     primary=".new-ticket-form button[type=submit]",
                     labels=("新建工单", "来访", "公共区域", "地下车库"))
    await page.select_option('.new-ticket-form select[name="source"]', "wechat")
    await page.select_option('.new-ticket-form select[name="category"]', "parking")
    await page.check('.new-ticket-form input[name="place"][value="area"]')
    await page.select_option('.new-ticket-form select[name="common_area"]', "地下车库")
    await page.fill('.new-ticket-form input[name="caller_name"]', "张先生")
    await page.fill('.new-ticket-form input[name="summary"]', "地下车库B2入口积水")
    await page.click(".new-ticket-form button[type=submit]")
    await page.wait_for_url(re.compile(r"/tickets/\d+$"))
    match = re.search(r"/tickets/(\d+)$", page.url)
    assert match, (page.url, (await page.inner_text("body"))[:600])
    ticket_url = page.url
    text = await page.inner_text("body")
    assert "湖畔花园地下车库" in text and "新建" in text and "微信" in text

    await page.select_option('.action-dispatch select[name="assignee"]', "engineering:oncall")
    await submit(page, ".action-dispatch")
    text = await page.inner_text("body")
    assert "已派单" in text and "派给工程部 GONG（部门当前值班）" in text
    await page.close()

    phone = await site.signed_in("gong", "phone")
    page, watch = await visit(phone, ticket_url)
    await check_page(page, watch, "phone", tmp_path / "engineer-accept.png",
                     primary=".action-accept button[type=submit]", labels=("接单", "退单"))
    await submit(page, ".action-accept")
    await submit(page, ".action-arrive")
    photo = tmp_path / "site-photo.png"
    photo.write_bytes(png_1x1())
    await page.fill('.action-complete input[name="note"]', "疏通排水沟，已无积水")
    await page.fill('.action-complete input[name="cost"]', "0")
    picker = page.locator('.action-complete input[name="photo"]')
    await picker.set_input_files(str(photo))
    assert await picker.evaluate("(el) => el.files.length") == 1
    await submit(page, ".action-complete")
    await check_page(page, watch, "phone", tmp_path / "engineer-done.png", primary=None,
                     labels=("已完工", "现场照片", "疏通排水沟，已无积水", "照片 1 张"))
    width = await page.locator(".photos img").first.evaluate("(img) => img.naturalWidth")
    assert width == 1  # the stored photo is served back as the image it was
    await page.close()

    page, watch = await visit(desk, ticket_url, allow_status=(409,))
    await page.select_option('.action-follow_up select[name="score"]', "2")
    await page.check('.action-follow_up input[name="resolved"][value="yes"]')
    await page.fill('.action-follow_up input[name="comment"]', "处理太慢")
    await submit(page, ".action-follow_up")
    text = await page.inner_text("body")
    assert "有待完成的主管回访任务" in text and "满意度 2 分，已解决" in text
    await submit(page, ".action-archive")
    assert "主管回访任务未完成，不能归档" in await page.inner_text("body")
    await page.close()

    boss = await site.signed_in("boss", "desk")
    page, watch = await visit(boss, ticket_url)
    await page.fill('.action-callback_done input[name="note"]', "主管致电致歉，业主满意")
    await submit(page, ".action-callback_done")
    await page.close()

    page, watch = await visit(desk, ticket_url)
    await submit(page, ".action-archive")
    text = await check_page(page, watch, "desk", tmp_path / "archived.png", primary=None,
                            labels=("已归档", "重开", "派单", "接单", "到场", "完工",
                                    "回访", "完成回访任务", "归档", "（工程人员）", "（主管）"))
    assert text.count("主管致电致歉，业主满意") == 2  # the callback task and its log row
    await page.close()
