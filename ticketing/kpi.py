"""The 3:3:4 KPI of the front desk and of the people who do the work, read from the
tickets' step log (``ticket_events``) and nothing else.

Who a ticket counts for:

- **front desk (受理人)**: the staff member who took it in: the creator when a
  front-desk person created it (a walk-in, a pop, a callback), otherwise whoever
  did its first 派单 (a voicemail's ticket, made by the system). Counted in the
  period of that act.
- **doer (处理人)**: each 完工 counts for the ticket's assignee at that moment (the
  person of the last 派单/改派 before it), in the period of the 完工. A ticket
  reopened and completed again by someone else counts for both.

Per person and period:

- ``handled``: tickets that count for them;
- praise rate (好评率): of their tickets with a 回访 score, the share scored 4–5
  (``PRAISE_SCORES``; the manuals' 满意/非常满意). For a doer, the first scored
  回访 after their 完工; for the front desk, the ticket's first scored 回访;
- resolution rate (解决率): of their tickets, the share completed and never
  reopened afterwards (as of when the report is made);
- volume score (工单量得分): ``handled`` over the most any person of the same side
  handled in the same period and scope, so the busiest scores 100;
- the 3:3:4 score: 30 % volume + 30 % praise + 40 % resolution, out of 100. With no
  scored 回访 there is no praise rate, and the score is the other two weighted 3:4
  (``score_note`` says so) rather than counting the missing part as zero;
- against the SLA: the share of their tickets without a ``sla_breach`` of the
  clock that is theirs (front desk: ``response``; doer: ``red_light`` for 接单 and
  ``escalation`` for 完工, when the breach came between their 派单 and their 完工:
  a red light before the ticket reached them is not theirs), and the mean times (first response after 受理; 派单 to
  接单; 受理 to 完工).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ticketing.sla_timers import BREACH_ACTION
from ticketing.workflow import FRONT_DESK

Period = Literal["day", "week", "month"]
PERIODS: dict[str, str] = {"day": "按天", "week": "按周", "month": "按月"}
WEIGHTS = {"volume": 0.3, "praise": 0.3, "resolution": 0.4}
PRAISE_SCORES = frozenset({4, 5})
ASSIGNING = frozenset({"dispatch", "reassign"})
Side = Literal["front_desk", "doer"]


@dataclass(frozen=True, slots=True)
class Step:
    """One row of a ticket's log, as the KPI reads it."""

    at: datetime
    action: str
    actor: str
    actor_id: int | None
    from_state: str | None
    to_state: str
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TicketLog:
    ticket_id: int
    created_at: datetime
    steps: Sequence[Step]  # in order


@dataclass(frozen=True, slots=True)
class Person:
    user_id: int
    username: str
    name: str
    role: str


@dataclass
class _Tally:
    handled: int = 0
    scored: int = 0
    praised: int = 0
    resolved: int = 0
    sla_total: int = 0
    sla_met: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def time(self, what: str, start: datetime | None, end: datetime | None) -> None:
        if start is not None and end is not None and end >= start:
            self.seconds.setdefault(what, []).append((end - start).total_seconds())


@dataclass(frozen=True, slots=True)
class PersonKpi:
    person: Person
    side: Side
    handled: int
    scored: int
    praised: int
    resolved: int
    praise_rate: float | None
    resolution_rate: float | None
    volume_score: float
    score: float | None
    score_note: str
    sla_met: dict[str, float | None]  # clock kind -> share of tickets without its breach
    mean_s: dict[str, float | None]  # response | accept | resolve -> mean seconds


@dataclass(frozen=True, slots=True)
class PeriodKpi:
    start: date
    label: str
    front_desk: list[PersonKpi]
    doers: list[PersonKpi]


@dataclass(frozen=True, slots=True)
class KpiReport:
    by: Period
    total: PeriodKpi
    periods: list[PeriodKpi]


SIDE_CLOCKS: dict[Side, tuple[str, ...]] = {"front_desk": ("response",),
                                            "doer": ("red_light", "escalation")}
SIDE_TIMES: dict[Side, tuple[str, ...]] = {"front_desk": ("response",),
                                           "doer": ("accept", "resolve")}


def period_start(day: date, by: Period) -> date:
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    return day


def period_label(start: date, by: Period) -> str:
    if by == "week":
        end = start + timedelta(days=6)
        return f"{start.month}月{start.day}日–{end.month}月{end.day}日"
    if by == "month":
        return f"{start.year}年{start.month}月"
    return f"{start.month}月{start.day}日"


def _breaches(steps: Sequence[Step]) -> set[str]:
    return {str((s.data or {}).get("kind")) for s in steps if s.action == BREACH_ACTION}


def _first_score(steps: Iterable[Step]) -> int | None:
    for s in steps:
        if s.action == "follow_up" and s.data and isinstance(s.data.get("score"), int):
            return int(s.data["score"])
    return None


def _front_desk_act(log: TicketLog, people: Mapping[str, Person]) -> tuple[Person, Step] | None:
    create = next((s for s in log.steps if s.action == "create"), None)
    if create is not None:
        creator = people.get(create.actor)
        if creator is not None and creator.role in FRONT_DESK:
            return creator, create
    dispatch = next((s for s in log.steps if s.action == "dispatch"), None)
    if dispatch is not None:
        by = people.get(dispatch.actor)
        if by is not None:
            return by, dispatch
    return None


def _first_response(log: TicketLog) -> datetime | None:
    for s in log.steps:
        if s.from_state == "new" and s.to_state != "new" and s.action != BREACH_ACTION:
            return s.at
    return None


