"""The HTTP API and pages for incidents and on-call, through the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.auth.tokens import create_token
from callcenter.clock import ManualClock
from callcenter.oncall.setup import setup_oncall
from callcenter.paging.http import PAGING_SERVICE
from callcenter.paging.setup import ESCALATION_WORKER, PAGE_CALL_HANDLER, setup_paging
from callcenter.settings import DatabaseSettings, Settings
from tests.paging.conftest import NO_ANSWER, ScriptedOriginator, Staff, answer, target

SM = async_sessionmaker[AsyncSession]


@dataclass
class Api:
    client: TestClient
    originator: ScriptedOriginator
    headers: dict[str, str]
    clock: ManualClock
    sup: dict[str, str]


@pytest.fixture
async def api(db_url: str, sessionmaker: SM, staff: Staff,
              tmp_path: object) -> AsyncIterator[Api]:
    async with sessionmaker() as session:
        token = await create_token(session, role="agent", name="前台小王")
        sup_token = await create_token(session, role="supervisor", name="主管")
    clock = ManualClock()
    originator = ScriptedOriginator({target("e1"): [answer("1")]}, default=NO_ANSWER)
    app = create_core_app(Settings(database=DatabaseSettings(url=db_url)), clock=clock)
    setup_oncall(app)
    setup_paging(app, originator=lambda a: originator, start_worker=False)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    originator.handler = app[PAGE_CALL_HANDLER]
    try:
        yield Api(client, originator, {"Authorization": f"Bearer {token}"}, clock,
                  {"Authorization": f"Bearer {sup_token}"})
    finally:
        await client.close()


async def test_post_incident_pages_and_timeline_shows_it(api: Api, staff: Staff) -> None:
    app = api.client.server.app
    resp = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "elevator", "building": "12", "unit": "1",
        "room": "301", "caller_number": "13911112222", "summary": "电梯困人，2人"})
    assert resp.status == 201
    incident_id = (await resp.json())["incident_id"]
    dup = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "elevator", "building": "12",
        "caller_number": "13900000000", "source": "agent"})
    assert dup.status == 200 and (await dup.json()) == {
        "incident_id": incident_id, "created": False, "report_id": 2}
    await app[ESCALATION_WORKER].run_due()
    tl = await (await api.client.get(f"/api/incidents/{incident_id}", headers=api.headers)).json()
    assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == staff.e1
    # An agent reads the callers masked; a supervisor in full.
    assert tl["callers"] == ["139****2222", "139****0000"]
    full = await (await api.client.get(f"/api/incidents/{incident_id}",
                                       headers=api.sup)).json()
    assert full["callers"] == ["13911112222", "13900000000"]
    assert tl["policy"]["role"] == "engineer" and len(tl["policy"]["steps"]) == 3
    page = await api.client.get(f"/incidents/{incident_id}", headers=api.headers)
    text = await page.text()
    assert page.status == 200 and "电梯困人" in text and "12栋1单元301室" in text
    assert "已接警" in text and "工程师e1" in text


async def test_ack_from_the_api_and_errors(api: Api, staff: Staff) -> None:
    resp = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "plumbing", "building": "9"})
    incident_id = (await resp.json())["incident_id"]
    ack = await api.client.post(f"/api/incidents/{incident_id}/ack", headers=api.headers)
    assert ack.status == 200
    body = await ack.json()
    assert body["state"] == "acknowledged" and body["acked_by"] == "前台小王"
    assert body["acked_via"] == "api"
    again = await api.client.post(f"/api/incidents/{incident_id}/ack", headers=api.headers)
    assert again.status == 409 and (await again.json())["error"] == "incident_not_open"
    missing = await api.client.get("/api/incidents/999", headers=api.headers)
    assert missing.status == 404 and (await missing.json())["error"] == "incident_not_found"
    bad = await api.client.post("/api/incidents", headers=api.headers, json={"community": "lakeside"})
    assert bad.status == 400 and (await bad.json())["details"]["field"] == "category"
    notjson = await api.client.post("/api/incidents", headers=api.headers, data=b"[")
    assert notjson.status == 400
    anon = await api.client.post("/api/incidents", json={"category": "fire"})
    assert anon.status == 401
    # The page's button acknowledges and comes back to the page.
    other = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "gas", "building": "2"})
    other_id = (await other.json())["incident_id"]
    page = await api.client.get(f"/incidents/{other_id}", headers=api.headers)
    assert f'action="/incidents/{other_id}/ack"' in await page.text()
    button = await api.client.post(f"/incidents/{other_id}/ack", headers=api.headers,
                                   allow_redirects=False)
    assert button.status == 303
    assert button.headers["Location"] == f"/incidents/{other_id}?done=acked"
    assert (await api.client.server.app[PAGING_SERVICE].get(other_id)).acked_via == "console"
    page = await api.client.get(button.headers["Location"], headers=api.headers)
    text = await page.text()
    assert "已确认接警，呼叫已停止" in text and "/ack" not in text  # no second 我来处理
    # a second press (someone was faster) says so, and 已解决 with a note closes it
    again = await api.client.post(f"/incidents/{other_id}/ack", headers=api.headers,
                                  allow_redirects=False)
    assert again.headers["Location"] == f"/incidents/{other_id}?done=taken"
    done = await api.client.post(f"/incidents/{other_id}/resolve", headers=api.headers,
                                 data={"note": "已关阀"}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == f"/incidents/{other_id}?done=resolved"
    assert (await api.client.server.app[PAGING_SERVICE].get(other_id)).state == "resolved"
    text = await (await api.client.get(done.headers["Location"], headers=api.headers)).text()
    assert "已标记为已解决" in text and "/resolve" not in text
    resolved = await api.client.post(f"/api/incidents/{incident_id}/resolve", headers=api.headers)
    assert (await resolved.json())["state"] == "resolved"
    # Nobody was phoned: the ack came before the worker ran.
    await api.client.server.app[ESCALATION_WORKER].run_due()
    assert api.originator.dials == []


async def test_oncall_now_and_calendar_page(api: Api, staff: Staff) -> None:
    resp = await api.client.get("/api/oncall/now?community=lakeside&role=engineer",
                                headers=api.headers)
    assert resp.status == 200
    body = await resp.json()
    assert [p["name"] for p in body["people"]] == ["工程师e1", "工程师e2", "工程师sup"]
    assert body["until"].endswith("+08:00")
    missing = await api.client.get("/api/oncall/now?community=lakeside", headers=api.headers)
    assert missing.status == 400 and (await missing.json())["details"]["field"] == "role"
    nosched = await api.client.get("/api/oncall/now?role=plumber", headers=api.headers)
    assert nosched.status == 404
    page = await api.client.get("/oncall?community=lakeside", headers=api.headers)
    text = await page.text()
    assert page.status == 200 and "值班表" in text and "工程维修" in text
    assert text.count("<tr") == 15  # header + 14 days
    today = api.clock.now().astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{today.month}月{today.day}日" in text


async def test_supervisors_edit_schedules_overrides_and_policies(api: Api, staff: Staff) -> None:
    c = api.client
    schedule = {"name": "夜班值守", "shifts": [
        {"name": "夜班", "start": "18:00", "end": "08:30", "members": [staff.e3, staff.e1],
         "rotation_start": "2026-11-23", "period_days": 7}],
        "chain": [{"label": "primary", "source": "rotation"},
                  {"label": "supervisor", "source": "user", "user_id": staff.sup}]}
    denied = await c.put("/api/oncall/schedules/lakeside/night_duty", headers=api.headers,
                         json=schedule)
    assert denied.status == 403
    ok = await c.put("/api/oncall/schedules/lakeside/night_duty", headers=api.sup, json=schedule)
    assert ok.status == 200
    # 10:10 in Shanghai: no night shift now; cover resumes at 18:00.
    now = (await ok.json())["now"]
    assert now["people"] == [] and now["until"].startswith("2026-11-23T18:00")
    bad = await c.put("/api/oncall/schedules/lakeside/night_duty", headers=api.sup, json={
        "shifts": [{"start": "18:00", "end": "08:30", "members": [], "rotation_start": "soon"}]})
    assert bad.status == 400 and (await bad.json())["details"]["field"] == "shifts[0].rotation_start"
    bad = await c.put("/api/oncall/schedules/lakeside/night_duty", headers=api.sup, json={
        "shifts": [{"start": "18:70", "end": "08:30", "members": [1], "rotation_start": "2026-11-23"}]})
    assert bad.status == 400 and (await bad.json())["details"]["field"] == "shifts[0].start"

    override = await c.post("/api/oncall/overrides", headers=api.sup, json={
        "community": "lakeside", "role": "engineer", "starts_at": "2026-11-23T08:00",
        "ends_at": "2026-11-23T12:00", "user_id": staff.e3, "reason": "换班"})
    assert override.status == 201
    now = await (await c.get("/api/oncall/now?community=lakeside&role=engineer",
                             headers=api.headers)).json()
    assert [p["name"] for p in now["people"]][:2] == ["工程师e3", "工程师e2"]
    missing = await c.post("/api/oncall/overrides", headers=api.sup, json={"community": "lakeside"})
    assert missing.status == 400 and (await missing.json())["details"]["field"] == "role"

    bad_policy = await c.put("/api/escalation-policies/lakeside/gas", headers=api.sup,
                             json={"steps": [{"target": "astrologer"}]})
    assert bad_policy.status == 400
    assert (await bad_policy.json())["details"]["field"] == "steps[0].target"
    good = await c.put("/api/escalation-policies/lakeside/gas", headers=api.sup, json={
        "steps": [{"target": "user", "user_id": staff.mgr, "ring_timeout_s": 20, "retries": 0}],
        "max_rounds": 1})
    assert good.status == 200
    opened = await c.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "gas", "building": "1"})
    tl = await (await c.get(f"/api/incidents/{(await opened.json())['incident_id']}",
                            headers=api.headers)).json()
    assert tl["policy"]["steps"][0]["user_id"] == staff.mgr and tl["policy"]["max_rounds"] == 1


async def test_setup_paging_runs_the_worker_and_hears_incident_requested(
        db_url: str, sessionmaker: SM, staff: Staff) -> None:
    import asyncio

    from callcenter.appkeys import BUS
    from callcenter.bus import DomainEvent

    originator = ScriptedOriginator({target("e1"): [answer("1")]})
    app = create_core_app(Settings(database=DatabaseSettings(url=db_url)), clock=ManualClock())
    setup_paging(app, originator=originator)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        originator.handler = app[PAGE_CALL_HANDLER]
        app[BUS].publish(DomainEvent("incident.requested", {
            "community": "lakeside", "category": "gas", "building": "6", "caller": "13911112222",
            "ticket_id": 7, "number": "T-7"}))
        for _ in range(300):
            if originator.channels and originator.channels[0].hung_up:
                break
            await asyncio.sleep(0.01)
        tl = await app[PAGING_SERVICE].timeline(1)
        assert tl["state"] == "acknowledged" and tl["source"] == "voicemail"
        assert tl["reports"][0]["reference"] == "T-7"
        assert app[ESCALATION_WORKER].running
    finally:
        await client.close()
    assert not app[ESCALATION_WORKER].running  # stopped with the app


async def test_the_incident_list_shows_the_open_first_and_a_weeks_resolved(api: Api) -> None:
    async def report(category: str, building: str) -> int:
        resp = await api.client.post("/api/incidents", headers=api.headers, json={
            "community": "lakeside", "category": category, "building": building,
            "summary": f"{building}栋报警"})
        assert resp.status == 201
        incident_id: int = (await resp.json())["incident_id"]
        return incident_id

    old = await report("gas", "1")
    await api.client.post(f"/api/incidents/{old}/resolve", headers=api.headers)
    await api.clock.advance(8 * 86400)  # resolved 8 days ago: off the list
    week = await report("fire", "2")
    await api.client.post(f"/api/incidents/{week}/resolve", headers=api.headers)
    live = await report("elevator", "3")
    await api.clock.advance(95)
    page = await api.client.get("/incidents", headers=api.headers)
    text = await page.text()
    assert page.status == 200
    assert f'data-incident="{live}"' in text.split('id="incidents-done"')[0]
    assert f'data-incident="{week}"' in text.split('id="incidents-done"')[1]
    assert f'data-incident="{old}"' not in text
    assert "3栋" in text and "呼叫中" in text and "已呼叫 1:35" in text
    # nothing open: it says so
    await api.client.post(f"/api/incidents/{live}/resolve", headers=api.headers)
    text = await (await api.client.get("/incidents", headers=api.headers)).text()
    assert 'id="incidents-none"' in text and 'id="incidents-live"' not in text


async def test_the_incident_timeline_names_people_not_dial_strings(api: Api) -> None:
    api.originator.script = {}  # nobody answers
    resp = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "plumbing", "building": "5"})
    incident_id = (await resp.json())["incident_id"]
    await api.client.server.app[ESCALATION_WORKER].run_due()
    text = await (await api.client.get(f"/incidents/{incident_id}", headers=api.headers)).text()
    assert "第1轮第1步 · 电话呼叫 工程师e1：无人接听" in text
    assert "PJSIP/" not in text and "@trunk" not in text and "Local/" not in text
    assert "下一步" in text


async def test_the_duty_page_shows_who_is_on_call_and_the_open_emergencies(api: Api) -> None:
    page = await api.client.get("/duty", headers=api.sup)
    text = await page.text()
    assert page.status == 200 and "夜班值守" in text
    assert "当前值班" in text and "工程维修" in text
    assert "主值班 工程师e1" in text and "备班 工程师e2" in text
    assert 'id="duty-no-incidents"' in text
    resp = await api.client.post("/api/incidents", headers=api.headers, json={
        "community": "lakeside", "category": "gas", "building": "7", "summary": "楼道燃气味"})
    incident_id = (await resp.json())["incident_id"]
    text = await (await api.client.get("/duty", headers=api.sup)).text()
    assert f'data-incident="{incident_id}"' in text and "7栋" in text and "呼叫中" in text
    # an agent's desk is not the duty page
    assert (await api.client.get("/duty", headers=api.headers)).status == 403
