"""群发事件 (group incidents): reports of one building-wide fault are linked under one
parent (by building, category, community and window; one flat is one household),
two servers reporting at once make one parent (PostgreSQL), the supervisors are told
once (once across two workers), closing tells every member and moves the open ones to
已完工, the front desk links and unlinks with a reason, every role is held to
``GROUP_ACTIONS``, and the pages show it all; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from tests.ticketing.directory_data import seed_directory
from tests.ticketing.test_complaint_grades import _hooks_for
from tests.ticketing.test_sla_notices import hooks
from tests.ticketing.test_workorder_pages import post_form
from tests.ticketing.workorder_world import KINDS, World, world
from ticketing.delivery import Delivery
from ticketing.group_models import TicketGroup, TicketGroupEvent
from ticketing.groups import GroupDetector
from ticketing.http import TICKETS
from ticketing.models import Ticket, TicketEvent
from ticketing.services import NewTicket, TicketService
from ticketing.setup import SLA_WORKER
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import KINDS as KIND_CLOCKS
from ticketing.sla_policy import GroupRule, SlaPolicyError, parse_policy
from ticketing.sla_timers import SlaClock
from ticketing.sla_worker import SlaBreach, SlaWorker

__all__ = ["hooks", "world"]

Hooks = tuple[str, list[tuple[str, dict[str, Any]]]]
_n = 0


async def report(w: World, building: str | None = "3", *, category: str = "plumbing",
                 community: str = "hupan", **kw: Any) -> dict[str, Any]:
    """A household's report: a new caller each time, the building said, no room known."""
    global _n
    _n += 1
    body: dict[str, Any] = {"category": category, "summary": "家里停水了", "room_id": None,
                            "caller_number": f"1370000{_n:04d}", "building": building,
                            "unit": "1", "room": f"{_n:03d}", "community": community, **kw}
    return await w.new_ticket(**body)


async def group_of(w: World, group_id: int, kind: str = "supervisor") -> dict[str, Any]:
    status, g = await w.call("GET", f"/api/ticket-groups/{group_id}", kind=kind)
    assert status == 200, g
    return dict(g)


async def count_groups(w: World) -> int:
    async with w.sm() as s:
        return int(await s.scalar(select(func.count(TicketGroup.id))) or 0)


# -- detection --------------------------------------------------------------------------


async def test_two_households_of_a_building_open_one_incident_and_a_third_joins(
        world: World) -> None:
    w = world
    first = await report(w)
    assert first["group_id"] is None  # one report is no incident
    second = await report(w, "3栋")  # said as 3栋: the same building
    gid = second["group_id"]
    assert gid is not None
    third = await report(w, "3号楼")
    assert third["group_id"] == gid
    g = await group_of(w, gid)
    assert (g["building"], g["category"], g["state"], g["households"], g["reports"]) == (
        "3", "plumbing", "open", 3, 3)
    assert g["label"] == "湖畔花园3栋 给排水"
    assert [m["id"] for m in g["members"]] == [first["id"], second["id"], third["id"]]
    # (the running SLA worker may have told the supervisors meanwhile: "told")
    assert [e["action"] for e in g["events"] if e["action"] != "told"] == ["open", "join"]
    assert g["events"][0]["data"]["tickets"] == [first["id"], second["id"]]
    # each member's log says it joined, and the first one was linked afterwards too
    _, t1 = await w.call("GET", f"/api/tickets/{first['id']}")
    assert t1["group_id"] == gid
    joined = [e for e in t1["events"] if e["action"] == "group_join"]
    assert [e["note"] for e in joined] == ["并入群发事件：湖畔花园3栋 给排水（2户报告）"]
    _, t3 = await w.call("GET", f"/api/tickets/{third['id']}")
    assert [e["note"] for e in t3["events"] if e["action"] == "group_join"] == [
        "并入群发事件：湖畔花园3栋 给排水（3户报告）"]
    # the list of incidents, and the tickets' filter-free list says which are grouped
    status, listed = await w.call("GET", "/api/ticket-groups?state=open")
    assert status == 200 and [i["id"] for i in listed["items"]] == [gid]


