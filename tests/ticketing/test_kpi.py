"""The 3:3:4 KPI against a fixture computed by hand: four work orders driven through
the HTTP API on an injected clock (SQLite and PostgreSQL), a real SLA breach or two,
a 回访 that reopens, a second engineer; then ``GET /api/reports/kpi`` and the page.

The expected figures below were worked out on paper from the story, step by step
(see each comment), not read back from the code."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.ticketing.workorder_world import World, world
from ticketing.setup import SLA_WORKER

__all__ = ["world"]
TZ = ZoneInfo("Asia/Shanghai")


def local(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 12, day, hh, mm, tzinfo=TZ)


@pytest.fixture
async def story(world: World) -> World:
    w = world
    await w.client.app[SLA_WORKER].stop()  # breaches fired by hand, on the test's clock
    eng = {"department": "engineering"}

    async def at(day: int, hh: int, mm: int = 0) -> None:
        w.clock.set(local(day, hh, mm))

    async def ok(tid: int, kind: str, action: str, **body: object) -> None:
        status, t = await w.act(tid, kind, action, **body)
        assert status == 200, (action, t)

    # 12月1日 09:00: 小李 (agent) takes T1, 老王 (night duty) takes T2.
    await at(1, 9)
    t1 = (await w.new_ticket(summary="T1 厨房漏水"))["id"]
    status, t2 = await w.call("POST", "/api/tickets", kind="night_duty", json={
        "category": "plumbing", "summary": "T2 卫生间漏水", "source": "agent",
        "caller_number": "13800000002", "room_id": w.seeded.room_5_1_801})
    assert status == 201, t2
    t2 = t2["id"]
    await at(1, 9, 5)
    await ok(t1, "agent", "dispatch", **eng, assignee_id=w.users["assignee"])
    await at(1, 9, 16)
    assert await w.client.app[SLA_WORKER].run_due() == 1  # T2's 15-minute response
    await at(1, 9, 20)
    await ok(t1, "assignee", "accept")
    await at(1, 9, 30)
    await ok(t2, "night_duty", "dispatch", **eng, assignee_id=w.users["assignee"])
    await at(1, 9, 40)
    await ok(t1, "assignee", "arrive")
    await at(1, 10)
    await ok(t1, "assignee", "complete", note="换阀门")
    await at(1, 11)
    await ok(t1, "agent", "follow_up", score=5, resolved=True)
    await at(1, 11, 5)
    assert await w.client.app[SLA_WORKER].run_due() == 1  # T2's 2-hour red light (陈师傅's)
    await at(1, 12)
    await ok(t2, "assignee", "accept")
    await at(1, 12, 10)
    await ok(t2, "assignee", "arrive")
    await at(1, 12, 30)
    await ok(t2, "assignee", "complete", note="打胶")
    await at(1, 13)
    await ok(t2, "agent", "follow_up", score=3, resolved=False)  # → reopened at once
    assert await w.state_of(t2) == "reopened"
    await at(1, 13, 10)
    await ok(t2, "agent", "dispatch", **eng, assignee_id=w.users["head"])
    await at(1, 13, 20)
    await ok(t2, "head", "accept")
    await at(1, 13, 30)
    await ok(t2, "head", "arrive")
    await at(1, 14)
    await ok(t2, "head", "complete", note="更换地漏")
    await at(1, 14, 30)
    await ok(t2, "agent", "follow_up", score=4, resolved=True)

    # 12月2日: T3 by 小李, done by 陈师傅, no 回访 yet; T5 in the other community.
    await at(2, 10)
    t3 = (await w.new_ticket(summary="T3 阳台漏水"))["id"]
    await at(2, 10, 10)
    await ok(t3, "agent", "dispatch", **eng, assignee_id=w.users["assignee"])
    await at(2, 10, 20)
    await ok(t3, "assignee", "accept")
    await ok(t3, "assignee", "arrive")
    await at(2, 11)
    await ok(t3, "assignee", "complete", note="疏通")
    await w.new_ticket(summary="T5 别的小区", room_id=w.seeded.room_other_1_1_101)
    await at(3, 9)
    return w


def people(side: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {p["username"]: p for p in side}


async def test_kpi_matches_the_hand_computed_fixture(story: World) -> None:
    w = story
    status, body = await w.call("GET", "/api/reports/kpi?from=2026-12-01&to=2026-12-02"
                                "&by=day&community=hupan", kind="supervisor")
    assert status == 200, body
    assert body["weights"] == {"volume": 0.3, "praise": 0.3, "resolution": 0.4}
    desk = people(body["total"]["front_desk"])
    assert set(desk) == {"xiaoli", "laowang"}  # T5 (other community) left out
    # 小李: T1 (回访 5, resolved), T3 (no 回访, resolved): 2 handled, praise 1/1,
    # resolution 2/2, both answered within 15 min (5 and 10 min → mean 7:30);
    # the busiest of the desk → volume 100; 30 + 30 + 40 = 100.
    x = desk["xiaoli"]
    assert (x["handled"], x["scored"], x["praised"], x["resolved"]) == (2, 1, 1, 2)
    assert x["praise_rate"] == 1.0 and x["resolution_rate"] == 1.0
    assert x["volume_score"] == 100.0 and x["score"] == pytest.approx(100.0)
    assert x["sla_met"] == {"response": 1.0} and x["mean_s"] == {"response": 450.0}
    # 老王: T2 only, first 回访 3 (not praise), reopened (not resolved), its response
    # breached (dispatched after 30 min): volume 1/2 → 50; 0.3·50 = 15.
    lw = desk["laowang"]
    assert (lw["handled"], lw["scored"], lw["praised"], lw["resolved"]) == (1, 1, 0, 0)
    assert lw["volume_score"] == 50.0 and lw["score"] == pytest.approx(15.0)
    assert lw["sla_met"] == {"response": 0.0} and lw["mean_s"] == {"response": 1800.0}
    assert [p["username"] for p in body["total"]["front_desk"]] == ["xiaoli", "laowang"]

    doers = people(body["total"]["doers"])
    assert set(doers) == {"chen", "zhou"}
    # 陈师傅: completed T1 (then 5), T2 (then 3, reopened), T3 (no 回访): 3 handled,
    # praise 1/2, resolution 2/3, T2's red light fell in his assignment → 2/3;
    # 接单 after 15, 150, 10 min → mean 3500 s; 完工 1 h, 3.5 h, 1 h after 受理 → 6600 s;
    # 30·1 + 30·0.5 + 40·2/3 = 71.67.
    c = doers["chen"]
    assert (c["handled"], c["scored"], c["praised"], c["resolved"]) == (3, 2, 1, 2)
    assert c["praise_rate"] == 0.5 and c["resolution_rate"] == pytest.approx(2 / 3)
    assert c["score"] == pytest.approx(30 + 15 + 40 * 2 / 3)
    assert c["sla_met"] == {"red_light": pytest.approx(2 / 3), "escalation": 1.0}
    assert c["mean_s"] == {"accept": 3500.0, "resolve": 6600.0}
    # 周工: completed T2 after the reopen (then 4, resolved): 1 handled of chen's 3 →
    # volume 33.3; the earlier red light was not his; 10 + 30 + 40 = 80; 接单 10 min,
    # 完工 5 h after 受理.
    z = doers["zhou"]
    assert (z["handled"], z["scored"], z["praised"], z["resolved"]) == (1, 1, 1, 1)
    assert z["volume_score"] == pytest.approx(100 / 3)
    assert z["score"] == pytest.approx(80.0)
    assert z["sla_met"] == {"red_light": 1.0, "escalation": 1.0}
    assert z["mean_s"] == {"accept": 600.0, "resolve": 18000.0}
    assert [p["username"] for p in body["total"]["doers"]] == ["zhou", "chen"]

    # Per day. 12月1日: desk 1 and 1 (both volume 100: 小李 100, 老王 30); doers 陈师傅 2
    # (T1, T2: praise 1/2, resolved 1/2 → 30 + 15 + 20 = 65), 周工 1 (50 → 15 + 70 = 85).
    # 12月2日: T3 alone, no 回访 score: volume and resolution weighted 3:4 → 100.
    d1, d2 = body["periods"]
    assert (d1["label"], d2["label"]) == ("12月1日", "12月2日")
    assert {k: p["score"] for k, p in people(d1["front_desk"]).items()} == {
        "xiaoli": pytest.approx(100.0), "laowang": pytest.approx(30.0)}
    assert {k: p["score"] for k, p in people(d1["doers"]).items()} == {
        "chen": pytest.approx(65.0), "zhou": pytest.approx(85.0)}
    (x2,), (c2,) = d2["front_desk"], d2["doers"]
    assert (x2["username"], x2["handled"], x2["praise_rate"], x2["score"]) == (
        "xiaoli", 1, None, pytest.approx(100.0))
    assert x2["score_note"] and (c2["username"], c2["handled"]) == ("chen", 1)

    # Every community of the supervisor: T5 (Dec 2, 小李) counts too.
    status, every = await w.call("GET", "/api/reports/kpi?from=2026-12-01&to=2026-12-02",
                                 kind="supervisor")
    assert status == 200 and people(every["total"]["front_desk"])["xiaoli"]["handled"] == 3
    # By week: 11月30日–12月6日 holds both days.
    status, week = await w.call("GET", "/api/reports/kpi?from=2026-12-01&to=2026-12-02"
                                "&by=week&community=hupan", kind="supervisor")
    assert status == 200 and [p["label"] for p in week["periods"]] == ["11月30日–12月6日"]
    assert people(week["periods"][0]["doers"])["chen"]["handled"] == 3


async def test_kpi_page_and_csv_speak_chinese(story: World) -> None:
    w = story
    q = "from=2026-12-01&to=2026-12-02&community=hupan"
    status, page = await w.call("GET", f"/reports/kpi?{q}", kind="supervisor")
    assert status == 200
    html = page.decode()
    for text in ("绩效考核", "前台受理", "处理人员", "小李", "老王", "陈师傅", "周工",
                 "71.7", "80.0", "66.7%", "58:20", "1:50:00"):  # 3500 s, 6600 s as 分:秒
        assert text in html, text
    assert "xiaoli" not in html and "front_desk" not in html
    status, body = await w.call("GET", f"/reports/kpi.csv?{q}", kind="supervisor")
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:5] == ["时段", "类别", "姓名", "岗位", "工单量"]
    chen = next(r for r in rows if r[0] == "合计" and r[2] == "陈师傅")
    assert chen[4] == "3" and chen[9] == "71.7"


async def test_kpi_is_the_supervisors_and_scoped_to_their_communities(story: World) -> None:
    w = story
    for kind in ("agent", "night_duty", "engineer", "assignee"):
        status, _ = await w.call("GET", "/api/reports/kpi", kind=kind)
        assert status == 403, kind
    status, _ = await w.call("GET", "/api/reports/kpi", kind=None)
    assert status == 401
    status, err = await w.call("GET", "/api/reports/kpi?community=nowhere", kind="supervisor")
    assert status == 400 and err["details"]["field"] == "community", err
    status, err = await w.call("GET", "/api/reports/kpi?by=year", kind="supervisor")
    assert status in (400, 422) and "by" in str(err), err
    status, err = await w.call("GET", "/api/reports/kpi?from=2026-12-05&to=2026-12-01",
                               kind="supervisor")
    assert status == 400 and err["details"]["field"] == "to", err
