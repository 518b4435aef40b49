"""投诉分级: a complaint's grade at creation (API and the 新建工单 form) and by
调整投诉等级, bad input refused naming ``complaint_grade``, each grade's SLA limits
(defaults and ``sla.toml``), the running clocks re-armed on a regrade (injected
clock), and the 重大投诉 notice told to the supervisors once per ticket (a real
webhook), on SQLite and PostgreSQL. Who may regrade is in test_workflow_matrix."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select, update

from callcenter.appkeys import BUS
from callcenter.directory.models import StaffUser
from callcenter.metrics.recorders import BusRecorder
from callcenter.metrics.registry import Metrics
from tests.ticketing.test_sla_notices import hooks
from tests.ticketing.test_workorder_pages import post_form, walk_in
from tests.ticketing.workorder_world import PEOPLE, World, world
from ticketing.setup import SLA_CLOCK, SLA_WORKER
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import SLA_FILE, load_policy, parse_policy

__all__ = ["hooks", "world"]

Hooks = tuple[str, list[tuple[str, dict[str, Any]]]]


async def complaint(w: World, **kw: Any) -> dict[str, Any]:
    return await w.new_ticket(**{"category": "complaint", "summary": "保安态度恶劣", **kw})


async def timers(w: World, ticket_id: int) -> dict[str, tuple[str, datetime, int]]:
    """kind → (state, due_at, limit_min)."""
    async with w.sm() as s:
        rows = (await s.scalars(select(SlaTimer).where(SlaTimer.ticket_id == ticket_id))).all()
        return {r.kind: (r.state, r.due_at, r.limit_min) for r in rows}


def minutes_after(start: datetime, t: dict[str, tuple[str, datetime, int]]
                  ) -> dict[str, float]:
    return {k: (v[1] - start).total_seconds() / 60 for k, v in t.items() if v[0] == "pending"
            and k != "major_complaint"}


# -- creation -------------------------------------------------------------------


async def test_a_complaint_is_general_unless_graded_and_other_tickets_have_no_grade(
        world: World) -> None:
    w = world
    plain = await complaint(w)
    assert (plain["complaint_grade"], plain["complaint_grade_label"]) == ("general", "一般投诉")
    assert plain["events"][0]["data"] == {"grade": "general"}
    graded = await complaint(w, complaint_grade="important")
    assert (graded["complaint_grade"], graded["complaint_grade_label"]) == (
        "important", "重要投诉")
    repair = await w.new_ticket()
    assert repair["complaint_grade"] is None and repair["complaint_grade_label"] is None
    _, again = await w.call("GET", f"/api/tickets/{graded['id']}")
    assert again["complaint_grade"] == "important"


async def test_the_new_ticket_form_takes_the_grade(world: World) -> None:
    w = world
    status, location, _ = await post_form(w, "/tickets", walk_in(
        category="complaint", summary="物业态度差", complaint_grade="important"))
    assert status == 303, location
    _, t = await w.call("GET", location.replace("/tickets/", "/api/tickets/"))
    assert t["complaint_grade"] == "important"
    # the same grade on a 报修 is refused on the form, naming why, nothing made
    status, _, page = await post_form(w, "/tickets", walk_in(
        complaint_grade="major", idempotency_key="f9"))
    assert status == 400 and "只有服务投诉可以分级" in page
    _, listed = await w.call("GET", "/api/tickets")
    assert listed["total"] == 1


@pytest.mark.parametrize(("body", "why"), [
    ({"category": "plumbing", "complaint_grade": "major"}, "not a complaint"),
    ({"category": "complaint", "complaint_grade": "urgent"}, "unknown grade"),
    ({"category": "complaint", "complaint_grade": 3}, "not a string"),
])
async def test_a_bad_grade_at_creation_is_a_400_naming_the_field(
        world: World, body: dict[str, Any], why: str) -> None:
    w = world
    payload = {"summary": "投诉", "source": "agent", "room_id": w.seeded.room_3_2_1201, **body}
    status, err = await w.call("POST", "/api/tickets", json=payload)
    assert status == 400, (why, err)
    assert err["details"]["field"] == "complaint_grade", (why, err)
    _, listed = await w.call("GET", "/api/tickets")
    assert listed["total"] == 0


# -- regrade ----------------------------------------------------------------------


async def test_a_regrade_is_logged_with_both_grades_and_the_reason(world: World) -> None:
    w = world
    t = await complaint(w)
    status, after = await w.act(t["id"], "night_duty", "grade", complaint_grade="important",
                                reason="业主第三次来电")
    assert status == 200, after
    assert after["complaint_grade"] == "important" and after["state"] == "new"
    last = after["events"][-1]
    assert (last["action"], last["note"], last["actor_role"]) == ("grade", "业主第三次来电",
                                                                  "night_duty")
    assert last["data"] == {"grade": "important", "previous_grade": "general"}
    assert [e for e in w.events if e.data.get("action") == "grade"][0].data["data"] == {
        "grade": "important", "previous_grade": "general"}


@pytest.mark.parametrize(("ticket_kind", "body", "field"), [
    ("repair", {"complaint_grade": "important", "reason": "x"}, "complaint_grade"),
    ("complaint", {"complaint_grade": "urgent", "reason": "x"}, "complaint_grade"),
    ("complaint", {"reason": "x"}, "complaint_grade"),
    ("complaint", {"complaint_grade": "general", "reason": "x"}, "complaint_grade"),  # same
    ("complaint", {"complaint_grade": "major"}, "reason"),
    ("complaint", {"complaint_grade": "major", "reason": "   "}, "reason"),
])
async def test_a_bad_regrade_is_a_400_naming_the_field_and_changes_nothing(
        world: World, ticket_kind: str, body: dict[str, Any], field: str) -> None:
    w = world
    t = await (complaint(w) if ticket_kind == "complaint" else w.new_ticket())
    status, err = await w.act(t["id"], "agent", "grade", **body)
    assert status == 400, err
    assert err["details"]["field"] == field, err
    assert not err["message"].isascii()
    _, after = await w.call("GET", f"/api/tickets/{t['id']}")
    assert after["events"] == t["events"]
    assert after["complaint_grade"] == t["complaint_grade"]
    assert "major_complaint" not in await timers(w, t["id"])


async def test_list_filter_and_pages_show_the_grade_in_chinese(world: World) -> None:
    w = world
    general = await complaint(w)
    important = await complaint(w, complaint_grade="important")
    repair = await w.new_ticket()
    status, page = await w.call("GET", "/api/tickets?complaint_grade=important")
    assert status == 200 and [i["id"] for i in page["items"]] == [important["id"]]
    status, err = await w.call("GET", "/api/tickets?complaint_grade=urgent")
    assert status == 400 and err["details"]["field"] == "complaint_grade"
    status, html = await w.call("GET", "/tickets?complaint_grade=general")
    text = html.decode()
    assert status == 200 and general["number"] in text
    assert important["number"] not in text and repair["number"] not in text
    assert "一般投诉" in text
    # the ticket page: the grade, the 调整投诉等级 form, the regrade in the timeline
    status, _ = await w.act(important["id"], "agent", "grade", complaint_grade="general",
                            reason="核实后为一般问题")
    assert status == 200
    _, html = await w.call("GET", f"/tickets/{important['id']}")
    text = html.decode()
    assert 'class="complaint-grade">一般投诉<' in text
    assert "调整投诉等级" in text and "重要投诉 → 一般投诉" in text
    assert ">general<" not in text and ">important<" not in text
    # a 报修 has no grade and no regrade form
    _, html = await w.call("GET", f"/tickets/{repair['id']}")
    assert "投诉等级" not in html.decode()


# -- SLA limits -------------------------------------------------------------------


def _mins(limits: Any) -> tuple[float, float, float]:
    return tuple(limits.of(k).total_seconds() / 60 for k in ("response", "red_light",
                                                              "escalation"))  # type: ignore[return-value]


def test_each_grade_has_its_limits_and_the_file_changes_them(tmp_path: Path) -> None:
    defaults = load_policy(tmp_path / SLA_FILE)  # no file
    assert _mins(defaults.limits("hupan", "complaint", "normal", "general")) == (15, 120, 1440)
    assert _mins(defaults.limits("hupan", "complaint", "normal", "important")) == (10, 60, 720)
    assert _mins(defaults.limits("hupan", "complaint", "normal", "major")) == (5, 30, 240)
    # an emergency complaint never runs slower than an emergency
    assert _mins(defaults.limits("hupan", "complaint", "emergency", "important")) == (
        5, 30, 240)
    # a grade means nothing on another category
    assert _mins(defaults.limits("hupan", "plumbing", "normal", "major")) == (15, 120, 1440)
    path = tmp_path / SLA_FILE
    path.write_text("""
