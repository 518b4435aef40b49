"""One seeded server and one real Chromium per test module, and the checks every page
gets at a desk size (1280×800) and a phone size (390×844).

The server is the whole application (``create_app``) on a fresh SQLite file, seeded
with 湖畔花园 (``tests.console.helpers.seed_directory``: owners, staff of every role),
tickets (one waiting for someone to listen to its recording), finished calls, on-call
schedules and an open incident. Staff sign in through the real sign-in form.

``visit`` opens a page and watches it: console errors, uncaught exceptions, failed
requests and error responses fail the test; ``check_page`` asserts what every page
owes its users (zh-CN, no raw codes or ISO times, masked numbers where the role's
rules say, and at phone size no sideways scroll, a primary action big enough to tap,
controls neither clipped nor overlapping) and saves a screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from callcenter.app import create_app
from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER
from callcenter.calls.models import CallLog
from callcenter.oncall.services import ChainSpec, ShiftInput, create_schedule
from callcenter.paging.http import PAGING_SERVICE
from callcenter.paging.services import IncidentRequest
from callcenter.settings import FastAgiSettings
from tests.console.helpers import (
    OWNER_MOBILE,
    PASSWORD,
    TENANT_MOBILE,
    Seed,
    make_settings,
    seed_directory,
)
from ticketing.models import Ticket
from ticketing.services import NewTicket, TicketService

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--lang=zh-CN"]
DESK = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = {"desk": DESK, "phone": PHONE}
ZH_ENV = {"LANG": "zh_CN.UTF-8", "LANGUAGE": "zh_CN:zh", "TZ": "Asia/Shanghai"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
OWNER_MASKED = "138****5678"
TENANT_MASKED = "139****1111"
LISTEN_NOTICE = "留言无法识别，已通知夜班值班人员 LAOWANG 收听录音"

# Values the code stores that users must never read: states, categories, outcomes,
# roles, sources, as the database and the JSON API spell them.
RAW_CODES = (
    "not_ready", "wrap_up", "in_progress", "followed_up", "reopened", "dispatched",
    "plumbing", "electrical", "elevator", "door_access", "public_facility",
    "ivr_only", "abandoned", "voicemail", "no_answer", "night_duty", "supervisor",
    "engineer", "frontdesk_", "emergency", "acknowledged", "resolved", "primary",
    "backup", "office", "weekend", "holiday", "None", "null", "undefined", "NaN",
)
_RAW = re.compile(r"(?<![A-Za-z_])(" + "|".join(RAW_CODES) + r")(?![A-Za-z_])")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Site:
    base: str
    app: web.Application
    browser: Any
    seed: Seed
    shots: Path
    tickets: dict[str, int] = field(default_factory=dict)
    incident_id: int = 0
    incident_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seeded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _contexts: dict[tuple[str, str], Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    async def new_context(self, size: str) -> Any:
        return await self.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                              viewport=SIZES[size], has_touch=size == "phone",
                                              is_mobile=size == "phone",
                                              device_scale_factor=1)

    async def signed_in(self, username: str, size: str) -> Any:
        """A browser context of ``username`` at ``size``, signed in through the form
        once and reused by the module's tests."""
        key = (username, size)
        if key not in self._contexts:
            ctx = await self.new_context(size)
            page = await ctx.new_page()
            watch = Watch(page)
            await page.goto(self.url("/login"))
            await page.fill('input[name="username"]', username)
            await page.fill('input[name="password"]', PASSWORD)
            await page.click('button[type="submit"]')
            await page.wait_for_load_state("load")
            assert "/login" not in page.url, await page.inner_text("body")
            watch.assert_clean()
            await page.close()
            self._contexts[key] = ctx
        return self._contexts[key]

    async def close(self) -> None:
        for ctx in self._contexts.values():
            await ctx.close()


class Watch:
    """Console errors, uncaught exceptions, failed requests and HTTP errors of a page."""

    def __init__(self, page: Any, *, allow_status: Iterable[int] = ()) -> None:
        self.problems: list[str] = []
        self.allow = set(allow_status)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg: Any) -> None:
        status = _LOAD_FAILED.search(msg.text)
        if status and int(status.group(1)) in self.allow:
            return  # the page's own status, allowed: logged by Chromium as well
        if msg.type in ("error", "warning"):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def _failed(self, request: Any) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and request.resource_type == "websocket":
            return  # the console's socket, closed by the test leaving the page
        self.problems.append(f"request failed: {request.method} {request.url} {failure}")

    def _response(self, resp: Any) -> None:
        if resp.status >= 400 and resp.status not in self.allow:
            self.problems.append(f"HTTP {resp.status}: {resp.request.method} {resp.url}")

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def local(at: datetime, fmt: str = "%m-%d %H:%M") -> str:
    """``at`` as the pages write it: Shanghai time."""
    return at.astimezone(SHANGHAI).strftime(fmt)