async def test_no_incident_across_buildings_categories_communities_flats_or_the_window(
        world: World) -> None:
    w = world
    # one flat twice is one household: a leak in one flat is not an incident
    flat = [await w.new_ticket(), await w.new_ticket()]
    assert [t["group_id"] for t in flat] == [None, None]
    w.clock.set(w.clock.now() + timedelta(minutes=121))  # both now outside the window
    base = await report(w, "3")
    others = [
        await report(w, "5"),  # another building
        await report(w, "3", category="electrical"),  # another category
        await report(w, "3", category="noise"),  # not building-wide ...
        await report(w, "3", category="noise"),  # ... even twice
        await report(w, "3", community="binjiang"),  # another community
    ]
    assert [t["group_id"] for t in [base, *others]] == [None] * 6
    assert await count_groups(w) == 0
    # within the window, the same building and category: the first and this one only
    w.clock.set(w.clock.now() + timedelta(minutes=119))
    again = await report(w, "3")
    assert again["group_id"] is not None
    g = await group_of(w, again["group_id"])
    assert {m["id"] for m in g["members"]} == {base["id"], again["id"]}


async def test_with_no_building_known_reports_group_by_the_whole_community(
        world: World) -> None:
    w = world
    a = await report(w, None, category="electrical")
    b = await report(w, None, category="electrical")
    assert a["group_id"] is None and b["group_id"] is not None
    g = await group_of(w, b["group_id"])
    assert g["building"] is None and g["label"] == "湖畔花园（全小区） 电气"


def test_the_rule_comes_from_sla_toml_per_community_key_by_key() -> None:
    policy = parse_policy({"groups": {"window": 60, "threshold": 3},
                           "communities": {"hupan": {"groups": {"window": 30},
                                                     "normal": {"response": 10}},
                                           "binjiang": {"groups": {"enabled": False}}}},
                          "sla.toml")
    assert policy.group_rule(None) == GroupRule(timedelta(minutes=60), 3, True)
    assert policy.group_rule("hupan") == GroupRule(timedelta(minutes=30), 3, True)
    assert policy.group_rule("binjiang").enabled is False
    assert parse_policy({}, "x").group_rule("hupan") == GroupRule(timedelta(hours=2), 2, True)
    assert policy.limits("hupan", "plumbing", "normal").response == timedelta(minutes=10)


@pytest.mark.parametrize(("data", "words"), [
    ({"groups": {"window": 0}}, ["groups.window", "1-"]),
    ({"groups": {"threshold": 1}}, ["groups.threshold", "2-100"]),
    ({"groups": {"size": 3}}, ["groups.size", "unknown key"]),
    ({"communities": {"hupan": {"groups": {"enabled": "yes"}}}},
     ["[communities.hupan]", "groups.enabled"]),
])
def test_a_bad_groups_table_stops_the_server_naming_the_key(data: dict[str, Any],
                                                            words: list[str]) -> None:
    with pytest.raises(SlaPolicyError) as exc:
        parse_policy(data, "/srv/sla.toml")
    for word in ("/srv/sla.toml", *words):
        assert word in str(exc.value)


async def test_a_community_rule_sets_the_threshold(world: World) -> None:
    w = world
    groups = w.client.app[TICKETS].service.groups
    assert groups is not None
    groups.policy = parse_policy({"communities": {"hupan": {"groups": {"threshold": 3}}}},
                                 "sla.toml")
    a, b = await report(w), await report(w)
    assert (a["group_id"], b["group_id"]) == (None, None)
    c = await report(w)
    assert c["group_id"] is not None
    assert len((await group_of(w, c["group_id"]))["members"]) == 3


