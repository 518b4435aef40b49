"""Working-time SLA clocks over the IVR's office hours (08:30–18:00 on working days,
the holiday calendar's 调休 and public holidays), checked against due times worked
out by hand, then fired by the worker on an injected clock (both databases)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.tickets import OfficeHours
from ivr.holidays import HolidayCalendar
from ivr.timeconditions import TimeModes
from tests.ticketing.directory_data import seed_directory
from ticketing.services import NewTicket, TicketService
from ticketing.sla_models import SlaTimer
from ticketing.sla_policy import due_after, parse_policy
from ticketing.sla_timers import SlaClock
from ticketing.sla_worker import SlaWorker

SH = ZoneInfo("Asia/Shanghai")
HOURS = OfficeHours(TimeModes(HolidayCalendar(), "Asia/Shanghai"))
POLICY = parse_policy({"categories": {"sanitation": {"working_time": True}}}, "test sla.toml")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# Filed → (response 15 min, red light 120 min, escalation 1440 min), office 08:30–18:00
# (570 minutes a working day). 2026: Sun 09-20 is a 调休 working day for 国庆; 10-01..07
# are holidays; Sat 10-10 is a 调休 working day.
CASES = [
    pytest.param(
        local(2026, 9, 18, 17, 30),  # Friday evening, 30 minutes of office left
        (local(2026, 9, 18, 17, 45),
         # 30 min Friday; Saturday off; Sunday 09-20 works (调休): 08:30 + 90 min
         local(2026, 9, 20, 10, 0),
         # 30 Fri + 570 Sun + 570 Mon = 1170; Tue 09-22 08:30 + 270 min
         local(2026, 9, 22, 13, 0)),
        id="weekend-with-a-tiaoxiu-sunday"),
    pytest.param(
        local(2026, 9, 30, 17, 0),  # the eve of 国庆, one hour of office left
        (local(2026, 9, 30, 17, 15),
         # 60 min Wed; 10-01..10-07 holiday (Sat/Sun within it too); Thu 10-08 08:30 + 60
         local(2026, 10, 8, 9, 30),
         # 60 + 570 (Thu 10-08) + 570 (Fri 10-09) = 1200; Sat 10-10 works: 08:30 + 240
         local(2026, 10, 10, 12, 30)),
        id="national-day-holiday-and-a-tiaoxiu-saturday"),
    pytest.param(
        local(2026, 9, 19, 11, 0),  # a plain Saturday: the clock starts Sunday 09-20 (调休)
        (local(2026, 9, 20, 8, 45), local(2026, 9, 20, 10, 30),
         # 570 Sun + 570 Mon = 1140; Tue 08:30 + 300 min
         local(2026, 9, 22, 13, 30)),
        id="filed-on-a-weekend"),
]


@pytest.mark.parametrize(("filed", "due"), CASES)
def test_due_times_count_only_office_hours(filed: datetime,
                                           due: tuple[datetime, datetime, datetime]) -> None:
    limits = POLICY.limits("hupan", "sanitation", "normal")
    assert limits.working_time
    got = tuple(due_after(filed, limits.of(kind), working_time=True, hours=HOURS,
                          community="hupan") for kind in ("response", "red_light", "escalation"))
    assert got == due
    # a category that does not count working time runs on the clock
    plain = POLICY.limits("hupan", "plumbing", "normal")
    assert not plain.working_time
    assert due_after(filed, plain.red_light, working_time=False, hours=HOURS) == (
        filed + timedelta(hours=2))


@pytest.mark.parametrize(("filed", "due"), CASES[1:2])
async def test_worker_fires_working_time_clocks_at_their_office_due_time(
        sessionmaker: async_sessionmaker[AsyncSession], filed: datetime,
        due: tuple[datetime, datetime, datetime]) -> None:
    seeded = await seed_directory(sessionmaker)
    clock = ManualClock(filed.astimezone(ZoneInfo("UTC")))
    bus = EventBus()
    service = TicketService(sessionmaker, bus, clock, sla=SlaClock(POLICY, HOURS))
    clean = await service.create(NewTicket(source="agent", category="sanitation",
                                           summary="楼道垃圾没人清", room_id=seeded.room_3_2_1201))
    leak = await service.create(NewTicket(source="agent", category="plumbing",
                                          summary="漏水", room_id=seeded.room_3_2_1201))
    async with sessionmaker() as s:
        rows = (await s.scalars(select(SlaTimer).where(SlaTimer.ticket_id == clean.id))).all()
        armed = {r.kind: (r.due_at, r.working_time) for r in rows}
    assert armed == {"response": (due[0], True), "red_light": (due[1], True),
                     "escalation": (due[2], True)}
    worker = SlaWorker(sessionmaker, clock, bus, worker_id="w")
    fired: list[tuple[int, str]] = []
    bus.subscribe("ticket.sla_breach",
                  lambda e: _append(fired, (e.data["ticket_id"], e.data["kind"])))
    # the holiday week: the plumbing ticket (clock time) breaches all three; the
    # sanitation one only its response (due the same evening)
    clock.set(due[1].astimezone(ZoneInfo("UTC")) - timedelta(minutes=1))
    assert await worker.run_due() == 4
    assert sorted(k for t, k in fired if t == leak.id) == ["escalation", "red_light", "response"]
    assert [k for t, k in fired if t == clean.id] == ["response"]
    clock.set(due[1].astimezone(ZoneInfo("UTC")))
    assert await worker.run_due() == 1
    assert fired[-1] == (clean.id, "red_light")
    clock.set(due[2].astimezone(ZoneInfo("UTC")) - timedelta(seconds=1))
    assert await worker.run_due() == 0
    clock.set(due[2].astimezone(ZoneInfo("UTC")))
    assert await worker.run_due() == 1
    assert fired[-1] == (clean.id, "escalation")


async def _append(into: list[tuple[int, str]], item: tuple[int, str]) -> None:
    into.append(item)