async def check(site: Site, username: str | None, size: str, path: str, shot: Path, *,
                allow_status: Iterable[int] = (), **checks: Any) -> str:
    """Open ``path`` as ``username`` (None: signed out) at ``size``, run
    ``check_page`` on it and close it; the page's visible text."""
    ctx = await site.signed_in(username, size) if username else await site.new_context(size)
    page, watch = await visit(ctx, site.url(path), allow_status=allow_status)
    try:
        return await check_page(page, watch, size, shot, **checks)
    finally:
        await page.close()
        if username is None:
            await ctx.close()


async def visit(ctx: Any, url: str, *, allow_status: Iterable[int] = ()) -> tuple[Any, Watch]:
    page = await ctx.new_page()
    watch = Watch(page, allow_status=allow_status)
    await page.goto(url)
    await page.wait_for_load_state("load")
    return page, watch


async def check_page(page: Any, watch: Watch, size: str, shot: Path, *,
                     primary: str | None, labels: Iterable[str] = (),
                     hidden: Iterable[str] = (), raw_codes: bool = True) -> str:
    """The checks every page gets; returns the page's visible text.

    ``primary`` is the selector of the page's main action, ``labels`` zh-CN texts
    that must be visible, ``hidden`` texts (full numbers) that must not be."""
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)
    assert await page.get_attribute("html", "lang") == "zh-CN"
    text = await page.inner_text("body")
    assert len(_HAN.findall(text)) >= 4, text[:500]
    for label in labels:
        assert label in text, f"{label!r} not on the page"
    for secret in hidden:
        assert secret not in text, f"{secret!r} shown on the page"
    iso = _ISO.search(text)
    assert iso is None, f"ISO timestamp shown: {iso.group(0)!r}"
    if raw_codes:
        raw = _RAW.search(text)
        assert raw is None, f"raw value shown: {raw.group(0)!r} in …{text[max(0, raw.start() - 40):raw.end() + 40]}…"
    if primary is not None:
        target = page.locator(primary).first
        assert await target.is_visible(), f"{primary} is not visible"
    if size == "phone":
        await _check_phone(page, primary)
    watch.assert_clean()
    return text


async def _check_phone(page: Any, primary: str | None) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scroll: the page is {width}px wide"
    if primary is not None:
        target = page.locator(primary).first
        await target.scroll_into_view_if_needed()
        box = await target.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        assert box["height"] >= 40, f"{primary} is {box['height']:.0f}px tall, too small to tap"
        # Nothing covers it: a tap on its middle reaches it.
        hit = await target.evaluate(
            """(el) => { const r = el.getBoundingClientRect();
                         const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                         return at === el || el.contains(at); }""")
        assert hit, f"{primary} is covered by another element"
    problems = await page.evaluate(_CONTROLS_JS)
    assert not problems, "\n".join(problems)


# Main controls: text not clipped (the box wide enough for its text), inside the
# screen, and no two overlapping.
_CONTROLS_JS = """() => {
  const sel = 'button, a.button, input:not([type=hidden]), select, textarea, .topbar a, .topbar .who, .topbar .role';
  const els = [...document.querySelectorAll(sel)].filter((el) => {
    const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden';
  });
  const name = (el) => `${el.tagName.toLowerCase()}${el.name ? '[name=' + el.name + ']' : ''} "${(el.innerText || el.value || el.placeholder || '').trim().slice(0, 20)}"`;
  const out = [];
  const vw = document.documentElement.clientWidth;
  for (const el of els) {
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > vw + 1) out.push(`${name(el)} sticks out of the screen (${Math.round(r.left)}..${Math.round(r.right)})`);
    if (['BUTTON', 'A', 'SPAN'].includes(el.tagName) && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)
      out.push(`${name(el)} clips its text (${el.scrollWidth} > ${el.clientWidth})`);
  }
  for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
    const a = els[i].getBoundingClientRect(), b = els[j].getBoundingClientRect();
    if (els[i].contains(els[j]) || els[j].contains(els[i])) continue;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 2 && h > 2) out.push(`${name(els[i])} overlaps ${name(els[j])}`);
  }
  return out;
}"""


