"""``/api/outages``, ``/outages`` and a group incident's one click, over HTTP on
both databases: a bad body is a 400 naming its field (never a 5xx), who may post
and read, and a person of another community sees none of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from callcenter.app import _group_outages, create_core_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.console.setup import setup_console
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory import models as dm
from callcenter.tickets import setup_tickets
from ivr.outages.models import OutageNotice
from ivr.outages.setup import setup_outages
from tests.console.helpers import FAST_HASHER, Seed, make_settings, seed_directory, serving
from tests.integration.test_hotline_e2e import FixedTimeClock
from ticketing.group_models import TicketGroupEvent

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 4, 14, 0, tzinfo=SH)
ENDS = (NOW + timedelta(hours=4)).isoformat()
GOOD = {"community": "hupan", "kind": "water", "building": "3", "unit_from": 1, "unit_to": 2,
        "text": "3栋今天14点到18点停水检修", "ends_at": ENDS}


@dataclass
class Site:
    client: TestClient  # type: ignore[type-arg]
    seed: Seed
    tokens: dict[str, dict[str, str]]

    async def post(self, path: str, who: str, *, headers: dict[str, str] | None = None,
                   **kw: Any) -> tuple[int, Any]:
        async with self.client.post(path, headers={**self.tokens[who], **(headers or {})},
                                    allow_redirects=False, **kw) as resp:
            body = await resp.text()
            try:
                return resp.status, await resp.json()
            except Exception:
                return resp.status, body

    async def get(self, path: str, who: str) -> tuple[int, str]:
        async with self.client.get(path, headers=self.tokens[who]) as resp:
            return resp.status, await resp.text()

    async def notices(self) -> list[OutageNotice]:
        async with self.client.app[SESSIONMAKER]() as s:
            return list((await s.scalars(select(OutageNotice).order_by(OutageNotice.id))).all())


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        seed = await seed_directory(sm)
        async with sm() as s:
            b = dm.Community(code="binjiang", name="滨江苑", hotline_numbers=[])
            s.add(b)
            await s.flush()
            s.add(dm.Building(community_id=b.id, name="8"))
            b_sup = dm.StaffUser(username="b_sup", display_name="B", role="supervisor",
                                 password_hash="x",
                                 memberships=[dm.StaffCommunity(community_id=b.id)])
            s.add(b_sup)
            await s.commit()
            tokens = {role: {"Authorization": f"Bearer {await create_token(s, role=role)}"}
                      for role in ("agent", "night_duty", "engineer", "supervisor", "admin")}
            tokens["b_sup"] = {"Authorization": "Bearer " + await create_token(
                s, role="supervisor", user_id=b_sup.id)}
    finally:
        await engine.dispose()
    app = create_core_app(make_settings(db_url, tmp_path), clock=FixedTimeClock(NOW))
    setup_console(app, hasher=FAST_HASHER)
    setup_tickets(app, ingest=False)
    setup_outages(app)
    app.cleanup_ctx.append(_group_outages)
    async with serving(app) as client:
        yield Site(client, seed, tokens)


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": None}, "kind"),
    ({"kind": "flood"}, "kind"),
    ({"text": ""}, "text"),
    ({"text": "停" * 301}, "text"),
    ({"ends_at": None}, "ends_at"),
    ({"ends_at": "明天下午"}, "ends_at"),
    ({"ends_at": (NOW - timedelta(hours=1)).isoformat()}, "ends_at"),
    ({"starts_at": "2026-13-01T00:00"}, "starts_at"),
    ({"unit_from": "1"}, "unit_from"),
    ({"unit_to": 100}, "unit_to"),
    ({"unit_from": 3, "unit_to": 2}, "unit_to"),
    ({"all_callers": "yes"}, "all_callers"),
    ({"building": "99"}, "building"),
    ({"community": "nowhere"}, "community"),
    ({"text": "停水\x00"}, "text"),
])
async def test_a_bad_body_is_a_400_naming_the_field(site: Site, change: dict[str, Any],
                                                   field: str) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    status, answer = await site.post("/api/outages", "supervisor", json=body)
    assert status == 400, answer
    assert answer["details"]["field"] == field
    assert await site.notices() == []


async def test_a_body_that_is_not_json_is_a_400(site: Site) -> None:
    status, answer = await site.post("/api/outages", "supervisor", data=b"{kind: water",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and answer["details"]["field"] == "body"


async def test_a_supervisor_posts_and_ends_a_notice_and_the_front_desk_reads_it(
        site: Site) -> None:
    status, posted = await site.post("/api/outages", "supervisor", json=GOOD)
    assert status == 201, posted
    assert posted["where"] == "3栋1–2单元" and posted["state"] == "live"
    assert datetime.fromisoformat(posted["ends_at"]) == NOW + timedelta(hours=4)
    for reader in ("agent", "night_duty", "admin"):
        status, text = await site.get("/api/outages", reader)
        assert status == 200 and "3栋今天14点到18点停水检修" in text
    assert (await site.get("/api/outages", "engineer"))[0] == 403
    for role in ("agent", "night_duty", "engineer"):
        assert (await site.post("/api/outages", role, json=GOOD))[0] == 403
        assert (await site.post(f"/api/outages/{posted['id']}/end", role, json={}))[0] == 403
    status, ended = await site.post(f"/api/outages/{posted['id']}/end", "supervisor",
                                    json={"note": "提前恢复"})
    assert status == 200 and ended["state"] == "ended" and ended["ended_by"]
    assert (await site.post(f"/api/outages/{posted['id']}/end", "supervisor", json={}))[0] == 409
    live = await (await site.client.get("/api/outages", headers=site.tokens["agent"])).json()
    assert live["outages"] == []
    ended_list = await (await site.client.get("/api/outages?state=ended",
                                              headers=site.tokens["agent"])).json()
    assert [o["id"] for o in ended_list["outages"]] == [posted["id"]]


async def test_a_person_of_another_community_sees_and_ends_nothing_of_it(site: Site) -> None:
    status, posted = await site.post("/api/outages", "supervisor", json=GOOD)
    assert status == 201
    status, text = await site.get("/api/outages?state=all", "b_sup")
    assert status == 200 and "停水检修" not in text
    assert (await site.get("/api/outages?community=hupan", "b_sup"))[0] == 403
    status, page = await site.get("/outages", "b_sup")
    assert status == 200 and "停水检修" not in page and "湖畔花园" not in page
    assert (await site.post(f"/api/outages/{posted['id']}/end", "b_sup", json={}))[0] == 404
    assert (await site.post("/api/outages", "b_sup", json=GOOD))[0] == 403
    # The page's forms (urlencoded) ask the same.
    status, _ = await site.post("/outages/action", "b_sup",
                                data={"op": "end", "outage_id": str(posted["id"])})
    assert status == 404
    status, _ = await site.post("/outages/action", "b_sup", data={
        "op": "post", "community": "hupan", "kind": "water", "text": "3栋停水",
        "building": "3", "ends_at": "2026-12-04T18:00"})
    assert status == 403
    [only] = await site.notices()
    assert only.ended_at is None
    # Their own community's notice: posted without naming it (their only one).
    status, mine = await site.post("/api/outages", "b_sup", json={
        "kind": "power", "building": "8", "text": "8栋停电", "ends_at": ENDS})
    assert status == 201 and mine["community"] == "binjiang"


async def test_the_page_posts_in_local_time_and_ends_early(site: Site) -> None:
    status, page = await site.get("/outages", "supervisor")
    assert status == 200 and 'id="new-outage"' in page
    assert 'value="2026-12-04T18:00"' in page  # the default end: in four hours
    status, _ = await site.post("/outages/action", "supervisor", data={
        "op": "post", "community": "hupan", "kind": "power", "building": "5栋",
        "text": "5栋今晚停电检修", "starts_at": "2026-12-04T14:00",
        "ends_at": "2026-12-04T20:30", "all_callers": "1"})
    assert status == 303
    [n] = await site.notices()
    assert n.building == "5" and n.all_callers and n.kind == "power"
    assert n.ends_at == datetime(2026, 12, 4, 20, 30, tzinfo=SH)
    status, page = await site.get("/outages", "agent")
    assert status == 200 and "5栋今晚停电检修" in page and "湖畔花园5栋" in page
    assert 'id="new-outage"' not in page and "提前结束" not in page
    status, _ = await site.post("/outages/action", "supervisor",
                                data={"op": "end", "outage_id": str(n.id), "note": "已恢复"})
    assert status == 303
    [n] = await site.notices()
    assert n.ended_at == NOW and n.ended_by and n.end_note == "已恢复"
    # A bad form says what is wrong on the page, keeps what was typed, and posts nothing.
    status, page = await site.post("/outages/action", "supervisor", data={
        "op": "post", "community": "hupan", "kind": "water", "building": "3",
        "text": "", "ends_at": "2026-12-04T20:30"})
    assert status == 400 and "请填写通知内容" in page
    assert len(await site.notices()) == 1
    assert (await site.get("/outages", "engineer"))[0] == 403


async def _group(site: Site) -> int:
    sup = site.tokens["supervisor"]
    group_id = None
    for body in ({"room_id": site.seed.rooms["3-1-1201"], "caller_number": "13812345678"},
                 {"building": "3", "unit": "2", "room": "0808", "caller_number": "13900001111"}):
        async with site.client.post("/api/tickets", headers=sup, json={
                "source": "phone", "category": "plumbing", "summary": "3栋停水了",
                "community": "hupan", **body}) as resp:
            assert resp.status == 201, await resp.text()
            group_id = (await resp.json())["group_id"]
    assert group_id is not None
    return int(group_id)


async def test_a_group_incident_posts_its_notice_in_one_click(site: Site) -> None:
    group_id = await _group(site)
    status, page = await site.get(f"/ticket-groups/{group_id}", "supervisor")
    assert status == 200 and "发布停水通知" in page and "发布停电通知" in page
    assert 'value="2026-12-04T18:00"' in page and "3栋目前停水" in page
    status, page = await site.get(f"/ticket-groups/{group_id}", "agent")
    assert status == 200 and "发布停水通知" not in page
    status, _ = await site.post(f"/ticket-groups/{group_id}/action", "agent", data={
        "action": "outage", "kind": "water", "text": "3栋停水", "ends_at": "2026-12-04T18:00"})
    assert status == 403 and await site.notices() == []
    status, _ = await site.post(f"/ticket-groups/{group_id}/action", "supervisor", data={
        "action": "outage", "kind": "water", "text": "3栋目前停水，正在抢修，预计18:00恢复。",
        "ends_at": "2026-12-04T18:00"})
    assert status == 303
    [n] = await site.notices()
    assert (n.building, n.kind, n.group_id, n.unit_from) == ("3", "water", group_id, None)
    assert n.ends_at == datetime(2026, 12, 4, 18, 0, tzinfo=SH)
    async with site.client.app[SESSIONMAKER]() as s:
        logged = (await s.scalars(select(TicketGroupEvent).where(
            TicketGroupEvent.group_id == group_id, TicketGroupEvent.action == "outage"))).all()
    assert [e.data for e in logged] == [{"outage_id": n.id, "ends_at": n.ends_at.isoformat()}]
    status, page = await site.get(f"/ticket-groups/{group_id}", "supervisor")
    assert "发布停水停电通知" in page and "发布停水通知（3栋" in page
    # Another community's supervisor cannot post from it: the incident is not theirs.
    status, _ = await site.post(f"/ticket-groups/{group_id}/action", "b_sup", data={
        "action": "outage", "kind": "water", "text": "x", "ends_at": "2026-12-04T18:00"})
    assert status == 404 and len(await site.notices()) == 1


@pytest.mark.parametrize(("form", "field"), [
    ({"community": "99999999999999"}, "community"),
    ({"ends_at": "0001-01-01T00:00"}, "ends_at"),
    ({"starts_at": "9999-12-31T23:59"}, "starts_at"),
    ({"unit_from": "１"}, "unit_from"),
    ({"text": "停水\x00"}, "text"),
    ({"community": "hu\x00pan"}, "community"),
])
async def test_a_bad_form_is_a_400_on_the_page_never_a_5xx(site: Site, form: dict[str, str],
                                                           field: str) -> None:
    status, page = await site.post("/outages/action", "supervisor", data={
        "op": "post", "community": "hupan", "kind": "water", "building": "3",
        "text": "3栋停水", "ends_at": "2026-12-04T18:00", **form})
    assert status == 400, page
    assert await site.notices() == []


async def test_a_group_incidents_notice_with_a_nul_is_a_400(site: Site) -> None:
    group_id = await _group(site)
    status, page = await site.post(f"/ticket-groups/{group_id}/action", "supervisor", data={
        "action": "outage", "kind": "water", "text": "3栋\x00停水", "ends_at": "2026-12-04T18:00"})
    assert status == 400 and "无效字符" in page and await site.notices() == []


async def test_without_espeak_the_page_says_so_and_the_notice_plays_the_generic_prompt(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither espeak-ng nor sox
    status, page = await site.get("/outages", "supervisor")
    assert status == 200 and "本机未安装 espeak-ng 和 sox" in page and "通用提示" in page
    status, posted = await site.post("/api/outages", "supervisor", json=GOOD)
    assert status == 201 and posted["spoken"] is False and "espeak-ng" in posted["audio_note"]
    [n] = await site.notices()
    assert n.prompt == "outage-generic"
    status, page = await site.get("/outages", "supervisor")
    assert "播放通用提示" in page
    # The front desk is not told about the machine's tools, only the notices.
    status, page = await site.get("/outages", "agent")
    assert "本机未安装" not in page
