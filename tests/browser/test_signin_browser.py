"""Sign-in, the way back to the page asked for, and the 403 page, in a real Chromium
at a desk size and a phone size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.site import PASSWORD, SIZES, Site, Watch, check, check_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("size", SIZES)
async def test_sign_in_page_is_chinese_and_its_button_tappable(site: Site, size: str,
                                                               tmp_path: Path) -> None:
    await check(site, None, size, "/login", tmp_path / f"login-{size}.png",
                primary='button[type="submit"]', labels=("登录", "用户名", "密码"))


@pytest.mark.parametrize("size", SIZES)
async def test_wrong_password_is_told_in_chinese_on_the_form(site: Site, size: str,
                                                             tmp_path: Path) -> None:
    ctx = await site.new_context(size)
    page = await ctx.new_page()
    try:
        await page.goto(site.url("/login"))
        # The refused sign-in answers with an error status: the page, not a failure.
        watch = Watch(page, allow_status=(400, 401, 403))
        await page.fill('input[name="username"]', "xiaoli")
        await page.fill('input[name="password"]', PASSWORD + "x")
        await page.click('button[type="submit"]')
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "密码" in await alert.inner_text()
        assert "/login" in page.url
        # The name stays typed in; the password does not.
        assert await page.input_value('input[name="username"]') == "xiaoli"
        assert await page.input_value('input[name="password"]') == ""
        watch.problems = [p for p in watch.problems if "Failed to load resource" not in p]
        await check_page(page, watch, size, tmp_path / f"login-refused-{size}.png",
                         primary='button[type="submit"]')
    finally:
        await ctx.close()


@pytest.mark.parametrize("size", SIZES)
async def test_signed_out_visit_signs_in_and_returns_to_the_page(site: Site, size: str,
                                                                 tmp_path: Path) -> None:
    ctx = await site.new_context(size)
    page = await ctx.new_page()
    watch = Watch(page)
    try:
        await page.goto(site.url("/tickets"))
        assert "/login" in page.url
        await page.fill('input[name="username"]', "gong")
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button[type="submit"]')
        await page.wait_for_url(site.url("/tickets"))
        text = await check_page(page, watch, size, tmp_path / f"back-{size}.png",
                                primary='.filters button[type="submit"]',
                                labels=("工单", "工程"))
        assert "厨房水管漏水" in text
    finally:
        await ctx.close()


@pytest.mark.parametrize("size", SIZES)
async def test_a_page_of_another_role_says_no_in_chinese(site: Site, size: str,
                                                         tmp_path: Path) -> None:
    # An engineer opening the admins' menu page: the 403 page, with a way home.
    text = await check(site, "gong", size, "/admin/ivr", tmp_path / f"forbidden-{size}.png",
                       allow_status=(403,), primary="main a.button",
                       labels=("无权访问", "返回首页", "工程"))
    assert "重新加载菜单" not in text
