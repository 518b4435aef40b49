"""The 预约 window: with an agreed visit time the red-light and escalation clocks do
not run before the window (30 minutes ahead of the visit); they are due relative to
it, not to the ticket's creation (both databases, injected clock, over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.ticketing.workorder_world import World, world  # noqa: F401
from ticketing.setup import SLA_WORKER
from ticketing.sla_models import SlaTimer

SH = ZoneInfo("Asia/Shanghai")


async def _due(w: World, ticket_id: int) -> dict[str, tuple[str, datetime]]:
    async with w.sm() as s:
        rows = (await s.scalars(select(SlaTimer).where(SlaTimer.ticket_id == ticket_id))).all()
        return {r.kind: (r.state, r.due_at) for r in rows}


async def test_red_light_is_due_from_the_appointment_window_not_from_creation(
        world: World) -> None:  # noqa: F811
    w = world
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand
    created = w.clock.now()  # Monday 2026-11-23 10:10 in Shanghai
    assert created.astimezone(SH) == datetime(2026, 11, 23, 10, 10, tzinfo=SH)
    booked = await w.new_ticket(summary="卫生间漏水，业主明天下午在家")
    plain = await w.new_ticket(summary="厨房水管漏水")
    w.clock.set(created + timedelta(minutes=5))
    status, body = await w.act(booked["id"], "agent", "dispatch", department="engineering",
                               assignee_id=w.users["assignee"],
                               appointment_at="2026-11-24T14:00:00+08:00")
    assert status == 200, body
    status, body = await w.act(plain["id"], "agent", "dispatch", department="engineering",
                               assignee_id=w.users["assignee"])
    assert status == 200, body
    window = datetime(2026, 11, 24, 13, 30, tzinfo=SH)  # 14:00 less the 30-minute lead
    timers = await _due(w, booked["id"])
    assert timers["response"][0] == "cancelled"
    assert timers["red_light"] == ("pending", window + timedelta(hours=2))
    assert timers["escalation"] == ("pending", window + timedelta(hours=24))
    # without an appointment, the clocks run from creation
    assert (await _due(w, plain["id"]))["red_light"] == ("pending", created + timedelta(hours=2))

    # two hours after creation: only the ticket without an appointment is red
    w.clock.set(created + timedelta(hours=2, minutes=1))
    assert await worker.run_due() == 1
    assert (await _due(w, plain["id"]))["red_light"][0] == "fired"
    assert (await _due(w, booked["id"]))["red_light"][0] == "pending"
    # the night before the visit and the morning of it: the booked ticket stays green
    # (the other one's 24-hour escalation falls due meanwhile)
    w.clock.set((window + timedelta(hours=2) - timedelta(seconds=1)).astimezone(UTC))
    assert await worker.run_due() == 1
    assert (await _due(w, plain["id"]))["escalation"][0] == "fired"
    assert (await _due(w, booked["id"]))["red_light"][0] == "pending"
    w.clock.set((window + timedelta(hours=2)).astimezone(UTC))
    assert await worker.run_due() == 1
    status, t = await w.call("GET", f"/api/tickets/{booked['id']}", kind="supervisor")
    assert status == 200
    assert [(b["kind"], b["text"]) for b in t["sla"]["breaches"]] == [("red_light", "2小时未接单")]


async def test_a_new_dispatch_without_an_appointment_drops_the_old_window(
        world: World) -> None:  # noqa: F811
    """退单 then 派单 again with no 预约: the old visit no longer holds the clocks back."""
    w = world
    await w.client.app[SLA_WORKER].stop()
    created = w.clock.now()
    t = await w.new_ticket()
    status, _ = await w.act(t["id"], "agent", "dispatch", department="engineering",
                            assignee_id=w.users["assignee"],
                            appointment_at="2026-11-26T09:00:00+08:00")
    assert status == 200
    returned = created + timedelta(minutes=20)
    w.clock.set(returned)
    status, body = await w.act(t["id"], "assignee", "return", reason="需要电工，不是管道")
    assert status == 200, body
    redispatched = created + timedelta(minutes=30)
    w.clock.set(redispatched)
    status, body = await w.act(t["id"], "agent", "dispatch", department="engineering",
                               assignee_id=w.users["head"])
    assert status == 200, body
    timers = await _due(w, t["id"])
    assert timers["red_light"] == ("pending", returned + timedelta(hours=2))
    assert timers["escalation"] == ("pending", created + timedelta(hours=24))
    # a reassignment that agrees an earlier visit moves the window earlier too
    status, body = await w.act(t["id"], "agent", "reassign", department="engineering",
                               assignee_id=w.users["assignee"],
                               appointment_at="2026-11-25T09:00:00+08:00")
    assert status == 200, body
    early = datetime(2026, 11, 25, 8, 30, tzinfo=SH)
    timers = await _due(w, t["id"])
    assert timers["red_light"] == ("pending", early + timedelta(hours=2))
    assert timers["escalation"] == ("pending", early + timedelta(hours=24))
