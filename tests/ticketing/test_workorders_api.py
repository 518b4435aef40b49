"""Work orders end to end through the HTTP API, on SQLite and PostgreSQL:
受理 → 派单 → 接单 → 到场 → 完工 → 回访 (low score → callback → 归档), reopen,
退单 and 改派, the on-call person, photos, idempotent creation, bad input."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from aiohttp import FormData
from sqlalchemy import func, select

from callcenter.appkeys import BUS
from callcenter.oncall.services import ShiftInput, create_schedule
from tests.ticketing.workorder_world import JPEG, PNG, World, world
from ticketing.models import Ticket, TicketPhoto

__all__ = ["world"]


@pytest.fixture
def w(world: World) -> World:
    return world


async def upload(w: World, ticket_id: int, kind: str, *files: bytes,
                 name: str = "a.jpg") -> tuple[int, object]:
    form = FormData()
    for data in files:
        form.add_field("photo", data, filename=name, content_type="image/jpeg")
    form.add_field("note", "漏点照片")
    return await w.call("POST", f"/api/tickets/{ticket_id}/photos", kind=kind, data=form)


async def test_the_whole_work_order_with_a_low_score_callback_before_archiving(w: World
                                                                               ) -> None:
    t = await w.new_ticket()
    tid = t["id"]
    status, t = await w.act(tid, "agent", "dispatch", department="engineering",
                            assignee_id=w.users["assignee"],
                            appointment_at="2026-11-23T14:00", note="业主下午在家")
    assert status == 200, t
    assert t["state"] == "dispatched" and t["assignee"]["name"] == "陈师傅"
    assert t["appointment_at"] == "2026-11-23T06:00:00+00:00"  # 14:00 in Shanghai
    for action in ("accept", "arrive"):
        status, t = await w.act(tid, "assignee", action)
        assert status == 200, t
    status, t = await upload(w, tid, "assignee", JPEG, PNG)
    assert status == 200, t
    assert [p["content_type"] for p in t["photos"]] == ["image/jpeg", "image/png"]
    status, t = await w.act(tid, "assignee", "complete", note="更换三通，已试水",
                            materials="三通1个、生料带", cost="35.5")
    assert status == 200, t
    assert (t["state"], t["materials"], t["cost"]) == ("resolved", "三通1个、生料带", "35.50")

    status, t = await w.act(tid, "agent", "follow_up", score=2, resolved=True,
                            comment="师傅来晚了")
    assert status == 200, t
    assert t["state"] == "followed_up"
    assert t["follow_up"] == {"score": 2, "resolved": True, "comment": "师傅来晚了"}
    assert [c["done_at"] for c in t["callbacks"]] == [None]
    status, err = await w.act(tid, "agent", "archive")
    assert status == 409 and err["error"] == "callback_pending", err
    assert "回访任务未完成" in err["message"]
    status, err = await w.act(tid, "agent", "callback_done", note="已致歉")
    assert status == 403  # the callback is a supervisor's
    status, t = await w.act(tid, "supervisor", "callback_done", note="主管致电致歉，业主接受")
    assert status == 200, t
    assert t["callbacks"][0]["done_by"] == "boss"
    status, t = await w.act(tid, "agent", "archive", note="归档")
    assert status == 200 and t["state"] == "closed", t

    steps = [(e["action"], e["actor"], e["actor_role"], e["to"]) for e in t["events"]]
    assert steps == [
        ("create", "xiaoli", None, "new"),
        ("dispatch", "xiaoli", "agent", "dispatched"),
        ("accept", "chen", "engineer", "accepted"),
        ("arrive", "chen", "engineer", "in_progress"),
        ("add_photo", "chen", "engineer", "in_progress"),
        ("complete", "chen", "engineer", "resolved"),
        ("follow_up", "xiaoli", "agent", "followed_up"),
        ("callback_done", "boss", "supervisor", "followed_up"),
        ("archive", "xiaoli", "agent", "closed"),
    ]
    assert t["events"][1]["data"]["assignee_id"] == w.users["assignee"]
    assert t["events"][6]["data"]["callback_id"] == t["callbacks"][0]["id"]
    await w.client.app[BUS].drain()
    assert [e.data["action"] for e in w.events] == [s[0] for s in steps[1:]]


async def test_not_resolved_reopens_back_to_dispatch(w: World) -> None:
    tid = (await w.new_ticket())["id"]
    await w.act(tid, "agent", "dispatch", assignee_id=w.users["assignee"],
                appointment_at="2026-11-23T15:00")
    await w.force(tid, "resolved")
    status, t = await w.act(tid, "agent", "follow_up", score=5, resolved=False)
    assert status == 200, t
    assert t["state"] == "reopened" and t["callbacks"] == []
    assert [e["action"] for e in t["events"][-2:]] == ["follow_up", "reopen"]
    status, t = await w.act(tid, "agent", "dispatch", assignee_id=w.users["head"])
    assert status == 200 and t["state"] == "dispatched", t
    assert t["appointment_at"] is None


async def test_a_good_score_needs_no_callback(w: World) -> None:
    tid = (await w.new_ticket())["id"]
    await w.force(tid, "resolved")
    status, t = await w.act(tid, "agent", "follow_up", score=4, resolved=True)
    assert status == 200 and t["callbacks"] == []
    status, t = await w.act(tid, "agent", "archive")
    assert status == 200 and t["state"] == "closed"


async def test_return_with_a_reason_then_reassign_are_recorded(w: World) -> None:
    tid = (await w.new_ticket())["id"]
    await w.act(tid, "agent", "dispatch", assignee_id=w.users["assignee"])
    status, err = await w.act(tid, "assignee", "return")
    assert status == 400 and err["details"]["field"] == "reason"
    status, t = await w.act(tid, "assignee", "return", reason="不是管道问题，是燃气")
    assert status == 200 and t["state"] == "returned" and t["assignee"] is None
    assert t["events"][-1]["note"] == "不是管道问题，是燃气"
    status, t = await w.act(tid, "agent", "dispatch", assignee_id=w.users["assignee"],
                            appointment_at="2026-11-24T09:00:00+08:00")
    status, t = await w.act(tid, "head", "reassign", assignee_id=w.users["head"],
                            note="我自己去")
    assert t["appointment_at"] == "2026-11-24T01:00:00+00:00"  # 改派 keeps the agreed visit
    assert status == 200 and t["assignee"]["user_id"] == w.users["head"], t
    assert t["events"][-1]["data"]["previous_assignee_id"] == w.users["assignee"]
    # The one it was taken from no longer moves it, nor finds it among theirs.
    status, _ = await w.act(tid, "assignee", "accept")
    assert status == 403
    _, mine = await w.call("GET", f"/api/tickets?assignee_id={w.users['head']}")
    assert [t["id"] for t in mine["items"]] == [tid]
    _, theirs = await w.call("GET", f"/api/tickets?assignee_id={w.users['assignee']}")
    assert theirs["total"] == 0


async def test_dispatch_to_the_departments_on_call_person_now(w: World) -> None:
    async with w.sm() as s:
        await create_schedule(s, community="hupan", role="engineer", shifts=[ShiftInput(
            "全天", "00:00", "00:00", [w.users["head"], w.users["assignee"]],
            rotation_start=date(2026, 11, 23), period_days=1)])
    tid = (await w.new_ticket())["id"]
    status, t = await w.act(tid, "agent", "dispatch", on_call=True)
    assert status == 200, t
    assert t["assignee"]["user_id"] == w.users["head"]  # the rotation's turn today
    assert t["events"][-1]["data"]["on_call"] is True


async def test_on_call_without_a_schedule_is_a_clear_409(w: World) -> None:
    tid = (await w.new_ticket())["id"]
    status, err = await w.act(tid, "agent", "dispatch", on_call=True)
    assert status == 409 and "值班表" in err["message"]
    assert await w.state_of(tid) == "new"


BAD_ACTIONS = [
    ({"action": "fly"}, "action"),
    ({"action": "dispatch"}, "assignee_id"),
    ({"action": "dispatch", "assignee_id": "3"}, "assignee_id"),
    ({"action": "dispatch", "department": "kitchen", "assignee_id": 1}, "department"),
    ({"action": "dispatch", "appointment_at": "tomorrow", "assignee_id": 1}, "appointment_at"),
    ({"action": "dispatch", "on_call": "yes"}, "on_call"),
    ({"action": "dispatch", "note": "x" * 1001}, "note"),
]


async def test_bad_action_bodies_are_400s_naming_the_field(w: World) -> None:
    tid = (await w.new_ticket())["id"]
    for body, field in BAD_ACTIONS:
        status, err = await w.call("POST", f"/api/tickets/{tid}/actions", json=body)
        assert status == 400, (body, err)
        assert err["details"]["field"] == field, (body, err)
    # A person not in the department.
    status, err = await w.act(tid, "agent", "dispatch", assignee_id=w.users["engineer"])
    assert status == 400 and err["details"]["field"] == "assignee_id"
    assert "不是工程部的人员" in err["message"]
    await w.force(tid, "in_progress")
    for body, field in [({"note": ""}, "note"), ({"note": "好了", "cost": "abc"}, "cost"),
                        ({"note": "好了", "cost": "-1"}, "cost")]:
        status, err = await w.act(tid, "assignee", "complete", **body)
        assert status == 400 and err["details"]["field"] == field, (body, err)
    await w.force(tid, "resolved")
    for body, field in [({"resolved": True}, "score"), ({"score": 6, "resolved": True}, "score"),
                        ({"score": True, "resolved": True}, "score"), ({"score": 3}, "resolved")]:
        status, err = await w.act(tid, "agent", "follow_up", **body)
        assert status == 400 and err["details"]["field"] == field, (body, err)
    assert await w.state_of(tid) == "resolved"


async def test_photos_are_images_only_size_limited_and_stored_beside_recordings(w: World
                                                                                ) -> None:
    tid = (await w.new_ticket())["id"]
    await w.force(tid, "in_progress")
    status, err = await upload(w, tid, "assignee", b"<?php system($_GET['c']); ?>",
                               name="x.jpg")
    assert status == 400 and err["details"]["field"] == "photo" and "图片" in err["message"]
    status, err = await upload(w, tid, "assignee", JPEG + b"\x00" * (5 * 1024 * 1024))
    assert status == 400 and "5 MB" in err["message"]
    status, err = await upload(w, tid, "engineer", JPEG)
    assert status == 403  # not theirs
    status, t = await upload(w, tid, "assignee", JPEG, name="../../etc/passwd")
    assert status == 200, t
    url = t["photos"][0]["url"]
    status, body = await w.call("GET", url, kind="engineer")
    assert status == 200 and body == JPEG
    async with w.sm() as s:
        stored = (await s.scalars(select(TicketPhoto.stored_path))).one()
    assert stored.startswith("photos/2026/11/") and stored.endswith(f"-t{tid}.jpg")
    assert (w.data_dir / "recordings" / stored).read_bytes() == JPEG
    other = (await w.new_ticket())["id"]
    status, _ = await w.call("GET", f"/tickets/{other}/photos/{t['photos'][0]['id']}")
    assert status == 404  # a photo is reached only through its own ticket


async def test_a_double_submitted_new_ticket_makes_one_ticket(w: World) -> None:
    body = {"category": "elevator", "summary": "3栋电梯厅灯不亮", "source": "walk_in",
            "community": "hupan", "common_area": "电梯厅", "building": "3",
            "idempotency_key": "form-7f3a9c"}
    results = await asyncio.gather(*(w.call("POST", "/api/tickets", json=body)
                                     for _ in range(2)))
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 201], results
    assert results[0][1]["id"] == results[1][1]["id"]
    assert results[0][1]["location"] == "湖畔花园3栋电梯厅"
    assert results[0][1]["common_area"] == "电梯厅" and results[0][1]["room_id"] is None
    async with w.sm() as s:
        assert await s.scalar(select(func.count(Ticket.id))) == 1
    # The header works the same; another key is another ticket.
    status, again = await w.call("POST", "/api/tickets", json={**body, "idempotency_key": None},
                                 headers={"Idempotency-Key": "form-7f3a9c"})
    assert status == 200 and again["id"] == results[0][1]["id"]
    status, _ = await w.call("POST", "/api/tickets", json={**body, "idempotency_key": "k2"})
    assert status == 201
    # Someone else's key is theirs: the same string from the supervisor is a new ticket,
    # never the agent's ticket handed back.
    status, other = await w.call("POST", "/api/tickets", json=body, kind="supervisor")
    assert status == 201 and other["id"] != results[0][1]["id"]


async def test_common_area_needs_a_known_area_and_a_community(w: World) -> None:
    for body, field in [({"common_area": "火星"}, "common_area"),
                        ({"common_area": "地下车库"}, "community"),
                        ({"common_area": "地下车库", "community": "hupan", "room_id": 1},
                         "common_area"),
                        ({"idempotency_key": "has space"}, "idempotency_key")]:
        status, err = await w.call("POST", "/api/tickets", json={
            "category": "parking", "summary": "车库积水", **body})
        assert status == 400 and err["details"]["field"] == field, (body, err)


async def test_departments_are_seeded_and_configurable(w: World) -> None:
    status, body = await w.call("GET", "/api/departments?community=binjiang", kind="agent")
    assert status == 200
    assert [d["name"] for d in body["departments"]] == ["工程部", "保洁部", "秩序部", "客服部",
                                                         "绿化部"]
    status, err = await w.call("PUT", "/api/departments/binjiang/greening", kind="agent",
                               json={"name": "绿化"})
    assert status == 403
    status, d = await w.call("PUT", "/api/departments/binjiang/greening", kind="supervisor",
                             json={"name": "园林绿化部", "members": [
                                 {"user_id": w.users["engineer"], "head": True}]})
    assert status == 200, d
    assert d["name"] == "园林绿化部" and d["members"][0]["head"] is True
    status, err = await w.call("PUT", "/api/departments/binjiang/greening", kind="supervisor",
                               json={"name": "绿化", "members": [{"user_id": 99999}]})
    assert status == 400 and err["details"]["field"] == "members[0].user_id"
    for query in ("community=0", "community=424242", "community=nowhere", ""):
        status, err = await w.call("GET", f"/api/departments?{query}", kind="supervisor")
        assert status == 400 and err["details"]["field"] == "community", (query, err)

