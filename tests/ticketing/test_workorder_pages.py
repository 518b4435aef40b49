"""The work-order pages over a real socket, on SQLite and PostgreSQL: the 新建工单 form
(owner from the directory, a double submit makes one ticket, another community's
ticket refused), the action forms and the Chinese timeline in local time."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.auth.tokens import create_token
from callcenter.directory.models import StaffCommunity, StaffUser
from tests.ticketing.workorder_world import World, world
from ticketing.models import Ticket

__all__ = ["world"]


@pytest.fixture
def w(world: World) -> World:
    return world


def walk_in(**kw: str) -> dict[str, str]:
    form = {"source": "walk_in", "category": "plumbing", "community": "hupan", "place": "room",
            "building": "3", "unit": "2", "room": "1201", "caller_name": "王小明",
            "caller_number": "139 1234 5678", "summary": "卫生间漏水", "idempotency_key": "f1"}
    form.update(kw)
    return form


async def post_form(w: World, path: str, form: dict[str, Any], kind: str = "agent"
                    ) -> tuple[int, str, str]:
    async with w.client.post(path, data=form, headers=w.auth(kind),
                             allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def count_tickets(w: World) -> int:
    async with w.sm() as s:
        return int(await s.scalar(select(func.count(Ticket.id))) or 0)


async def test_the_form_files_an_owners_walk_in_once_however_often_it_is_sent(w: World
                                                                              ) -> None:
    results = await asyncio.gather(*(post_form(w, "/tickets", walk_in()) for _ in range(3)))
    assert {status for status, _, _ in results} == {303}
    assert len({location for _, location, _ in results}) == 1
    assert await count_tickets(w) == 1
    tid = int(results[0][1].rsplit("/", 1)[1])
    _, t = await w.call("GET", f"/api/tickets/{tid}")
    assert t["room_id"] == w.seeded.room_3_2_1201 and t["person_id"] == w.seeded.wang_id
    assert (t["source"], t["location"]) == ("walk_in", "湖畔花园3栋2单元1201室")
    # A new form (a new key) is a new ticket.
    status, _, _ = await post_form(w, "/tickets", walk_in(idempotency_key="f2"))
    assert status == 303 and await count_tickets(w) == 2


async def test_the_form_says_what_is_wrong_in_chinese_and_keeps_what_was_typed(w: World
                                                                               ) -> None:
    status, _, html = await post_form(w, "/tickets", walk_in(room="9999"))
    assert status == 400 and "住户档案里没有这个房号" in html
    assert 'value="卫生间漏水"' in html and 'value="f1"' in html  # the same key: still one
    status, _, html = await post_form(w, "/tickets", walk_in(place="area", common_area=""))
    assert status == 400 and "请选择公共区域" in html
    status, _, html = await post_form(w, "/tickets", walk_in(category="roof"))
    assert status == 400 and "category" in html
    assert await count_tickets(w) == 0
    status, _, _ = await post_form(w, "/tickets", walk_in(), kind="engineer")
    assert status == 403


async def test_a_person_of_one_community_cannot_file_for_another(w: World) -> None:
    async with w.sm() as s:
        u = StaffUser(username="a_agent", display_name="甲坐席", role="agent",
                      memberships=[StaffCommunity(community_id=w.seeded.community_id)],
                      active=True)
        s.add(u)
        await s.commit()
        token = await create_token(s, role="agent", name="a_agent", user_id=u.id)
    form = walk_in(community="binjiang", building="1", unit="1", room="101")
    async with w.client.post("/tickets", data=form, allow_redirects=False,
                             headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 403, await r.text()
    assert await count_tickets(w) == 0


async def test_action_forms_follow_the_table_and_the_timeline_reads_in_chinese(w: World
                                                                               ) -> None:
    tid = (await w.new_ticket())["id"]
    page = f"/tickets/{tid}"
    status, location, _ = await post_form(w, f"{page}/action", {
        "action": "dispatch", "assignee": f"engineering:{w.users['assignee']}",
        "appointment_at": "2026-11-23T15:30", "note": "业主下午在家"})
    assert (status, location) == (303, page)
    status, _, html = await post_form(w, f"{page}/action", {"action": "accept"},
                                      kind="engineer")
    assert status == 403 and "只有主管、管理员、处理人、部门负责人可以接单" in html
    async with w.client.get(page, headers=w.auth("assignee")) as r:
        html = await r.text()
    assert 'value="accept"' in html and 'value="return"' in html
    assert 'value="follow_up"' not in html  # 回访 is the front desk's
    assert "派给工程部 陈师傅，预约上门 11-23 15:30" in html
    assert "2026-11-23 10:10" in html  # 02:10 UTC on the server's clock, Shanghai time
    text = re.sub(r"<[^>]+>", " ", html)
    assert "xiaoli（前台坐席）" in text and "dispatched" not in text and "engineer" not in text
    status, _, _ = await post_form(w, f"{page}/action", {"action": "accept"}, kind="assignee")
    assert status == 303
    assert await w.state_of(tid) == "accepted"