[normal]
response = 20
[complaint.major]
escalation = 120
[complaint.general]
red_light = 90
[communities.hupan.complaint.major]
response = 3
""", encoding="utf-8")
    policy = load_policy(path)
    assert _mins(policy.limits("binjiang", "complaint", "normal", "major")) == (5, 30, 120)
    assert _mins(policy.limits("hupan", "complaint", "normal", "major")) == (3, 30, 120)
    # general is the category's ordinary limits ([normal]) with its own table over them
    assert _mins(policy.limits("hupan", "complaint", "normal", "general")) == (20, 90, 1440)
    assert _mins(policy.limits("hupan", "complaint", "normal", "important")) == (10, 60, 720)


# A bad [complaint.<grade>] table: tests/ticketing/test_sla_policy.py (BAD).


async def test_the_clocks_of_a_complaint_run_by_its_grade_and_the_file(world: World) -> None:
    w = world
    start = w.clock.now()
    t = await complaint(w, complaint_grade="important")
    assert minutes_after(start, await timers(w, t["id"])) == {
        "response": 10, "red_light": 60, "escalation": 720}
    w.client.app[SLA_CLOCK].policy = parse_policy(
        {"communities": {"hupan": {"complaint": {"important": {"escalation": 300}}}}}, "t")
    t = await complaint(w, complaint_grade="important")
    assert minutes_after(start, await timers(w, t["id"])) == {
        "response": 10, "red_light": 60, "escalation": 300}


async def test_a_regrade_measures_the_running_clocks_again_with_the_new_limits(
        world: World) -> None:
    w = world
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand
    start = w.clock.now()
    t = await complaint(w)
    assert minutes_after(start, await timers(w, t["id"])) == {
        "response": 15, "red_light": 120, "escalation": 1440}
    w.clock.set(start + timedelta(minutes=4))
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="major",
                            reason="业主要投诉到住建局")
    assert status == 200
    # from the complaint's own start, as if it had been 重大 all along: 5, 30, 240
    # minutes (not 4 + 5 …), and the limits copied
    after = await timers(w, t["id"])
    assert minutes_after(start, after) == {"response": 5, "red_light": 30, "escalation": 240}
    assert [after[k][2] for k in ("response", "red_light", "escalation")] == [5, 30, 240]
    # the new response clock runs out at 5 minutes, not 15
    w.clock.set(start + timedelta(minutes=4, seconds=59))
    assert await worker.run_due() == 0
    w.clock.set(start + timedelta(minutes=5, seconds=1))
    assert await worker.run_due() == 1
    _, body = await w.call("GET", f"/api/tickets/{t['id']}")
    assert [b["text"] for b in body["sla"]["breaches"]] == ["超过5分钟未响应"]
    # a clock that already ran out stays out; the running ones move (down to important)
    w.clock.set(start + timedelta(minutes=20))
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="important",
                            reason="已与业主沟通")
    assert status == 200
    again = await timers(w, t["id"])
    assert again["response"][0] == "fired"
    assert minutes_after(start, again) == {"red_light": 60, "escalation": 720}
    # back up to 重大 at minute 50: its red light (30) is already past, so due now,
    # never in the past; escalation 240 from the start
    w.clock.set(start + timedelta(minutes=50))
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="major",
                            reason="业主再次来电")
    assert status == 200
    up = await timers(w, t["id"])
    assert minutes_after(start, up) == {"red_light": 50, "escalation": 240}
    # a stopped clock stays stopped: after 派单 and 接单 only escalation moves
    await w.act(t["id"], "agent", "dispatch", department="customer_service",
                assignee_id=w.users["agent"])
    await w.act(t["id"], "agent", "accept")
    w.clock.set(start + timedelta(minutes=55))
    status, _ = await w.act(t["id"], "supervisor", "grade", complaint_grade="general",
                            reason="业主撤回")
    assert status == 200
    last = await timers(w, t["id"])
    assert last["red_light"][0] == "cancelled"
    assert minutes_after(start, last) == {"escalation": 1440}


# -- the 重大投诉 notice -------------------------------------------------------------


async def _hooks_for(w: World, base: str, kinds: tuple[str, ...]) -> None:
    async with w.sm() as s:
        for kind in kinds:
            await s.execute(update(StaffUser).where(StaffUser.id == w.users[kind])
                            .values(notify={"webhook": base + PEOPLE[kind][0]}))
        await s.commit()


async def test_a_major_complaint_tells_the_supervisors_once(world: World, hooks: Hooks
                                                            ) -> None:
    w = world
    base, got = hooks
    await _hooks_for(w, base, ("agent", "assignee", "head", "supervisor"))
    metrics = Metrics()
    recorder = BusRecorder(metrics)
    recorder.subscribe(w.client.app[BUS])
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand
    t = await complaint(w, complaint_grade="major", summary="保安打人")
    number = t["number"]
    await worker.run_due()
    assert [who for who, _ in got] == ["boss"]  # the supervisor, nobody else
    body = got[0][1]
    assert body["key"] == f"sla:{number}:major_complaint"
    assert body["title"] == f"重大投诉：{number}"
    assert body["text"] == "重大投诉，请主管立即跟进：保安打人"
    assert body["fields"]["投诉等级"] == "重大投诉"
    # on the timeline (fired, then whom it reached), with no 超时 badge and no breach metric
    _, after = await w.call("GET", f"/api/tickets/{t['id']}")
    notices = [e for e in after["events"] if e["action"] == "major_notice"]
    assert [e["note"] for e in notices] == ["重大投诉，正在通知小区主管",
                                            "重大投诉已通知主管：赵主管"]
    assert after["sla"] == {"red": False, "breaches": []}
    assert "callcenter_sla_breaches_total{" not in generate_latest(metrics.registry).decode()
    _, html = await w.call("GET", f"/tickets/{t['id']}")
    assert "重大投诉通知" in html.decode() and "重大投诉已通知主管：赵主管" in html.decode()
    assert "系统（时限提醒）" in html.decode() and ">sla<" not in html.decode()  # no raw actor
    # down to important and back to major: nobody is told again
    for grade in ("important", "major"):
        status, _ = await w.act(t["id"], "agent", "grade", complaint_grade=grade, reason="复核")
        assert status == 200
    w.clock.set(w.clock.now() + timedelta(minutes=2))
    await worker.run_due()
    assert [b["key"] for _, b in got].count(f"sla:{number}:major_complaint") == 1
    recorder.close()


async def test_a_complaint_regraded_to_major_tells_the_supervisors_at_once(
        world: World, hooks: Hooks) -> None:
    w = world
    base, got = hooks
    await _hooks_for(w, base, ("supervisor",))
    t = await complaint(w, complaint_grade="important")
    await w.client.app[SLA_WORKER].run_due()
    assert got == []  # 重要 tells nobody
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="major",
                            reason="业主称要找媒体")
    assert status == 200
    # the running worker is woken by the regrade: no sweep by hand
    for _ in range(300):
        if got:
            break
        await asyncio.sleep(0.01)
    assert [(who, b["key"]) for who, b in got] == [("boss", f"sla:{t['number']}:major_complaint")]
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="important",
                            reason="复核")
    status, _ = await w.act(t["id"], "agent", "grade", complaint_grade="major", reason="复核")
    await w.client.app[SLA_WORKER].run_due()
    assert len(got) == 1


async def test_the_ticket_page_form_regrades_and_says_what_is_missing(world: World) -> None:
    w = world
    t = await complaint(w)
    path = f"/tickets/{t['id']}/action"
    status, _, page = await post_form(w, path, {"action": "grade", "complaint_grade": "major"})
    assert status == 400 and "请填写调整原因" in page
    status, location, _ = await post_form(w, path, {
        "action": "grade", "complaint_grade": "important", "reason": "业主再次来电"})
    assert (status, location) == (303, f"/tickets/{t['id']}")
    _, after = await w.call("GET", f"/api/tickets/{t['id']}")
    assert after["complaint_grade"] == "important"
    # an engineer is not the front desk: refused, nothing changed
    status, _, page = await post_form(w, path, {
        "action": "grade", "complaint_grade": "major", "reason": "x"}, kind="engineer")
    assert status == 403 and "可以调整投诉等级" in page
    _, again = await w.call("GET", f"/api/tickets/{t['id']}")
    assert again["complaint_grade"] == "important"


async def test_a_major_complaint_with_no_supervisor_to_reach_says_so_once(world: World
                                                                         ) -> None:
    w = world
    worker = w.client.app[SLA_WORKER]
    await worker.stop()
    t = await complaint(w, complaint_grade="major")
    await worker.run_due()
    w.clock.set(w.clock.now() + timedelta(minutes=5))  # past the lease: nothing is retried
    await worker.run_due()
    _, after = await w.call("GET", f"/api/tickets/{t['id']}")
    assert [e["note"] for e in after["events"] if e["action"] == "major_notice"] == [
        "重大投诉，正在通知小区主管", "重大投诉：没有可通知的主管（未设置通知方式）"]
