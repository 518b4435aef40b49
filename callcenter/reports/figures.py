"""The report's figures, computed from plain rows (no database here: tests feed
hand-made rows and check each figure by hand).

Definitions (the usual call-centre ones):

- *offered*: calls that reached the queue: ``answered`` + ``abandoned``;
- *answer rate* = answered / offered; *abandon rate* = abandoned / offered;
- *service level* = answered within ``service_level_s`` seconds of waiting / offered;
- *average wait* and *average talk*: over answered calls;
- calls that ended in the IVR, in a voicemail box or in emergency paging are counted
  (``calls``) but are not offered to the queue;
- *tickets responded in time*: tickets whose first step out of 受理 (派单, 取消 ...)
  came within ``response_s`` of their creation, of those opened in the bucket;
- *emergency acknowledgement*: incidents opened in the bucket, those acknowledged, and
  the mean and longest time to the acknowledgement.
A rate with nothing to divide by is None (shown as "—"), never 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Granularity = Literal["hour", "day"]


@dataclass(frozen=True)
class CallRow:
    started_at: datetime
    outcome: str | None
    wait_s: float | None
    talk_s: float | None
    community: str | None = None


@dataclass(frozen=True)
class TicketRow:
    created_at: datetime
    first_response_at: datetime | None
    closed_at: datetime | None
    community: str | None = None


@dataclass(frozen=True)
class IncidentRow:
    opened_at: datetime
    acked_at: datetime | None
    community: str | None = None


@dataclass
class Bucket:
    start: datetime  # local time
    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    voicemail: int = 0
    ivr_only: int = 0
    emergency: int = 0
    in_service_level: int = 0
    wait_total_s: float = 0.0
    talk_total_s: float = 0.0
    tickets_opened: int = 0
    tickets_closed: int = 0
    tickets_in_time: int = 0
    incidents: int = 0
    incidents_acked: int = 0
    ack_total_s: float = 0.0
    ack_max_s: float | None = None

    @property
    def offered(self) -> int:
        return self.answered + self.abandoned

    @property
    def answer_rate(self) -> float | None:
        return _ratio(self.answered, self.offered)

    @property
    def abandon_rate(self) -> float | None:
        return _ratio(self.abandoned, self.offered)

    @property
    def service_level(self) -> float | None:
        return _ratio(self.in_service_level, self.offered)

    @property
    def avg_wait_s(self) -> float | None:
        return self.wait_total_s / self.answered if self.answered else None

    @property
    def avg_talk_s(self) -> float | None:
        return self.talk_total_s / self.answered if self.answered else None

    @property
    def response_rate(self) -> float | None:
        return _ratio(self.tickets_in_time, self.tickets_opened)

    @property
    def avg_ack_s(self) -> float | None:
        return self.ack_total_s / self.incidents_acked if self.incidents_acked else None


@dataclass
class Report:
    granularity: Granularity
    buckets: list[Bucket]
    total: Bucket
    by_community: dict[str, Bucket] = field(default_factory=dict)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def bucket_starts(start: datetime, end: datetime, granularity: Granularity,
                  tz: ZoneInfo) -> list[datetime]:
    """Local starts of every hour or day from ``start`` (inclusive) to ``end``
    (exclusive); a day is a calendar day in ``tz``."""
    cur = start.astimezone(tz)
    if granularity == "day":
        cur = datetime.combine(cur.date(), datetime.min.time(), tzinfo=tz)
    else:
        cur = cur.replace(minute=0, second=0, microsecond=0)
    out = []
    while cur < end:
        out.append(cur)
        if granularity == "day":
            cur = datetime.combine(cur.date() + timedelta(days=1), datetime.min.time(),
                                   tzinfo=tz)
        else:  # whole hours in UTC: a local hour is one hour even across a DST change
            cur = (cur.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)).astimezone(tz)
    return out


def _key(at: datetime, granularity: Granularity, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    if granularity == "day":
        return datetime.combine(local.date(), datetime.min.time(), tzinfo=tz)
    return local.replace(minute=0, second=0, microsecond=0)


def build(*, start: datetime, end: datetime, granularity: Granularity, tz: ZoneInfo,
          calls: Iterable[CallRow], tickets: Iterable[TicketRow] = (),
          incidents: Iterable[IncidentRow] = (), service_level_s: float = 20.0,
          response_s: float = 15 * 60) -> Report:
    starts = bucket_starts(start, end, granularity, tz)
    buckets = {s: Bucket(s) for s in starts}
    total = Bucket(starts[0] if starts else start.astimezone(tz))
    per_community: dict[str, Bucket] = {}

    def into(at: datetime, community: str | None) -> list[Bucket]:
        """The bucket of ``at``, the total and the community's row (none outside the range)."""
        if not start <= at < end:
            return []
        b = buckets.get(_key(at, granularity, tz))
        own = per_community.setdefault(community or "", Bucket(total.start))
        return [b, total, own] if b is not None else [total, own]

    for c in calls:
        for b in into(c.started_at, c.community):
            _add_call(b, c, service_level_s)
    for t in tickets:
        for b in into(t.created_at, t.community):
            b.tickets_opened += 1
            if t.first_response_at is not None and \
                    (t.first_response_at - t.created_at).total_seconds() <= response_s:
                b.tickets_in_time += 1
        if t.closed_at is not None:
            for b in into(t.closed_at, t.community):
                b.tickets_closed += 1
    for i in incidents:
        for b in into(i.opened_at, i.community):
            b.incidents += 1
            if i.acked_at is not None:
                ack = max(0.0, (i.acked_at - i.opened_at).total_seconds())
                b.incidents_acked += 1
                b.ack_total_s += ack
                b.ack_max_s = ack if b.ack_max_s is None else max(b.ack_max_s, ack)
    return Report(granularity, [buckets[s] for s in starts], total,
                  dict(sorted(per_community.items())))


def _add_call(b: Bucket, c: CallRow, service_level_s: float) -> None:
    b.calls += 1
    if c.outcome == "answered":
        b.answered += 1
        wait = c.wait_s or 0.0
        b.wait_total_s += wait
        b.talk_total_s += c.talk_s or 0.0
        if wait <= service_level_s:
            b.in_service_level += 1
    elif c.outcome == "abandoned":
        b.abandoned += 1
    elif c.outcome == "voicemail":
        b.voicemail += 1
    elif c.outcome == "emergency":
        b.emergency += 1
    else:
        b.ivr_only += 1


def label(bucket_start: datetime, granularity: Granularity) -> str:
    """``12月3日`` for a day, ``12月3日 08时`` for an hour (local)."""
    day = f"{bucket_start.month}月{bucket_start.day}日"
    return day if granularity == "day" else f"{day} {bucket_start.hour:02d}时"


def mm_ss(seconds: float | None) -> str:
    """Durations as 分:秒 (``3:07``); hours as 时:分:秒; None as —."""
    if seconds is None:
        return "—"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


