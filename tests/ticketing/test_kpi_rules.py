"""The KPI's crediting rules on hand-made logs, without a database: who a ticket counts
for when the system made it, a front-desk creator, a reopen after a 完工, breaches
before and during an assignment, period boundaries in local time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ticketing.kpi import Person, Step, TicketLog, build, period_label, period_start

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 7, 23, 50, tzinfo=TZ)  # a Monday, ten to midnight
AGENT = Person(1, "xiaoli", "小李", "agent")
NIGHT = Person(2, "laowang", "老王", "night_duty")
ENG = Person(3, "chen", "陈师傅", "engineer")
STAFF = [AGENT, NIGHT, ENG]


def step(minutes: float, action: str, actor: str, frm: str | None, to: str,
         **data: object) -> Step:
    uid = {p.username: p.user_id for p in STAFF}.get(actor)
    return Step(T0 + timedelta(minutes=minutes), action, actor, uid, frm, to, data or None)


def run(*logs: TicketLog, first: date = date(2026, 12, 7), last: date = date(2026, 12, 8),
        by: str = "day") -> object:
    return build(logs, STAFF, first=first, last=last, by=by, tz=TZ)  # type: ignore[arg-type]


def test_a_system_ticket_counts_for_its_first_dispatcher_in_the_local_day_of_it() -> None:
    log = TicketLog(1, T0, [
        step(0, "create", "voicemail", None, "new"),
        step(20, "sla_breach", "sla", "new", "new", kind="response"),
        step(25, "dispatch", "laowang", "new", "dispatched", assignee_id=3),  # 00:15 Tue
        step(40, "sla_breach", "sla", "dispatched", "dispatched", kind="red_light"),
        step(60, "accept", "chen", "dispatched", "accepted"),
        step(70, "arrive", "chen", "accepted", "in_progress"),
        step(90, "complete", "chen", "in_progress", "resolved"),
    ])
    report = run(log)
    mon, tue = report.periods  # type: ignore[attr-defined]
    assert (mon.front_desk, mon.doers) == ([], [])  # created Monday, but handled Tuesday
    (desk,), (doer,) = tue.front_desk, tue.doers
    assert (desk.person, desk.handled, desk.sla_met) == (NIGHT, 1, {"response": 0.0})
    assert desk.mean_s == {"response": 25 * 60.0}
    # The red light came after the 派单 to him: his. No 回访 yet: volume and resolution 3:4.
    assert doer.person == ENG and doer.sla_met == {"red_light": 0.0, "escalation": 1.0}
    assert doer.praise_rate is None and doer.score == 100.0 and doer.score_note


def test_a_front_desk_creator_gets_the_credit_and_a_late_reopen_undoes_resolution() -> None:
    log = TicketLog(2, T0, [
        step(0, "create", "xiaoli", None, "new"),
        step(5, "dispatch", "laowang", "new", "dispatched", assignee_id=3),
        step(6, "accept", "chen", "dispatched", "accepted"),
        step(7, "arrive", "chen", "accepted", "in_progress"),
        step(8, "complete", "chen", "in_progress", "resolved"),
        step(60 * 30, "follow_up", "xiaoli", "resolved", "followed_up", score=4, resolved=True),
        step(60 * 50, "reopen", "xiaoli", "followed_up", "reopened"),  # two days later
    ])
    report = run(log, by="week")
    (week,) = report.periods  # type: ignore[attr-defined]
    assert week.label == "12月7日–12月13日"
    (desk,), (doer,) = week.front_desk, week.doers
    assert desk.person == AGENT  # not 老王, who only dispatched
    for p in (desk, doer):
        assert (p.handled, p.praised, p.resolved) == (1, 1, 0)
        assert p.score == 30 + 30 + 0


def test_a_breach_before_the_ticket_reached_the_doer_is_not_theirs() -> None:
    log = TicketLog(3, T0, [
        step(0, "create", "xiaoli", None, "new"),
        step(130, "sla_breach", "sla", "new", "new", kind="red_light"),
        step(140, "dispatch", "xiaoli", "new", "dispatched", assignee_id=3),
        step(150, "accept", "chen", "dispatched", "accepted"),
        step(160, "arrive", "chen", "accepted", "in_progress"),
        step(170, "complete", "chen", "in_progress", "resolved"),
    ])
    (doer,) = run(log).total.doers  # type: ignore[attr-defined]
    assert doer.sla_met == {"red_light": 1.0, "escalation": 1.0}


def test_periods() -> None:
    assert period_start(date(2026, 12, 3), "week") == date(2026, 11, 30)
    assert period_start(date(2026, 12, 31), "month") == date(2026, 12, 1)
    assert period_label(date(2026, 12, 1), "month") == "2026年12月"
