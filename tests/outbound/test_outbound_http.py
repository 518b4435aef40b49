"""The outbound routes as the front desk and the supervisor use them: a 催缴 started
from the page's form, its counts, the export for the finance office (CSV and a real
XLSX), a pause, and the bad bodies that must come back as a 4xx naming the field."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.links import AmiLinks
from callcenter.app import create_core_app
from callcenter.appkeys import BUS
from callcenter.auth.tokens import create_token
from callcenter.clock import ManualClock
from callcenter.directory.models import FeeAccount, StaffUser
from callcenter.outbound.setup import setup_outbound
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from tests.ticketing.directory_data import Seeded, seed_directory


@pytest.fixture
async def site(db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
               ) -> AsyncIterator[tuple[TestClient, dict[str, dict[str, str]], Seeded]]:  # type: ignore[type-arg]
    seeded = await seed_directory(sessionmaker)
    async with sessionmaker() as s:
        s.add_all([FeeAccount(room_id=seeded.room_3_2_1201, arrears=Decimal("1234.50")),
                   FeeAccount(room_id=seeded.room_5_1_801, arrears=Decimal("80"))])
        users = {}
        for name, role in (("boss", "supervisor"), ("xiaoli", "agent")):
            u = StaffUser(username=name, display_name=name, role=role, all_communities=True,
                          active=True)
            s.add(u)
            await s.flush()
            users[role] = u.id
        await s.commit()
        headers = {role: {"Authorization": "Bearer " + await create_token(
            s, role=role, name=role, user_id=uid)} for role, uid in users.items()}
    settings = settings_from_mapping({"data_dir": str(tmp_path / "data"),
                                      "database": {"url": db_url},
                                      "outbound": {"enabled": False}})
    clock = ManualClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    app = create_core_app(settings, clock=clock)
    setup_tickets(app, ingest=False)
    links = AmiLinks((), publish=lambda e: None)
    setup_outbound(app, links, link_for=lambda c: None, set_handler=lambda h: None)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    assert app[BUS] is not None
    try:
        yield client, headers, seeded
    finally:
        await client.close()


async def test_a_fee_campaign_from_the_form_its_counts_and_the_finance_export(site) -> None:  # type: ignore[no-untyped-def]
    client, headers, _ = site
    sup = headers["supervisor"]
    page = await (await client.get("/outbound", headers={**sup, "Accept": "text/html"})).text()
    assert "发起催缴" in page and "湖畔花园" in page
    resp = await client.post("/api/outbound/campaigns", headers=sup, json={
        "community": "hupan", "min_amount": "100", "min_age_days": 30, "name": "12月催缴"})
    assert resp.status == 201, await resp.text()
    built = await resp.json()
    assert built["queued"] == 1 and built["state_label"] == "进行中"  # 李四 owes only 80
    listing = await (await client.get("/api/outbound/campaigns", headers=headers["agent"])).json()
    [c] = listing["campaigns"]
    assert (c["name"], c["total"], c["final"]) == ("12月催缴", 1, 0)
    csv = await (await client.get(f"/outbound/campaigns/{c['id']}.csv", headers=sup)).read()
    text = csv.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("房号,业主,号码,欠费金额（元）")
    # a supervisor sees the whole number; an empty cell stays empty (not "'")
    assert "3栋2单元1201,王小明,13912345678,1234.50,等待呼叫,,0," in text
    xlsx = await (await client.get(f"/outbound/campaigns/{c['id']}.xlsx", headers=sup)).read()
    ws = load_workbook(io.BytesIO(xlsx)).active
    assert ws is not None and ws.title == "催缴结果"
    assert [cell.value for cell in ws[2]][:4] == ["3栋2单元1201", "王小明", "13912345678",
                                                  "1234.50"]
    # the front desk may read, not export or steer
    assert (await client.get(f"/outbound/campaigns/{c['id']}.csv",
                             headers=headers["agent"])).status == 403
    resp = await client.post(f"/api/outbound/campaigns/{c['id']}/state", headers=sup,
                             json={"state": "paused"})
    assert resp.status == 200 and (await resp.json())["state_label"] == "已暂停"
    resp = await client.post(f"/api/outbound/campaigns/{c['id']}/state", headers=sup,
                             json={"state": "cancelled"})
    assert (await resp.json())["state_label"] == "已停止"
    jobs = await (await client.get("/api/outbound/jobs?state=ended", headers=sup)).json()
    assert [j["state_label"] for j in jobs["jobs"]] == ["已取消"]


@pytest.mark.parametrize(("body", "field"), [
    ({"min_amount": 100}, "community"),
    ({"community": "hupan", "min_amount": -5}, "min_amount"),
    ({"community": "hupan", "min_amount": "一百"}, "min_amount"),
    ({"community": "hupan", "min_age_days": 99999}, "min_age_days"),
    ({"community": "nowhere"}, "community"),
])
async def test_a_bad_campaign_body_is_a_4xx_naming_the_field(site, body, field) -> None:  # type: ignore[no-untyped-def]
    client, headers, _ = site
    resp = await client.post("/api/outbound/campaigns", headers=headers["supervisor"], json=body)
    assert 400 <= resp.status < 500, await resp.text()
    assert field in await resp.text()


async def test_do_not_call_and_a_bad_hold_body(site) -> None:  # type: ignore[no-untyped-def]
    client, headers, seeded = site
    resp = await client.put(f"/api/people/{seeded.wang_id}/do-not-call",
                            headers=headers["agent"], json={"do_not_call": True})
    assert resp.status == 200 and (await resp.json())["do_not_call"] is True
    resp = await client.put(f"/api/people/{seeded.wang_id}/do-not-call",
                            headers=headers["agent"], json={"do_not_call": "maybe"})
    assert resp.status == 400 and "do_not_call" in await resp.text()
    resp = await client.post("/api/outbound/holds/survey", headers=headers["supervisor"],
                             json={})
    assert resp.status == 400 and "paused" in await resp.text()
    resp = await client.post("/api/outbound/holds/lottery", headers=headers["supervisor"],
                             json={"paused": True})
    assert 400 <= resp.status < 500