async def _seed(app: web.Application, seed: Seed, site: Site) -> None:
    sm = app[SESSIONMAKER]
    now = site.seeded_at = app[CLOCK].now()
    service = TicketService(sm, app[BUS], app[CLOCK], timezone="Asia/Shanghai")
    made = await service.create(NewTicket(
        source="agent", category="plumbing", summary="厨房水管漏水", priority="normal",
        caller_number=OWNER_MOBILE, caller_name="张伟", room_id=seed.rooms["3-1-1201"],
        person_id=seed.people["张伟"], created_by="xiaoli",
        description=f"业主来电（{OWNER_MOBILE}）：厨房水槽下水管接口漏水，请尽快上门。"))
    site.tickets["agent"] = made.id
    made = await service.create(NewTicket(
        source="voicemail", category="other", summary="语音留言（未能识别）",
        caller_number=TENANT_MOBILE, room_id=seed.rooms["5-2-0301"],
        person_id=seed.people["王芳"], created_by="voicemail"))
    site.tickets["listen"] = made.id
    made = await service.create(NewTicket(
        source="agent", category="elevator", summary="5栋电梯困人", priority="emergency",
        caller_number=TENANT_MOBILE, room_id=seed.rooms["5-2-0301"], created_by="xiaoli"))
    site.tickets["emergency"] = made.id
    await service.transition(made.id, "dispatched", actor="boss", note="已派工程部陈师傅")
    async with sm() as s:
        await s.execute(update(Ticket).where(Ticket.id == site.tickets["listen"]).values(
            needs_listen=True, listen_notice=LISTEN_NOTICE, listen_notified_at=now))
        for i, (minutes, outcome, wait, number, name, path) in enumerate((
                (30, "answered", 75.4, OWNER_MOBILE, "张伟", ["报修", "水电"]),
                (95, "abandoned", 41.0, TENANT_MOBILE, "王芳", ["人工服务"]),
                (200, "voicemail", 130.0, OWNER_MOBILE, "张伟", ["报修", "门窗门禁", "留言"]),
                (400, "ivr_only", 0.0, "13700002222", "李娜", ["物业费"]))):
            at = now - timedelta(minutes=minutes)
            answered = outcome == "answered"
            s.add(CallLog(linkedid=f"seed-{i}", asterisk="pbx1", community="hupan",
                          caller_number="+86" + number, caller_name=name, ivr_path=path,
                          rung=[{"target": "8001", "member_name": "XIAOLI"}],
                          answered_by="XIAOLI" if answered else None, started_at=at,
                          answered_at=at + timedelta(seconds=wait) if answered else None,
                          ended_at=at + timedelta(minutes=3), wait_s=wait,
                          talk_s=104.0 if answered else None, outcome=outcome))
        await s.commit()
        today = now.date()
        staff = seed.staff
        await create_schedule(s, community="hupan", role="night_duty", shifts=[
            ShiftInput("夜班", "18:00", "08:30", [staff["laowang"]], today)], chain=[
            ChainSpec(0, "primary", "rotation", 0),
            ChainSpec(1, "supervisor", "user", user_id=staff["boss"])])
        await create_schedule(s, community="hupan", role="engineer", shifts=[
            ShiftInput("白班", "08:30", "18:00", [staff["gong"]], today - timedelta(days=3)),
            ShiftInput("夜间", "18:00", "08:30", [staff["gong"]], today)], chain=[
            ChainSpec(0, "primary", "rotation", 0)])
    site.incident_at = app[CLOCK].now()
    opened = await app[PAGING_SERVICE].open_incident(IncidentRequest(
        community="hupan", category="plumbing", source="ivr", building="3", unit="1",
        room="1201", summary="3栋1单元1201 厨房水管爆裂", caller_number="+86" + OWNER_MOBILE))
    site.incident_id = opened.incident_id


@asynccontextmanager
async def running_site(tmp: Path) -> AsyncIterator[Site]:
    """The seeded server and a Chromium, for one test module."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    db = tmp / "site.sqlite3"
    # No FastAGI listener: the pages need none, and a fixed port would collide with
    # another suite running on the machine.
    settings = replace(make_settings(f"sqlite:///{db}", tmp), default_community="hupan",
                       fastagi=FastAgiSettings(enabled=False))
    app = create_app(settings, transcribe=False)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        seed = await seed_directory(app[SESSIONMAKER])
        async with async_playwright() as pw:
            # Chromium takes its language (date inputs' 年/月/日) from LANG.
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=ARGS, env={**os.environ, **ZH_ENV})
            site = Site(base=str(server.make_url("/")).rstrip("/"), app=app,
                        browser=browser, seed=seed, shots=tmp / "shots")
            try:
                await _seed(app, seed, site)
                yield site
            finally:
                await site.close()
                await browser.close()
    finally:
        await server.close()

