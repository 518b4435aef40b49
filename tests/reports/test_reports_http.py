"""The reports over HTTP on SQLite and PostgreSQL: figures from rows in the database,
each community's supervisor seeing only theirs, the page with its charts, CSV and
XLSX exports of the same table, and bad queries answered with the field named."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.auth.tokens import create_token
from callcenter.calls.models import CallLog
from callcenter.clock import ManualClock
from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.paging.models import Incident
from callcenter.reports.http import setup_reports
from callcenter.settings import settings_from_mapping
from callcenter.web.templating import setup_templates
from ticketing.models import Ticket, TicketEvent

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 1, tzinfo=TZ)


def at(h: float) -> datetime:
    return (DAY + timedelta(hours=h)).astimezone(UTC)


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    tokens: dict[str, str]

    async def get(self, path: str, who: str | None = "hq", **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        async with self.client.get(path, params=params, headers=headers,
                                   allow_redirects=False) as resp:
            ctype = resp.headers.get("Content-Type", "")
            return resp.status, (await resp.json() if "json" in ctype else await resp.read())


async def _seed(sm: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sm() as s:
        hupan = Community(code="hupan", name="湖畔花园", hotline_numbers=[])
        binjiang = Community(code="binjiang", name="滨江苑", hotline_numbers=[])
        s.add_all([hupan, binjiang])
        await s.flush()
        calls = [  # (hour, outcome, wait, talk, community)
            (8.08, "answered", 10, 120, "hupan"), (8.33, "answered", 30, 60, None),
            (8.67, "abandoned", 45, None, "hupan"), (8.5, "abandoned", 12, None, "binjiang"),
            (9.17, "voicemail", None, None, "hupan"), (9.5, "answered", 5, 300, "hupan"),
            (9.83, None, None, None, "hupan"),  # still ringing: not counted
            (34, "answered", 2, 10, "hupan"),  # 2 December
        ]
        for i, (h, outcome, wait, talk, community) in enumerate(calls):
            s.add(CallLog(linkedid=f"1700000000.{i}", asterisk="pbx1", community=community,
                          caller_number="+8613900000000", started_at=at(h), outcome=outcome,
                          wait_s=wait, talk_s=talk, ivr_path=[], rung=[]))
        for n, (cid, created, first, closed) in enumerate([
                (hupan.id, 8, 8 + 10 / 60, 15), (hupan.id, 9, 9.5, None),
                (binjiang.id, 10, None, None)]):
            t = Ticket(number=f"T{n}", community_id=cid, source="agent", category="plumbing",
                       department="engineering", summary="漏水", state="new",
                       created_at=at(created), updated_at=at(created))
            s.add(t)
            await s.flush()
            s.add(TicketEvent(ticket_id=t.id, from_state=None, to_state="new", at=at(created),
                              action="create"))
            if first is not None:
                s.add(TicketEvent(ticket_id=t.id, from_state="new", to_state="dispatched",
                                  at=at(first), action="dispatch"))
            if closed is not None:
                s.add(TicketEvent(ticket_id=t.id, from_state="followed_up", to_state="closed",
                                  at=at(closed), action="archive"))
        for cid, opened, acked in [(hupan.id, 8.5, 8.5 + 2 / 60), (binjiang.id, 11, 11 + 1 / 6),
                                   (hupan.id, 12, None)]:
            s.add(Incident(community_id=cid, category="water_leak", source="agent",
                           opened_at=at(opened), acked_at=at(acked) if acked else None))
        people = {"hq": ("supervisor", None), "a_boss": ("supervisor", hupan.id),
                  "a_agent": ("agent", hupan.id), "engineer": ("engineer", None),
                  "admin": ("admin", None)}
        users = {}
        for name, (role, community) in people.items():
            u = StaffUser(username=name, display_name=name, role=role, active=True,
                          all_communities=community is None,
                          memberships=[StaffCommunity(community_id=community)]
                          if community else [])
            s.add(u)
            await s.flush()
            users[name] = (role, u.id)
        await s.commit()
        return {name: await create_token(s, role=role, name=name, user_id=uid)
                for name, (role, uid) in users.items()}


@pytest.fixture
async def site(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
               tmp_path: Path) -> AsyncIterator[Site]:
    tokens = await _seed(sessionmaker)
    settings = settings_from_mapping({"data_dir": str(tmp_path), "default_community": "hupan",
                                      "database": {"url": db_url}})
    app = create_core_app(settings, clock=ManualClock(datetime(2026, 12, 3, 2, tzinfo=UTC)))
    setup_templates(app)
    setup_reports(app)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield Site(client, tokens)
    finally:
        await client.close()


async def test_head_office_sees_every_communitys_figures_by_hour(site: Site) -> None:
    status, r = await site.get("/api/reports/calls", **{"from": "2026-12-01", "to": "2026-12-01"})
    assert status == 200, r
    assert r["by"] == "hour" and len(r["buckets"]) == 24
    h8, h9 = r["buckets"][8], r["buckets"][9]
    assert h8["label"] == "12月1日 08时"
    assert (h8["calls"], h8["answered"], h8["abandoned"]) == (4, 2, 2)
    assert (h8["answer_rate"], h8["service_level"], h8["avg_wait_s"]) == (0.5, 0.25, 20)
    assert (h9["calls"], h9["voicemail"], h9["answered"]) == (2, 1, 1)
    t = r["total"]
    assert (t["calls"], t["offered"], t["answer_rate"], t["avg_talk_s"]) == (6, 5, 0.6, 160)
    assert (t["tickets_opened"], t["tickets_closed"], t["response_rate"]) == (3, 1, 1 / 3)
    assert (t["incidents"], t["incidents_acked"], t["avg_ack_s"], t["max_ack_s"]) == \
        (3, 2, 360, 600)
    # The call with no community is the site's default community's.
    assert {c: b["calls"] for c, b in r["communities"].items()} == {"binjiang": 1, "hupan": 5}
    assert r["communities"]["hupan"]["label"] == "湖畔花园"
    # Each community's row counts its own tickets and emergencies too.
    assert {c: (b["tickets_opened"], b["incidents"]) for c, b in r["communities"].items()} == \
        {"binjiang": (1, 1), "hupan": (2, 2)}


async def test_a_communitys_supervisor_sees_only_theirs_and_cannot_ask_for_another(
        site: Site) -> None:
    q = {"from": "2026-12-01", "to": "2026-12-01"}
    status, r = await site.get("/api/reports/calls", who="a_boss", **q)
    assert status == 200, r
    t = r["total"]
    assert (t["calls"], t["answered"], t["abandoned"], t["service_level"]) == (5, 3, 1, 0.5)
    assert (t["tickets_opened"], t["response_rate"], t["incidents"], t["avg_ack_s"]) == \
        (2, 0.5, 2, 120)
    assert list(r["communities"]) == ["hupan"]
    status, err = await site.get("/api/reports/calls", who="a_boss", community="binjiang", **q)
    assert status == 403 and err["details"]["field"] == "community"
    # Head office narrows to one community.
    status, r = await site.get("/api/reports/calls", community="binjiang", **q)
    assert status == 200 and r["total"]["calls"] == 1 and r["total"]["incidents"] == 1
    # Their page and exports are theirs only too.
    status, body = await site.get("/reports/calls.csv", who="a_boss", **q)
    assert status == 200 and "滨江苑" not in body.decode("utf-8-sig")


async def test_who_may_open_the_reports(site: Site) -> None:
    for who, expected in [("a_agent", 403), ("engineer", 403), ("admin", 200), ("hq", 200)]:
        status, _ = await site.get("/api/reports/calls", who=who)
        assert status == expected, who
        status, _ = await site.get("/reports", who=who)
        assert status == expected, who
    status, _ = await site.get("/api/reports/calls", who=None)
    assert status == 401


async def test_the_page_draws_its_charts_and_the_exports_hold_the_same_table(
        site: Site) -> None:
    q = {"from": "2026-12-01", "to": "2026-12-02", "by": "day"}
    status, page = await site.get("/reports", **q)
    assert status == 200
    html = page.decode()
    assert html.count("<svg class=\"chart\"") == 3
    assert "<title>12月1日 接通 3 通</title>" in html and "<title>12月2日 接通 1 通</title>" in html
    assert "60.0%" in html and "2:40" in html  # answer rate and average talk, day one alone
    status, csv_body = await site.get("/reports/calls.csv", **q)
    assert status == 200
    text = csv_body.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("时段,来电,进入队列,接通,放弃,接通率")
    assert lines[1].startswith("12月1日,6,5,3,2,60.0%,40.0%")
    assert lines[3].startswith("合计,7,6,4,2")
    status, xlsx = await site.get("/reports/calls.xlsx", **q)
    assert status == 200
    ws = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    assert ws is not None
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0][:4] == ["时段", "来电", "进入队列", "接通"]
    assert rows[1][:5] == ["12月1日", 6, 5, 3, 2] and rows[3][0] == "合计"


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "2026-12-05", "to": "2026-12-01"}, "to"),
    ({"from": "2026-01-01", "to": "2026-12-01"}, "to"),  # more than 92 days
    ({"to": "9999-12-31"}, "to"),
    ({"by": "minute"}, "by"),
    ({"service_level_s": "0"}, "service_level_s"),
    ({"community": "nowhere"}, "community"),
    ({"community": "bad code!"}, "community"),
])
async def test_a_bad_query_is_a_400_naming_the_field(site: Site, params: dict[str, str],
                                                     field: str) -> None:
    status, err = await site.get("/api/reports/calls", **params)
    assert status == 400, err
    assert err["details"]["field"] == field
    status, _ = await site.get("/reports/calls.csv", **params)
    assert status == 400
