"""The SLA clock: timers armed with the ticket, fired once on an injected clock,
shown on the ticket page and the wall."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.ticketing.workorder_world import World, world  # noqa: F401
from ticketing.setup import SLA_WORKER
from ticketing.sla_models import SlaTimer
from ticketing.sla_timers import red_tickets


async def _timers(w: World, ticket_id: int) -> dict[str, str]:
    async with w.sm() as s:
        rows = (await s.scalars(select(SlaTimer).where(SlaTimer.ticket_id == ticket_id))).all()
        return {r.kind: r.state for r in rows}


async def test_response_breach_fires_once_and_shows_on_page_and_wall(world: World) -> None:  # noqa: F811
    w = world
    t = await w.new_ticket()
    assert await _timers(w, t["id"]) == {"response": "pending", "red_light": "pending",
                                         "escalation": "pending"}
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand below
    w.clock.set(w.clock.now() + timedelta(minutes=16))
    assert await worker.run_due() == 1
    assert await worker.run_due() == 0  # once
    status, body = await w.call("GET", f"/api/tickets/{t['id']}", kind="supervisor")
    assert status == 200
    assert [b["kind"] for b in body["sla"]["breaches"]] == ["response"]
    assert [e["action"] for e in body["events"]].count("sla_breach") == 1
    status, page = await w.call("GET", f"/tickets/{t['id']}", kind="supervisor")
    assert "超过15分钟未响应" in page.decode()
    # The wall's red tickets (this app has no console: read as the wall reads them),
    # of the ticket's community only.
    async with w.sm() as s:
        count, red = await red_tickets(s, None)
        assert (count, [r.ticket_id for r in red]) == (1, [t["id"]])
        assert [b.text for b in red[0].breaches] == ["超过15分钟未响应"]
        assert await red_tickets(s, frozenset({w.seeded.other_community_id})) == (0, [])
    # 派单 clears the response breach and cancels nothing else
    status, _ = await w.act(t["id"], "agent", "dispatch", department="engineering",
                            assignee_id=w.users["assignee"])
    assert status == 200
    assert await _timers(w, t["id"]) == {"response": "cancelled", "red_light": "pending",
                                         "escalation": "pending"}
    status, _ = await w.act(t["id"], "assignee", "accept")
    assert status == 200
    assert (await _timers(w, t["id"]))["red_light"] == "cancelled"


async def test_one_claim_fires_the_due_and_cancels_those_whose_ticket_moved_on(
        world: World) -> None:  # noqa: F811
    """A claim's timers fire in one transaction: the due one fires once with its log
    entry, the one whose ticket has moved past the clock (here by a shortcut, as an
    older server's missed cancel would leave it) is cancelled, not fired."""
    w = world
    worker = w.client.app[SLA_WORKER]
    await worker.stop()
    due, moved = (await w.new_ticket())["id"], (await w.new_ticket())["id"]
    await w.force(moved, "resolved")
    w.clock.set(w.clock.now() + timedelta(minutes=16))
    claimed = await worker.claim_due()
    assert sorted(t.ticket_id for t in claimed) == sorted([due, moved])
    fired, one_by_one = await worker.fire_many(claimed)
    assert [t.ticket_id for t, _ in fired] == [due] and one_by_one == []
    assert [b.text for _, b in fired] == ["超过15分钟未响应"]
    assert (await _timers(w, due))["response"] == "fired"
    assert (await _timers(w, moved))["response"] == "cancelled"
    again, retry = await worker.fire_many(claimed)  # nothing fired twice; the fired one
    assert again == [] and [t.ticket_id for t in retry] == [due]  # is only its notice's
    for tid, n in ((due, 1), (moved, 0)):
        status, body = await w.call("GET", f"/api/tickets/{tid}", kind="supervisor")
        assert [e["action"] for e in body["events"]].count("sla_breach") == n