def _credits(log: TicketLog, people: Mapping[str, Person], by_id: Mapping[int, Person]
             ) -> list[tuple[Side, Person, datetime, _Tally]]:
    """What one ticket adds to whom: (side, person, when, its one-ticket tally)."""
    out: list[tuple[Side, Person, datetime, _Tally]] = []
    steps = log.steps
    breached = _breaches(steps)
    reopen_at = [s.at for s in steps if s.action == "reopen"]
    completes = [i for i, s in enumerate(steps) if s.action == "complete"]

    act = _front_desk_act(log, people)
    if act is not None:
        person, step = act
        t = _Tally(handled=1, sla_total=1)
        score = _first_score(steps)
        if score is not None:
            t.scored, t.praised = 1, int(score in PRAISE_SCORES)
        t.resolved = int(bool(completes) and not reopen_at)
        t.sla_met = {"response": int("response" not in breached)}
        t.time("response", log.created_at, _first_response(log))
        out.append(("front_desk", person, step.at, t))

    for i in completes:
        done = steps[i]
        j = next((j for j in range(i - 1, -1, -1) if steps[j].action in ASSIGNING), None)
        assigned = steps[j] if j is not None else None
        assignee_id = (assigned.data or {}).get("assignee_id") if assigned else None
        doer = by_id.get(assignee_id) if isinstance(assignee_id, int) else None
        if doer is None:
            continue
        t = _Tally(handled=1, sla_total=1)
        score = _first_score(steps[i + 1:])
        if score is not None:
            t.scored, t.praised = 1, int(score in PRAISE_SCORES)
        t.resolved = int(not any(at >= done.at for at in reopen_at))
        theirs = _breaches([s for s in steps[j if j is not None else 0:i + 1]])
        t.sla_met = {k: int(k not in theirs) for k in SIDE_CLOCKS["doer"]}
        accepted = next((s.at for s in steps[j:i] if s.action == "accept"),
                        None) if j is not None else None
        t.time("accept", assigned.at if assigned else None, accepted)
        t.time("resolve", log.created_at, done.at)
        out.append(("doer", doer, done.at, t))
    return out


def _merge(into: _Tally, t: _Tally) -> None:
    into.handled += t.handled
    into.scored += t.scored
    into.praised += t.praised
    into.resolved += t.resolved
    into.sla_total += t.sla_total
    for k, v in t.sla_met.items():
        into.sla_met[k] = into.sla_met.get(k, 0) + v
    for k, values in t.seconds.items():
        into.seconds.setdefault(k, []).extend(values)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rank(side: Side, tallies: Mapping[Person, _Tally]) -> list[PersonKpi]:
    most = max((t.handled for t in tallies.values()), default=0)
    out = []
    for person, t in tallies.items():
        volume = t.handled / most if most else 0.0
        praise = _rate(t.praised, t.scored)
        resolution = _rate(t.resolved, t.handled)
        note = ""
        if resolution is None:
            score = None
        elif praise is None:
            w = WEIGHTS["volume"] + WEIGHTS["resolution"]
            score = 100 * (WEIGHTS["volume"] * volume + WEIGHTS["resolution"] * resolution) / w
            note = "无回访评分，按工单量与解决率 3:4 计"
        else:
            score = 100 * (WEIGHTS["volume"] * volume + WEIGHTS["praise"] * praise
                           + WEIGHTS["resolution"] * resolution)
        out.append(PersonKpi(
            person=person, side=side, handled=t.handled, scored=t.scored,
            praised=t.praised, resolved=t.resolved, praise_rate=praise,
            resolution_rate=resolution, volume_score=100 * volume, score=score,
            score_note=note,
            sla_met={k: _rate(t.sla_met.get(k, 0), t.sla_total) for k in SIDE_CLOCKS[side]},
            mean_s={k: (sum(v) / len(v) if (v := t.seconds.get(k)) else None)
                    for k in SIDE_TIMES[side]}))
    out.sort(key=lambda p: (-(p.score if p.score is not None else -1), -p.handled,
                            p.person.name))
    return out


def build(logs: Iterable[TicketLog], people: Iterable[Person], *, first: date, last: date,
          by: Period, tz: ZoneInfo) -> KpiReport:
    """The KPI of the local days ``first``..``last`` (included), per period and over all.
    ``people`` are the staff users (any role) the logs may name."""
    staff = list(people)
    by_name = {p.username: p for p in staff}
    by_id = {p.user_id: p for p in staff}
    per: dict[tuple[date, Side], dict[Person, _Tally]] = {}
    total: dict[Side, dict[Person, _Tally]] = {"front_desk": {}, "doer": {}}
    for log in logs:
        for side, person, at, t in _credits(log, by_name, by_id):
            day = at.astimezone(tz).date()
            if not first <= day <= last:
                continue
            key = (period_start(day, by), side)
            _merge(per.setdefault(key, {}).setdefault(person, _Tally()), t)
            _merge(total[side].setdefault(person, _Tally()), t)
    starts = sorted({period_start(first + timedelta(days=n), by)
                     for n in range((last - first).days + 1)})
    periods = [PeriodKpi(s, period_label(s, by), _rank("front_desk", per.get((s, "front_desk"), {})),
                         _rank("doer", per.get((s, "doer"), {})))
               for s in starts]
    whole = PeriodKpi(first, "合计", _rank("front_desk", total["front_desk"]),
                      _rank("doer", total["doer"]))
    return KpiReport(by, whole, periods)