async def test_reports_at_the_same_moment_on_two_servers_make_one_incident(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two servers share PostgreSQL; SQLite has one writer")
    seeded = await seed_directory(sessionmaker)
    clock = ManualClock()
    # two servers: each its own service (and detector), one database
    servers = [TicketService(sessionmaker, EventBus(), clock, sla=SlaClock(),
                             groups=GroupDetector()) for _ in range(2)]
    for round_no in range(3):
        reports = [servers[i % 2].create(NewTicket(
            source="voicemail" if i % 3 == 0 else "phone", category="elevator",
            summary="电梯停了", community_id=seeded.community_id, said_building=str(round_no),
            caller_number=f"1360000{round_no}{i:03d}")) for i in range(8)]
        await asyncio.gather(*reports)
    async with sessionmaker() as s:
        groups = (await s.scalars(select(TicketGroup))).all()
        assert sorted(g.building for g in groups) == ["0", "1", "2"]
        for g in groups:
            members = await s.scalar(select(func.count()).select_from(TicketEvent).where(
                TicketEvent.action == "group_join", TicketEvent.data["group_id"].as_integer()
                == g.id))
            assert members == 8, (g.building, members)
        notices = await s.scalar(select(func.count(SlaTimer.id)).where(
            SlaTimer.kind == "group_notice"))
        assert notices == 3  # one per incident


async def test_detection_itself_waits_for_the_other_servers_report(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Ticket numbers are handed out under a row lock that already orders creations;
    detection does not lean on that: two transactions that both added their ticket and
    look at the same moment still make one incident (the second waits for the first)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("two servers share PostgreSQL; SQLite has one writer")
    seeded = await seed_directory(sessionmaker)
    clock = ManualClock()
    barrier = asyncio.Barrier(2)

    async def server(i: int) -> int | None:
        async with sessionmaker() as s:
            t = Ticket(number=f"T-{i}", community_id=seeded.community_id, source="phone",
                       caller_number=f"1350000000{i}", category="plumbing",
                       department="engineering", state="new", summary="停水",
                       said_building="9", created_at=clock.now(), updated_at=clock.now())
            s.add(t)
            await s.flush()
            await barrier.wait()  # both tickets added, neither committed
            group = await GroupDetector().ticket_added(s, t)
            await s.commit()
            return group.id if group is not None else None

    found = await asyncio.gather(server(1), server(2))
    assert sorted(g is None for g in found) == [False, True], found  # the later one opened it
    async with sessionmaker() as s:
        groups = (await s.scalars(select(TicketGroup))).all()
        assert len(groups) == 1
        members = (await s.scalars(select(Ticket.number).where(
            Ticket.group_id == groups[0].id))).all()
    assert sorted(members) == ["T-1", "T-2"]


# -- told once ---------------------------------------------------------------------------


async def test_the_supervisors_are_told_once_and_later_reporters_only_add_to_the_count(
        world: World, hooks: Hooks) -> None:
    w = world
    base, got = hooks
    await _hooks_for(w, base, ("agent", "assignee", "head", "supervisor"))
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand
    first = await report(w)
    second = await report(w)
    await worker.run_due()
    assert [who for who, _ in got] == ["boss"]
    body = got[0][1]
    assert body["key"] == f"sla:{second['number']}:group_notice"
    assert body["title"].startswith("群发事件：")
    assert body["text"].startswith("群发事件（一事多报），请主管统筹处理")
    _, t2 = await w.call("GET", f"/api/tickets/{second['id']}")
    assert [e["note"] for e in t2["events"] if e["action"] == "group_notice"] == [
        "群发事件，正在通知小区主管", "群发事件已通知主管：赵主管"]
    assert t2["sla"] == {"red": False, "breaches": []}  # a notice, no breach
    for _ in range(3):
        await report(w)
    w.clock.set(w.clock.now() + timedelta(minutes=5))
    await worker.run_due()
    assert len(got) == 1
    g = await group_of(w, second["group_id"])
    assert g["households"] == 5 and first["id"] in [m["id"] for m in g["members"]]
    told = [e for e in g["events"] if e["action"] == "told"]
    assert [e["note"] for e in told] == ["群发事件已通知主管：赵主管"]


class CountingNotifier:
    def __init__(self) -> None:
        self.sent: list[SlaBreach] = []

    async def notify(self, breach: SlaBreach) -> Delivery:
        self.sent.append(breach)
        await asyncio.sleep(0.01)
        return Delivery("主管", ("赵主管",))


async def test_two_workers_tell_the_supervisors_of_an_incident_once(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    seeded = await seed_directory(sessionmaker)
    clock, bus = ManualClock(), EventBus()
    service = TicketService(sessionmaker, bus, clock, sla=SlaClock(), groups=GroupDetector())
    for number in ("13600000001", "13600000002", "13600000003"):
        await service.create(NewTicket(source="phone", category="gas", summary="燃气没了",
                                       community_id=seeded.community_id, said_building="7",
                                       caller_number=number))
    notifier = CountingNotifier()
    a = SlaWorker(sessionmaker, clock, bus, notifier, worker_id="a")
    b = SlaWorker(sessionmaker, clock, bus, notifier, worker_id="b")
    await asyncio.gather(a.run_due(), b.run_due(), a.run_due(), b.run_due())
    assert [n.kind for n in notifier.sent] == ["group_notice"]
    async with sessionmaker() as s:
        told = (await s.scalars(select(TicketGroupEvent.note).where(
            TicketGroupEvent.action == "told"))).all()
    assert told == ["群发事件已通知主管：赵主管"]


# -- closing ------------------------------------------------------------------------------


async def test_closing_tells_every_member_and_moves_the_open_ones_to_done(
        world: World) -> None:
    w = world
    await w.client.app[SLA_WORKER].stop()  # its notice is not what this test reads
    working, fresh = await report(w), await report(w)
    done = await report(w)
    gid = working["group_id"] or fresh["group_id"]
    assert gid is not None and done["group_id"] == gid
    await w.force(working["id"], "in_progress")
    await w.force(done["id"], "followed_up")
    status, g = await w.call("POST", f"/api/ticket-groups/{gid}/close", kind="supervisor",
                             json={"note": "水泵已修复，恢复供水"})
    assert status == 200, g
    assert (g["state"], g["resolution"], g["closed_by"]) == ("closed", "水泵已修复，恢复供水",
                                                            "boss")
    assert await w.state_of(working["id"]) == "resolved"
    assert await w.state_of(fresh["id"]) == "resolved"
    assert await w.state_of(done["id"]) == "followed_up"  # finished: told, not moved
    for t, action in ((working, "group_resolve"), (fresh, "group_resolve"),
                      (done, "group_closed")):
        _, view = await w.call("GET", f"/api/tickets/{t['id']}")
        last = view["events"][-1]
        assert (last["action"], last["actor"]) == (action, "boss"), t["id"]
        assert last["note"] == "群发事件办结：湖畔花园3栋 给排水；水泵已修复，恢复供水"
    _, view = await w.call("GET", f"/api/tickets/{fresh['id']}")
    assert (view["events"][-1]["from"], view["events"][-1]["to"]) == ("new", "resolved")
    # the SLA clocks of the moved ones stopped
    async with w.sm() as s:
        pending = (await s.scalars(select(SlaTimer.kind).where(
            SlaTimer.ticket_id.in_([working["id"], fresh["id"]]), SlaTimer.kind.in_(KIND_CLOCKS),
            SlaTimer.state == "pending"))).all()
    assert pending == []
    # each reporter gets their own 回访
    status, after = await w.act(fresh["id"], "agent", "follow_up", score=5, resolved=True)
    assert status == 200 and after["state"] == "followed_up"
    closing = [e for e in g["events"] if e["action"] == "close"][0]
    assert sorted(closing["data"]["resolved"]) == sorted([working["number"], fresh["number"]])
    assert closing["data"]["informed"] == [done["number"]]
    # closed is closed: 409; the next report of 3栋 starts afresh
    status, err = await w.call("POST", f"/api/ticket-groups/{gid}/close", kind="supervisor",
                               json={"note": "again"})
    assert status == 409, err
    status, err = await w.call("POST", f"/api/ticket-groups/{gid}/tickets", kind="agent",
                               json={"ticket_id": fresh["id"], "reason": "x"})
    assert status == 409, err
    later = await report(w)
    assert later["group_id"] is None
    again = await report(w)
    assert again["group_id"] not in (None, gid)


# -- by hand -----------------------------------------------------------------------------


async def test_the_front_desk_links_and_unlinks_with_a_reason_logged(world: World) -> None:
    w = world
    await w.client.app[SLA_WORKER].stop()
    a, b = await report(w), await report(w)
    gid = b["group_id"]
    odd = await w.new_ticket(category="public_facility", summary="单元门禁也没电",
                             room_id=w.seeded.room_5_1_801)
    status, g = await w.call("POST", f"/api/ticket-groups/{gid}/tickets", kind="night_duty",
                             json={"ticket_id": odd["id"], "reason": "同一次停电"})
    assert status == 200, g
    assert odd["id"] in [m["id"] for m in g["members"]]
    link = g["events"][-1]
    assert (link["action"], link["note"], link["actor"], link["actor_role"]) == (
        "link", "同一次停电", "laowang", "night_duty")
    _, t = await w.call("GET", f"/api/tickets/{odd['id']}")
    assert t["group_id"] == gid
    assert t["events"][-1]["action"] == "group_link"
    assert t["events"][-1]["note"] == "加入群发事件：湖畔花园3栋 给排水；同一次停电"
    # twice, or a ticket of another community: refused, naming why
    status, err = await w.call("POST", f"/api/ticket-groups/{gid}/tickets", kind="agent",
                               json={"ticket_id": odd["id"], "reason": "x"})
    assert status == 409, err
    other = await w.new_ticket(community="binjiang", room_id=w.seeded.room_other_1_1_101)
    status, err = await w.call("POST", f"/api/ticket-groups/{gid}/tickets", kind="agent",
                               json={"ticket_id": other["id"], "reason": "x"})
    assert status == 400 and err["details"]["field"] == "ticket_id", err
    # out again, with the reason
    status, g = await w.call("DELETE", f"/api/ticket-groups/{gid}/tickets/{a['id']}",
                             kind="agent", json={"reason": "是户内水管问题"})
    assert status == 200, g
    assert a["id"] not in [m["id"] for m in g["members"]]
    assert (g["events"][-1]["action"], g["events"][-1]["note"]) == ("unlink", "是户内水管问题")
    _, t = await w.call("GET", f"/api/tickets/{a['id']}")
    assert t["group_id"] is None and t["events"][-1]["action"] == "group_unlink"
    status, err = await w.call("DELETE", f"/api/ticket-groups/{gid}/tickets/{a['id']}",
                               kind="agent", json={"reason": "x"})
    assert status == 404, err
    # once the incident is closed, the ticket taken out does not open a new one
    status, _ = await w.call("POST", f"/api/ticket-groups/{gid}/close", kind="supervisor",
                             json={"note": "修好了"})
    assert status == 200 and await w.state_of(a["id"]) == "new"
    assert (await report(w))["group_id"] is None


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "close", {}, "note"),
    ("POST", "close", {"note": "   "}, "note"),
    ("POST", "close", {"note": "x" * 1001}, "note"),
    ("POST", "tickets", {"reason": "x"}, "ticket_id"),
    ("POST", "tickets", {"ticket_id": "abc", "reason": "x"}, "ticket_id"),
    ("POST", "tickets", {"ticket_id": 1}, "reason"),
    ("DELETE", "tickets/{first}", {"reason": ""}, "reason"),
])
async def test_a_bad_body_is_a_400_naming_the_field(world: World, method: str, path: str,
                                                    body: dict[str, Any], field: str) -> None:
    w = world
    a, b = await report(w), await report(w)
    url = f"/api/ticket-groups/{b['group_id']}/" + path.format(first=a["id"])
    status, err = await w.call(method, url, kind="supervisor", json=body)
    assert status == 400, err
    assert err["details"]["field"] == field, err
    assert (await group_of(w, b["group_id"]))["state"] == "open"


