"""The admins' pages in a real Chromium at a desk size and a phone size: hotline
menus and holidays (/admin/ivr), the access audit, and the API documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.site import SIZES, Site, check, check_page, visit

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_hotline_menus_and_holidays(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("root", size)
    page, watch = await visit(ctx, site.url("/admin/ivr"))
    try:
        await check_page(page, watch, size, tmp_path / f"ivr-{size}.png",
                         primary='form[action="/admin/ivr/reload"] button',
                         labels=("语音导航菜单", "当前版本", "节假日数据", "上班时间", "节假日", "通用菜单",
                                 "各时段入口"))
        version = int((await page.inner_text("#menu-version")).split()[1])
        # Reloading (from the phone too) says so.
        await page.locator('form[action="/admin/ivr/reload"] button').click()
        notice = page.get_by_role("status")
        await notice.wait_for()
        assert (await notice.inner_text()).startswith(f"菜单已重新加载：第 {version + 1} 版")
        await check_page(page, watch, size, tmp_path / f"ivr-reloaded-{size}.png",
                         primary='form[action="/admin/ivr/reload"] button')
    finally:
        await page.close()


@pytest.mark.parametrize("size", SIZES)
async def test_access_audit(site: Site, size: str, tmp_path: Path) -> None:
    # A search by an agent leaves a line in the audit.
    await check(site, "xiaoli", size, "/search?q=%E7%8E%8B", tmp_path / f"search-{size}.png",
                primary='main form button[type="submit"]', labels=("王芳",))
    text = await check(site, "root", size, "/admin/audit?username=xiaoli",
                       tmp_path / f"audit-{size}.png",
                       primary='.filters button[type="submit"]',
                       labels=("访问审计", "导出 CSV", "xiaoli", "查找"))
    assert "张伟" not in text  # the audit names people by number only


@pytest.mark.parametrize("size", SIZES)
async def test_api_documentation(site: Site, size: str, tmp_path: Path) -> None:
    # A developers' page: field names and enum values are its content.
    text = await check(site, "root", size, "/api/docs", tmp_path / f"docs-{size}.png",
                       primary=None, raw_codes=False,
                       labels=("OpenAPI 3.1", "参数 / parameters", "数据模型 / models"))
    assert "/api/openapi.json" in text


@pytest.mark.parametrize("size", SIZES)
async def test_holidays_year_and_a_day_added(site: Site, size: str, tmp_path: Path) -> None:
    ctx = await site.signed_in("root", size)
    year = 2027 if size == "desk" else 2028  # each size its own year: the file is shared
    page, watch = await visit(ctx, site.url(f"/admin/holidays?year={year}"))
    try:
        await check_page(page, watch, size, tmp_path / f"holidays-{size}.png",
                         primary="#add-day button",
                         labels=(f"{year} 年节假日与调休", "暂定（推算）", "国庆节", "放假",
                                 "添加或修改一天", "导入节假日文件"))
        await page.fill('#add-day input[name="date"]', f"{year}-10-09")
        await page.select_option('#add-day select[name="kind"]', "workday")
        await page.fill('#add-day input[name="name"]', "国庆节调休")
        await page.locator("#add-day button").click()
        notice = page.get_by_role("status")
        await notice.wait_for()
        assert await notice.inner_text() == "已保存这一天"
        row = page.locator(f'tr[data-date="{year}-10-09"]')
        assert "调休上班" in await row.inner_text()
        await check_page(page, watch, size, tmp_path / f"holidays-added-{size}.png",
                         primary="#add-day button")
    finally:
        await page.close()
