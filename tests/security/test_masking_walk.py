"""Every route of the whole server, as every role, signed in and by API token:
no owner's full number where the rules mask it, and the full number where they
do not (so masking everything cannot pass).

The server is ``create_app`` against the Asterisk stand-in over real sockets, on
SQLite and PostgreSQL, with owners whose numbers are known, calls in the call
log (one still waiting in the queue), tickets whose text holds the numbers in
many spellings, and an incident. Routes come from ``app.router``: a new route is
walked without anyone adding it here (a path parameter nobody filled in fails
the test, so its value is chosen on purpose).
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from callcenter.app import create_app
from callcenter.appkeys import CALLBACKS, SESSIONMAKER
from callcenter.auth.sessions import SESSION_COOKIE
from callcenter.auth.tokens import create_token
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.demo import demo_settings
from callcenter.directory.models import Person, PersonPhone, PersonRoom
from callcenter.outbound.models import OutboundCampaign, OutboundJob
from callcenter.settings import DatabaseSettings, Secret
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, Wait
from tests.console.helpers import OWNER_MOBILE, TENANT_MOBILE, Seed, login, seed_directory, serving

FAMILY_MOBILE = "13700002222"
LANDLINE = "075526543210"
UNKNOWN_CALLER = "13566667777"
HOTLINE = "075588886666"
# What each number looks like with every separator, prefix and the trunk 0 taken off.
OWNER_DIGITS = {OWNER_MOBILE: OWNER_MOBILE, FAMILY_MOBILE: FAMILY_MOBILE,
                TENANT_MOBILE: TENANT_MOBILE, LANDLINE: LANDLINE[1:], UNKNOWN_CALLER: UNKNOWN_CALLER}
DESCRIPTION = ("业主 138 1234 5678；家属 +86-137-0000-2222；租户 １３９００００１１１１；"
               "座机 (0755)26543210；留言说 幺三八一二三四五六七八；热线 0755-88886666；"
               "欠费 1200.50 元；分机 8001；工单 BX20261203-0001")
DESCRIPTION_MASKED = ("业主 138****5678；家属 137****2222；租户 139****1111；"
                      "座机 075*****3210；留言说 138****5678；热线 0755-88886666；"
                      "欠费 1200.50 元；分机 8001；工单 BX20261203-0001")

MASKED_ROLES = ("engineer", "agent", "night_duty")  # engineers first: they ack and transition
FULL_ROLES = ("supervisor", "admin")
SESSION_USERS = {"engineer": "gong", "agent": "xiaoli", "night_duty": "laowang",
                 "supervisor": "boss", "admin": "root"}
# Routes that carry the owner's number whenever the viewer may open them.
CARRY_NUMBERS = {"/api/calls", "/api/calls/live", "/api/tickets", "/api/tickets/{ticket_id}",
                 "/tickets", "/tickets/{ticket_id}", "/api/incidents/{incident_id}",
                 "/incidents/{incident_id}", "/api/console/search", "/search",
                 "/api/ticket-groups/{group_id}", "/ticket-groups/{group_id}",
                 "/api/callbacks", "/callbacks", "/api/outbound/jobs",
                 "/api/outbound/jobs/{job_id}", "/outbound",
                 "/outbound/campaigns/{campaign_id}.csv"}
QUERIES = {"/api/console/search": "q=13812345678", "/search": "q=13812345678",
           "/api/oncall/now": "role=night_duty", "/history": "all=1",
           "/callbacks": "state=all", "/outbound": "state=all"}
SKIP = {("POST", "/logout"): "ends the walking session; it returns a redirect, no data"}
METRICS_TOKEN = "walk-metrics-token"  # /metrics is live; the scraper walks too


@dataclass
class Viewer:
    name: str
    role: str
    headers: dict[str, str]


@dataclass
class Site:
    client: TestClient  # type: ignore[type-arg]
    standin: AsteriskStandIn
    seed: Seed
    params: dict[str, str] = field(default_factory=dict)


def _flat(text: str) -> str:
    """The text with every way of writing a digit made one, and separators gone."""
    text = html.unescape(unquote(text))
    text = text.translate(str.maketrans("０１２３４５６７８９〇零一二三四五六七八九幺两",
                                        "01234567890012345678912"))
    return re.sub(r"[\s\-()（）+＋.]", "", text)


def leaked(body: str) -> list[str]:
    try:
        body = json.dumps(json.loads(body), ensure_ascii=False)  # \u escapes decoded
    except ValueError:
        pass
    flat = _flat(body)
    return [n for n, digits in OWNER_DIGITS.items() if digits in flat]


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(150):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within 15 s: {what}")


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url),
                       default_community="hupan")
    settings = replace(settings, http=replace(settings.http, metrics_token=Secret(METRICS_TOKEN)))
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        seed = await seed_directory(sm)
        async with sm() as s:
            zhao = Person(name="赵敏")
            zhao.phones.append(PersonPhone(number="+86" + LANDLINE[1:], raw=LANDLINE,
                                           kind="landline"))
            zhao.rooms.append(PersonRoom(room_id=seed.rooms["5-2-0301"], role="owner"))
            s.add(zhao)
            await s.commit()
    finally:
        await engine.dispose()
    standin = AsteriskStandIn.from_settings(settings, prompt_seconds=0.05, phones=[
        Phone("8001", "XIAOLI"), Phone("8009", "BOSS"), Phone("13611112222", "LAOWANG"),
        Phone("13633334444", "GONG", answer_after=30)])
    await standin.start()
    try:
        async with serving(create_app(settings, transcribe=False)) as client:
            yield Site(client, standin, seed)
    finally:
        await standin.stop()


async def _fill(site: Site) -> None:
    """Calls, tickets and an incident, made the way the site makes them."""
    client = site.client
    async with client.app[SESSIONMAKER]() as s:
        sup = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}

    async def linked() -> bool:
        body = await (await client.get("/healthz", headers=sup)).json()
        return bool(body.get("asterisk", {}).get("standin") == "connected")

    await _until(linked, "the server is linked to the stand-in")
    # One owner waits in the front-desk queue the whole walk; the others called and hung up.
    site.standin.place_call(Caller(number=OWNER_MOBILE, name="张伟", did=HOTLINE,
                                   context="queue-entry", exten="s"))
    for number in (TENANT_MOBILE, LANDLINE, UNKNOWN_CALLER):
        site.standin.place_call(Caller(number=number, did=HOTLINE, script=[Wait(0.2), HangUp()]))

    async def logged() -> bool:
        calls = (await (await client.get("/api/calls", headers=sup)).json())["calls"]
        live = (await (await client.get("/api/calls/live", headers=sup)).json())["calls"]
        return len(calls) >= 4 and any(OWNER_MOBILE in json.dumps(c) for c in live)

    await _until(logged, "four calls in the log, the owner's still live")
    # The owner hung up in the IVR earlier (after a while): on the callback worklist.
    now = datetime.now(UTC)
    entry = await client.app[CALLBACKS].missed(
        {"linkedid": "walk-ivr-1", "asterisk": "standin", "started_at": now - timedelta(seconds=40),
         "ended_at": now, "outcome": "ivr_only", "ivr_path": ["报修", "水电"],
         "caller_name": "张伟"}, community="hupan", number="+86" + OWNER_MOBILE, at=now)
    assert entry is not None
    resp = await client.post("/api/tickets", headers=sup, json={
        "source": "phone", "category": "plumbing", "summary": "厨房漏水 回电13812345678",
        "description": DESCRIPTION, "caller_number": OWNER_MOBILE, "caller_name": "张伟",
        "room_id": site.seed.rooms["3-1-1201"], "community": "hupan"})
    assert resp.status == 201, await resp.text()
    ticket = await resp.json()
    # A neighbour of 3栋 reports it too: one group incident (群发事件) of two households.
    resp = await client.post("/api/tickets", headers=sup, json={
        "source": "phone", "category": "plumbing", "summary": "3栋也停水了 回电13900001111",
        "caller_number": TENANT_MOBILE, "building": "3", "unit": "2", "room": "0808",
        "community": "hupan"})
    assert resp.status == 201, await resp.text()
    group_id = (await resp.json())["group_id"]
    assert group_id is not None
    resp = await client.post("/api/incidents", headers=sup, json={
        "community": "hupan", "category": "plumbing", "building": "3", "unit": "1",
        "room": "1201", "caller": "+8613812345678", "summary": "水管爆裂，请回电 137 0000 2222"})
    assert resp.status in (200, 201), await resp.text()
    incident_id = (await resp.json())["incident_id"]
    # 3栋 is without water: callers of 3栋 hear it after the greeting.
    resp = await client.post("/api/outages", headers=sup, json={
        "community": "hupan", "kind": "water", "building": "3", "text": "3栋今天14点到18点停水检修",
        "ends_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert resp.status == 201, await resp.text()
    outage_id = (await resp.json())["id"]
    # The owner's repair survey (回访) is queued: the outbound list carries their number.
    async with client.app[SESSIONMAKER]() as s:
        job = OutboundJob(key="walk-survey", kind="survey", community="hupan",
                          number="+86" + OWNER_MOBILE, ticket_id=ticket["id"], state="queued",
                          due_at=datetime.now(UTC) + timedelta(days=1), attempts=0, note="")
        s.add(job)
        campaign = OutboundCampaign(kind="fee", community="hupan", name="12月物业费催缴",
                                    period="2026-12", state="paused", rules={})
        s.add(campaign)
        await s.flush()
        s.add(OutboundJob(key="walk-fee", kind="fee", community="hupan",
                          number="+86" + OWNER_MOBILE, campaign_id=campaign.id, state="queued",
                          due_at=datetime.now(UTC) + timedelta(days=1), attempts=0, note="",
                          payload={"amount": "1280.50", "room": "3栋1单元1201", "owner": "张伟"}))
        await s.commit()
        job_id, campaign_id = job.id, campaign.id
    site.params = {"ticket_id": str(ticket["id"]), "group_id": str(group_id),
                   "outage_id": str(outage_id),
                   "job_id": str(job_id), "kind": "survey", "campaign_id": str(campaign_id),
                   "person_id": str(site.seed.people["张伟"]),
                   "incident_id": str(incident_id),
                   "recording_id": "1", "community": "hupan", "role": "night_duty",
                   "category": "plumbing", "ticket_number": ticket["number"],
                   "photo_id": "1", "department": "engineering",
                   "callback_id": str(entry.id)}


async def _viewers(site: Site) -> list[Viewer]:
    client = site.client
    viewers: list[Viewer] = []
    for role in (*MASKED_ROLES, *FULL_ROLES):
        csrf = await login(client, SESSION_USERS[role])
        cookie = next(c.value for c in client.session.cookie_jar if c.key == SESSION_COOKIE)
        client.session.cookie_jar.clear()
        viewers.append(Viewer(f"{role} (session)", role,
                              {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": csrf}))
        async with client.app[SESSIONMAKER]() as s:
            token = await create_token(s, role=role)
        viewers.append(Viewer(f"{role} (token)", role, {"Authorization": f"Bearer {token}"}))
    # No one's identity: sees what nobody signed in sees, masked.
    viewers.append(Viewer("metrics scraper", "engineer", {"Authorization": f"Bearer {METRICS_TOKEN}"}))
    return viewers


def _bodies(site: Site) -> dict[tuple[str, str], dict[str, Any]]:
    """What the walk sends to routes that take a body (others get ``{}``)."""
    return {
        ("POST", "/api/tickets"): {
            "source": "phone", "category": "plumbing", "summary": "回电 138-1234-5678",
            "description": DESCRIPTION, "caller_number": OWNER_MOBILE,
            "room_id": site.seed.rooms["3-1-1201"]},
        ("POST", "/api/tickets/{ticket_id}/actions"): {
            "action": "accept", "note": "已联系业主 13812345678"},
        ("POST", "/api/incidents"): {
            "community": "hupan", "category": "plumbing", "building": "3", "unit": "1",
            "room": "1201", "caller": OWNER_MOBILE, "summary": "又漏了 13700002222"},
        ("POST", "/api/incidents/{incident_id}/resolve"): {"note": "已修好，业主 13812345678"},
        ("POST", "/api/ticket-groups/{group_id}/close"): {"note": "已恢复供水，业主 13812345678"},
        ("POST", "/api/ticket-groups/{group_id}/tickets"): {
            "ticket_id": int(site.params["ticket_id"]), "reason": "同一事件 13812345678"},
        # No reason: a 400 for those who may (the walk must keep the owner in the incident).
        ("DELETE", "/api/ticket-groups/{group_id}/tickets/{ticket_id}"): {"reason": ""},
        ("POST", "/api/console/unknown-caller"): {"number": UNKNOWN_CALLER, "name": "新住户"},
        ("POST", "/api/console/call"): {"person_id": site.seed.people["张伟"], "phone": 0},
        ("POST", "/api/callbacks/{callback_id}/done"): {
            "outcome": "reached", "note": "已联系，业主另留号码 13812345678"},
        ("PUT", "/api/people/{person_id}/do-not-call"): {"do_not_call": False},
        ("POST", "/api/outbound/holds/{kind}"): {"paused": False},
        ("POST", "/api/outbound/campaigns"): {"community": "hupan", "min_amount": 100,
                                              "min_age_days": 30},
        ("POST", "/api/outbound/campaigns/{campaign_id}/state"): {"state": "paused"},
    }


def _routes(site: Site) -> list[tuple[str, str, str]]:
    """(method, route, URL) of every route but HEAD and static files, params filled in."""
    out = []
    for route in site.client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        pattern = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or pattern is None:  # static files have a prefix only
            continue
        names = re.findall(r"{(\w+)}", pattern)
        missing = [n for n in names if n not in site.params]
        assert not missing, f"{route.method} {pattern}: give the walk a value for {missing}"
        url = pattern.format(**{n: site.params[n] for n in names})
        if pattern in QUERIES:
            url += "?" + QUERIES[pattern]
        out.append((route.method, pattern, url))
    return out


async def test_every_route_as_every_role_masks_owner_numbers_by_the_rules(site: Site) -> None:
    await _fill(site)
    viewers = await _viewers(site)
    routes = _routes(site)
    bodies = _bodies(site)
    base = str(site.client.make_url("/")).rstrip("/")
    failures: list[str] = []
    seen_masked: dict[str, set[str]] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for viewer in viewers:
            for method, pattern, url in routes:
                if (method, pattern) in SKIP:
                    continue
                kwargs: dict[str, Any] = {"headers": viewer.headers, "allow_redirects": False}
                if method != "GET":
                    kwargs["json"] = bodies.get((method, pattern), {})
                async with http.request(method, base + url, **kwargs) as resp:
                    body = (await resp.read()).decode("utf-8", errors="replace")
                    status = resp.status
                where = f"{viewer.name}: {method} {url} → {status}"
                found = leaked(body)
                if viewer.role in MASKED_ROLES:
                    if found:
                        failures.append(f"{where} shows {found}")
                    if status == 200 and pattern in CARRY_NUMBERS and method == "GET":
                        seen_masked.setdefault(viewer.name, set()).add(pattern)
                        if "138****5678" not in body:
                            failures.append(f"{where} lacks the masked owner 138****5678")
                elif status == 200 and pattern in CARRY_NUMBERS and method == "GET" \
                        and OWNER_MOBILE not in found:
                    failures.append(f"{where} does not show the owner's full number")
        # The WebSocket's first frame, for every signed-in viewer.
        for viewer in viewers:
            if "Cookie" not in viewer.headers:
                continue
            async with http.ws_connect(base + "/ws/agent", headers={
                    **viewer.headers, "Origin": base}) as ws:
                frame = await ws.receive(timeout=5)
                if viewer.role in MASKED_ROLES and leaked(str(frame.data)):
                    failures.append(f"{viewer.name}: /ws/agent frame shows {leaked(frame.data)}")
    assert not failures, "\n".join(failures)
    # The masked viewers did read the data (a 403 everywhere would prove nothing).
    assert {"/api/calls", "/api/calls/live", "/api/tickets/{ticket_id}"} <= seen_masked[
        "agent (session)"]
    assert {"/api/tickets/{ticket_id}", "/tickets/{ticket_id}", "/api/incidents/{incident_id}",
            "/incidents/{incident_id}"} <= seen_masked["engineer (token)"]


async def test_what_is_not_an_owner_number_survives_masking(site: Site) -> None:
    await _fill(site)
    client = site.client
    async with client.app[SESSIONMAKER]() as s:
        eng = {"Authorization": f"Bearer {await create_token(s, role='engineer')}"}
        sup = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}
        agent = {"Authorization": f"Bearer {await create_token(s, role='agent')}"}
    path = f"/api/tickets/{site.params['ticket_id']}"
    masked = await (await client.get(path, headers=eng)).json()
    full = await (await client.get(path, headers=sup)).json()
    assert full["description"] == DESCRIPTION
    assert masked["description"] == DESCRIPTION_MASKED
    assert masked["caller_number"] == "138****5678"
    for key in ("id", "number", "created_at", "updated_at", "room_id", "community_id", "state"):
        assert masked[key] == full[key], key
    # The live view: ids and times as they are, the caller masked.
    live = (await (await client.get("/api/calls/live", headers=agent)).json())["calls"]
    live_full = (await (await client.get("/api/calls/live", headers=sup)).json())["calls"]
    [mine] = [c for c in live if c["caller_number"] == "138****5678"]
    [theirs] = [c for c in live_full if c["uniqueid"] == mine["uniqueid"]]
    assert {k: v for k, v in mine.items() if k != "caller_number"} == {
        k: v for k, v in theirs.items() if k != "caller_number"}
    # The hotline the site publishes stays readable for everyone.
    page = await (await client.get(f"/tickets/{site.params['ticket_id']}", headers=eng)).text()
    assert "0755-88886666" in page and "1200.50" in page and site.params["ticket_number"] in page