async def test_every_role_may_do_what_the_table_says_and_nothing_else(world: World) -> None:
    w = world
    a, b = await report(w), await report(w)
    gid = b["group_id"]
    spare = await w.new_ticket(category="other", summary="顺便问一下", room_id=w.seeded.room_5_1_801)
    may = {"link": {"agent", "night_duty", "supervisor", "admin"},
           "unlink": {"agent", "night_duty", "supervisor", "admin"},
           "close": {"supervisor", "admin"}}
    for kind in KINDS:
        for action in ("link", "unlink"):
            if action == "link":
                status, body = await w.call("POST", f"/api/ticket-groups/{gid}/tickets",
                                            kind=kind, json={"ticket_id": spare["id"],
                                                             "reason": "同一事件"})
            else:
                status, body = await w.call("DELETE",
                                            f"/api/ticket-groups/{gid}/tickets/{spare['id']}",
                                            kind=kind, json={"reason": "不是同一事件"})
            allowed = kind in may[action]
            assert status == (200 if allowed else 403), (kind, action, body)
        if kind not in may["close"]:
            status, body = await w.call("POST", f"/api/ticket-groups/{gid}/close", kind=kind,
                                        json={"note": "修好了"})
            assert status == 403, (kind, body)
    g = await group_of(w, gid)
    assert g["state"] == "open" and {m["id"] for m in g["members"]} == {a["id"], b["id"]}
    # everyone signed in may read it; nobody signed out
    for kind in KINDS:
        assert (await w.call("GET", f"/api/ticket-groups/{gid}", kind=kind))[0] == 200
    assert (await w.call("GET", f"/api/ticket-groups/{gid}", kind=None))[0] == 401
    assert (await w.call("GET", "/api/ticket-groups/999999", kind="admin"))[0] == 404
    status, _ = await w.call("POST", f"/api/ticket-groups/{gid}/close", kind="admin",
                             json={"note": "修好了"})
    assert status == 200


