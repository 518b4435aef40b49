"""Every HTML page of the whole server (``create_app``), found in ``app.router``:

* a browser that is not signed in gets a 302 to the sign-in page, with the page
  as a same-origin ``next=``; an API client asking for JSON gets the JSON 401;
* signed in, the page comes with the security headers (CSP, no framing, no
  caching, no sniffing, same-origin referrer), and so do the sign-in page, the
  403 page and the API docs;
* a JSON API route stays a JSON 401 even when the client says it wants HTML.

A new page is walked without anyone adding it here; a path parameter nobody
filled in fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.settings import DatabaseSettings, FastAgiSettings, Settings
from callcenter.web.templating import SECURITY_HEADERS
from tests.console.helpers import PASSWORD, login, seed_directory, serving
from tests.paging.conftest import ScriptedOriginator

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
API_CLIENT = {"Accept": "application/json"}
NOT_PAGES = ("/api/", "/static", "/ws/", "/healthz", "/metrics", "/recordings/")
# Downloads, guarded like the pages (a photo is an <img> inside a signed-in page).
NOT_HTML = {"/admin/audit.csv", "/outbound/campaigns/{campaign_id}.csv",
            "/outbound/campaigns/{campaign_id}.xlsx", "/tickets/{ticket_id}/photos/{photo_id}", "/reports/calls.csv",
            "/reports/calls.xlsx", "/reports/kpi.csv"}
PUBLIC = {"/login", "/api/docs"}
# The pages there are: a page missing here, or one here that is gone, fails the test.
PAGES = {"/", "/agent", "/history", "/search", "/supervisor", "/admin/audit", "/admin/ivr",
         "/admin/holidays",
         "/tickets", "/tickets/{ticket_id}", "/incidents", "/incidents/{incident_id}", "/duty",
         "/oncall", "/reports", "/reports/kpi", "/ticket-groups", "/ticket-groups/{group_id}",
         "/callbacks", "/outbound", "/outages"}


@dataclass
class Site:
    client: TestClient  # type: ignore[type-arg]
    params: dict[str, str]
    bearer: dict[str, str]


@pytest.fixture
async def site(db_url: str, tmp_path: Path, sessionmaker: Any) -> AsyncIterator[Site]:
    await seed_directory(sessionmaker)
    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=db_url),
                        default_community="hupan", fastagi=FastAgiSettings(enabled=False))
    app = create_app(settings, originator=ScriptedOriginator(), transcribe=False)
    async with serving(app) as client:
        async with app[SESSIONMAKER]() as s:
            sup = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}
        ticket = await client.post("/api/tickets", headers=sup, json={
            "category": "plumbing", "summary": "厨房漏水", "community": "hupan"})
        # a second report of the same: a group incident (群发事件) for its pages
        second = await client.post("/api/tickets", headers=sup, json={
            "category": "plumbing", "summary": "也漏水", "community": "hupan"})
        assert second.status == 201 and (await second.json())["group_id"], await second.text()
        incident = await client.post("/api/incidents", headers=sup, json={
            "community": "hupan", "category": "fire", "building": "3"})
        assert ticket.status == 201 and incident.status == 201, await incident.text()
        yield Site(client, {"ticket_id": str((await ticket.json())["id"]),
                            "incident_id": str((await incident.json())["incident_id"]),
                            "group_id": str((await second.json())["group_id"])}, sup)


def html_get_routes(site: Site) -> dict[str, str]:
    """``{route: path to request}`` for every GET route that answers with a page."""
    out = {}
    for route in site.client.app.router.routes():
        info = route.resource.canonical if route.resource else ""
        if route.method != "GET" or info in NOT_HTML or (
                info.startswith(NOT_PAGES) and info not in PUBLIC):
            continue
        path = info
        for name, value in site.params.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"fill in the path parameter of {info}"
        out[info] = path
    return out


def assert_page_headers(headers: Any, what: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (what, name, headers.get(name))
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


async def test_signed_out_browsers_are_sent_to_sign_in_and_api_clients_get_401(
        site: Site) -> None:
    routes = html_get_routes(site)
    assert set(routes) == PAGES | PUBLIC
    client = site.client
    for info, path in routes.items():
        if info in PUBLIC:
            continue
        async with client.get(path, headers=BROWSER, allow_redirects=False) as r:
            assert r.status == 302, path
            expected = "/login" if path == "/" else f"/login?next={path}"
            assert r.headers["Location"] == expected, path
        async with client.get(path, headers=API_CLIENT, allow_redirects=False) as r:
            assert r.status == 401 and r.content_type == "application/json", path
            assert (await r.json())["error"] == "unauthorized"
    # A page's query comes back with it, percent-encoded where it must be.
    async with client.get("/oncall?community=hupan&role=night_duty", headers=BROWSER,
                          allow_redirects=False) as r:
        assert r.headers["Location"] == "/login?next=/oncall?community=hupan%26role=night_duty"
    # The JSON API answers JSON whatever the client says it accepts.
    for path in ("/api/tickets", f"/api/incidents/{site.params['incident_id']}",
                 "/api/oncall/now?role=night_duty", "/api/calls"):
        async with client.get(path, headers=BROWSER, allow_redirects=False) as r:
            assert r.status == 401 and r.content_type == "application/json", path


async def test_every_page_carries_the_security_headers(site: Site) -> None:
    client = site.client
    for path in ("/login", "/api/docs"):
        async with client.get(path, headers=BROWSER) as r:
            assert r.status == 200 and r.content_type == "text/html", path
            assert_page_headers(r.headers, path)
    await login(client, "root")  # an admin may open every page
    for info, path in html_get_routes(site).items():
        if info in ("/", "/login"):
            continue  # they send a signed-in admin on to /supervisor
        async with client.get(path, headers=BROWSER, allow_redirects=False) as r:
            assert r.status == 200 and r.content_type == "text/html", (path, await r.text())
            assert_page_headers(r.headers, path)
            text = await r.text()
            assert "<style" not in text and " style=" not in text, path  # CSP: style-src 'self'
    # The 403 page (an agent on the supervisors' wall) has them too.
    client.session.cookie_jar.clear()
    await login(client, "xiaoli")
    async with client.get("/supervisor", headers=BROWSER) as r:
        assert r.status == 403 and r.content_type == "text/html"
        assert_page_headers(r.headers, "403")


async def test_the_incident_page_signs_in_and_comes_back(site: Site) -> None:
    """Paged at night, the engineer opens the link from the SMS, signs in and lands on it."""
    client = site.client
    path = f"/incidents/{site.params['incident_id']}"
    async with client.get(path, headers=BROWSER) as r:  # redirects followed
        assert r.status == 200 and r.url.path == "/login"
        text = await r.text()
    assert f'name="next" value="{path}"' in text
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert csrf
    async with client.post("/login", headers=BROWSER, allow_redirects=False, data={
            "username": "gong", "password": PASSWORD, "csrf_token": csrf.group(1),
            "next": path}) as r:
        assert r.status == 302 and r.headers["Location"] == path
    async with client.get(path, headers=BROWSER) as r:
        assert r.status == 200 and "紧急事件" in await r.text()
