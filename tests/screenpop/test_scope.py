"""Community scope over the console's WebSocket: a person of 湖畔花园 gets no pop of
滨江苑's calls, not even when the queue rings them by mistake or when they reconnect,
and a supervisor of 湖畔花园 sees only its calls, agents and figures on the wall
(pushed and asked for), while head office sees both. Real sockets, both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from callcenter.console.keys import AGENT_HUB
from callcenter.directory.models import (
    Community,
    Person,
    PersonPhone,
    StaffCommunity,
    StaffUser,
)
from tests.console.helpers import (
    FAST_HASHER,
    OWNER_MOBILE,
    PASSWORD,
    hash_password,
    login,
    running_app,
    seed_directory,
)
from tests.screenpop.test_hub import browser, frame, nothing_pending, publish

B_CALLER, B_OWNER = "13755559087", "钱多多"


async def _two_communities(sm: Any) -> None:
    """湖畔花园 (seed_directory) and 滨江苑; xiaoli, xiaozhao and boss work for 湖畔花园
    only, b_agent (8101) for 滨江苑, root (admin) for both."""
    await seed_directory(sm)
    async with sm() as s:
        b = Community(code="binjiang", name="滨江苑", hotline_numbers=[])
        s.add(b)
        await s.flush()
        owner = Person(name=B_OWNER)
        owner.phones.append(PersonPhone(number="+86" + B_CALLER, raw=B_CALLER))
        s.add(owner)
        s.add(StaffUser(username="b_agent", display_name="滨江坐席", role="agent",
                        extension="8101", password_hash=hash_password(FAST_HASHER, PASSWORD),
                        memberships=[StaffCommunity(community_id=b.id)]))
        hupan = (await s.scalars(select(Community).where(Community.code == "hupan"))).one()
        names = ("xiaoli", "xiaozhao", "boss")
        await s.execute(update(StaffUser).where(StaffUser.username.in_(names))
                        .values(all_communities=False))
        for uid in (await s.scalars(select(StaffUser.id).where(
                StaffUser.username.in_(names)))).all():
            s.add(StaffCommunity(user_id=uid, community_id=hupan.id))
        await s.commit()


async def test_no_pop_of_another_communitys_call_even_when_it_rings_you(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await _two_communities(sessionmaker)
    async with running_app(db_url, tmp_path) as a, browser(a) as b:
        await login(a, "xiaoli")
        a_ws = await a.ws_connect("/ws/agent")
        await frame(a_ws, "hello")
        await login(b, "b_agent")
        b_ws = await b.ws_connect("/ws/agent")
        await frame(b_ws, "hello")
        # 滨江苑's call rings both extensions (a queue shared by mistake).
        await publish(a, "started", call_id="b1", caller=B_CALLER, community="binjiang")
        await publish(a, "ringing", call_id="b1", queue="frontdesk",
                      interface="PJSIP/8001")
        await publish(a, "ringing", call_id="b1", queue="frontdesk", interface="PJSIP/8101")
        pop = await frame(b_ws, "pop")
        assert pop["pop"]["title"] == B_OWNER
        await nothing_pending(a_ws)
        # Nor on a reconnect while it still rings.
        await a_ws.close()
        again = await a.ws_connect("/ws/agent")
        await frame(again, "hello")
        await nothing_pending(again)
        # 湖畔花园's own call pops as ever.
        await publish(a, "ringing", call_id="a1", caller=OWNER_MOBILE, community="hupan",
                      interface="PJSIP/8001")
        assert (await frame(again, "pop"))["pop"]["title"] == "张伟"
        # Once over, 滨江苑's call cannot be called back from 湖畔花园 either.
        await publish(a, "ended", call_id="b1")
        await publish(a, "ended", call_id="a1")
        csrf = await login(a, "xiaoli")
        theirs = await a.post("/api/console/call", json={"call_id": "b1"},
                              headers={"X-CSRF-Token": csrf})
        assert theirs.status == 404, await theirs.text()
        ours = await a.post("/api/console/call", json={"call_id": "a1"},
                            headers={"X-CSRF-Token": csrf})
        assert ours.status != 404, await ours.text()  # (no PBX in this test: 503)
        await a.app[AGENT_HUB].settle()


async def test_the_wall_of_a_communitys_supervisor_shows_only_that_community(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await _two_communities(sessionmaker)
    async with running_app(db_url, tmp_path) as boss, browser(boss) as head:
        await login(boss, "boss")
        boss_ws = await boss.ws_connect("/ws/agent")
        await frame(boss_ws, "wall")
        await login(head, "root")
        head_ws = await head.ws_connect("/ws/agent")
        await frame(head_ws, "wall")
        await publish(boss, "started", call_id="b1", caller=B_CALLER, community="binjiang")
        await publish(boss, "started", call_id="a1", caller=OWNER_MOBILE, community="hupan")
        await boss.app[AGENT_HUB].settle()

        async def wall_with_two_calls(ws: Any, expect: int) -> dict[str, Any]:
            for _ in range(10):
                wall: dict[str, Any] = (await frame(ws, "wall"))["wall"]
                if wall["today"]["offered"] == expect:
                    return wall
            raise AssertionError("the wall never showed the calls")

        mine = await wall_with_two_calls(boss_ws, 1)
        assert [c["call_id"] for c in mine["waiting"]] == ["a1"]
        assert B_CALLER not in str(mine) and "滨江坐席" not in str(mine)
        assert {a["name"] for a in mine["agents"]} == {"XIAOLI", "XIAOZHAO", "BOSS"}
        every = await wall_with_two_calls(head_ws, 2)
        assert sorted(c["call_id"] for c in every["waiting"]) == ["a1", "b1"]
        assert "滨江坐席" in {a["name"] for a in every["agents"]}
        # The wall asked for is the same one.
        csrf_free = await boss.get("/api/console/wall")
        body = await csrf_free.json()
        assert [c["call_id"] for c in body["waiting"]] == ["a1"]
        assert body["today"]["offered"] == 1