# -- pages -------------------------------------------------------------------------------


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_the_pages_show_the_incident_its_reporters_and_close_it(world: World) -> None:
    w = world
    a, b = await report(w), await report(w)
    gid = b["group_id"]
    status, html = await w.call("GET", "/ticket-groups", kind="agent")
    page = html.decode()
    assert status == 200 and f'href="/ticket-groups/{gid}"' in page
    assert "湖畔花园3栋 给排水" in page and "2 户报告" in page
    status, html = await w.call("GET", f"/tickets/{a['id']}", kind="engineer")
    text = _text(html.decode())
    assert "属于事件： 湖畔花园3栋 给排水 （2 户报告）" in text
    assert f'href="/ticket-groups/{gid}"' in html.decode()
    status, html = await w.call("GET", "/tickets", kind="agent")
    assert html.decode().count("群发事件</span>") == 2
    status, html = await w.call("GET", f"/ticket-groups/{gid}", kind="agent")
    page = html.decode()
    assert a["number"] in page and b["number"] in page and "建立事件" in page
    assert 'value="link"' in page and 'value="close"' not in page  # 办结 is a supervisor's
    assert "plumbing" not in page and "open" not in _text(page)  # no raw codes
    # the agent's 办结 by the form is refused, saying who may
    path = f"/ticket-groups/{gid}/action"
    status, _, page = await post_form(w, path, {"action": "close", "note": "好了"})
    assert status == 403 and "只有主管、管理员可以办结事件" in page
    # 加入 by number, then the supervisor closes it
    spare = await w.new_ticket(category="other", summary="楼上也没水",
                               room_id=w.seeded.room_7_1_502)
    status, location, _ = await post_form(w, path, {"action": "link", "number": spare["number"],
                                                    "reason": "同一次停水"})
    assert (status, location) == (303, f"/ticket-groups/{gid}")
    status, _, page = await post_form(w, path, {"action": "close"}, kind="supervisor")
    assert status == 400 and "请填写办结说明" in page
    status, location, _ = await post_form(w, path, {"action": "close", "note": "已恢复供水"},
                                          kind="supervisor")
    assert status == 303
    status, html = await w.call("GET", f"/ticket-groups/{gid}", kind="supervisor")
    text = _text(html.decode())
    assert "已办结" in text and "已恢复供水" in text and "3 户报告" in text
    assert await w.state_of(spare["id"]) == "resolved"
