"""The report's arithmetic on hand-made rows, each figure worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callcenter.reports.figures import (
    CallRow,
    IncidentRow,
    TicketRow,
    bucket_starts,
    build,
    label,
    mm_ss,
    percent,
)
from callcenter.reports.svg import Series, _nice_top, bars, lines

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 1, tzinfo=TZ)


def local(h: int, m: int = 0) -> datetime:
    return (DAY + timedelta(hours=h, minutes=m)).astimezone(UTC)


CALLS = [
    CallRow(local(8, 5), "answered", 10, 120, "hupan"),
    CallRow(local(8, 20), "answered", 30, 60, "hupan"),
    CallRow(local(8, 40), "abandoned", 45, None, "hupan"),
    CallRow(local(8, 30), "abandoned", 12, None, "binjiang"),
    CallRow(local(9, 10), "voicemail", None, None, "hupan"),
    CallRow(local(9, 30), "answered", 5, 300, "hupan"),
    CallRow(local(9, 40), "emergency", None, None, "hupan"),
    CallRow(local(9, 45), "ivr_only", None, None, "hupan"),
    CallRow(local(24 + 10), "answered", 2, 10, "hupan"),  # the next day: not in the report
]


def test_calls_per_hour_rates_service_level_and_averages() -> None:
    r = build(start=DAY, end=DAY + timedelta(days=1), granularity="hour", tz=TZ,
              calls=CALLS, service_level_s=20)
    assert len(r.buckets) == 24 and r.buckets[8].start == DAY + timedelta(hours=8)
    h8, h9 = r.buckets[8], r.buckets[9]
    assert (h8.calls, h8.answered, h8.abandoned, h8.offered) == (4, 2, 2, 4)
    assert (h8.answer_rate, h8.abandon_rate) == (0.5, 0.5)
    assert h8.service_level == 0.25  # only the 10 s wait of four offered
    assert (h8.avg_wait_s, h8.avg_talk_s) == (20, 90)
    assert (h9.calls, h9.offered, h9.voicemail, h9.emergency, h9.ivr_only) == (4, 1, 1, 1, 1)
    assert (h9.answer_rate, h9.service_level, h9.avg_wait_s) == (1.0, 1.0, 5)
    # Hours with no offered call have no rate at all, not 0 %.
    assert r.buckets[3].answer_rate is None and r.buckets[3].avg_wait_s is None
    t = r.total
    assert (t.calls, t.answered, t.abandoned, t.offered) == (8, 3, 2, 5)
    assert (t.answer_rate, t.service_level, t.avg_wait_s, t.avg_talk_s) == (0.6, 0.4, 15, 160)
    assert r.by_community["binjiang"].calls == 1 and r.by_community["hupan"].calls == 7


def test_a_longer_service_level_counts_more_calls_in() -> None:
    r = build(start=DAY, end=DAY + timedelta(days=1), granularity="day", tz=TZ,
              calls=CALLS, service_level_s=30)
    assert [b.start for b in r.buckets] == [DAY]
    assert r.buckets[0].service_level == 3 / 5  # 10, 30 and 5 s


def test_ticket_response_in_time_closures_and_emergency_acknowledgement() -> None:
    tickets = [
        TicketRow(local(8), local(8, 10), local(15)),  # answered in 10 min, closed at 15:00
        TicketRow(local(9), local(9, 30), None),  # answered late
        TicketRow(local(10), None, None),  # nobody yet
        TicketRow(local(-30), local(-29), local(11)),  # opened before, closed in the day
    ]
    incidents = [IncidentRow(local(8, 30), local(8, 32)),
                 IncidentRow(local(11), local(11, 10)),
                 IncidentRow(local(12), None)]
    r = build(start=DAY, end=DAY + timedelta(days=1), granularity="hour", tz=TZ, calls=[],
              tickets=tickets, incidents=incidents)
    t = r.total
    assert (t.tickets_opened, t.tickets_in_time, t.tickets_closed) == (3, 1, 2)
    assert t.response_rate == 1 / 3
    assert r.buckets[15].tickets_closed == 1 and r.buckets[11].tickets_closed == 1
    assert (t.incidents, t.incidents_acked, t.avg_ack_s, t.ack_max_s) == (3, 2, 360, 600)
    assert {c: (b.tickets_opened, b.incidents) for c, b in r.by_community.items()} == {"": (3, 3)}
    assert r.buckets[8].avg_ack_s == 120 and r.buckets[12].incidents_acked == 0


def test_days_are_local_calendar_days() -> None:
    start = datetime(2026, 11, 30, tzinfo=TZ)
    starts = bucket_starts(start, start + timedelta(days=3), "day", TZ)
    assert [s.day for s in starts] == [30, 1, 2]
    # 23:30 UTC on 30 Nov is 07:30 on 1 Dec in Shanghai.
    r = build(start=start, end=start + timedelta(days=3), granularity="day", tz=TZ,
              calls=[CallRow(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "answered", 1, 1)])
    assert [b.calls for b in r.buckets] == [0, 1, 0]


def test_labels_durations_and_percentages_for_people() -> None:
    assert label(DAY + timedelta(hours=8), "hour") == "12月1日 08时"
    assert label(DAY, "day") == "12月1日"
    assert (mm_ss(187), mm_ss(3725), mm_ss(None), mm_ss(0.4)) == ("3:07", "1:02:05", "—", "0:00")
    assert (percent(0.6), percent(None), percent(1 / 3)) == ("60.0%", "—", "33.3%")


def test_charts_are_svg_with_a_tooltip_per_mark_and_escaped_text() -> None:
    svg = str(bars("来电<量>", ["8时", "9时"], [Series("接通", [2, 1]), Series("放弃", [2, 0])],
                   unit=" 通"))
    assert svg.startswith("<svg") and "来电&lt;量&gt;" in svg and "<量>" not in svg
    # Three bars (a zero draws nothing), each saying what it is.
    assert svg.count("<rect") == 3 + 2  # and two legend swatches
    assert "<title>8时 放弃 2 通</title>" in svg
    # The count axis goes up in whole steps: 4 calls → 0, 1, 2, 3, 4.
    ticks = re.findall(r'text-anchor="end">([^<]+)<', svg)
    assert ticks == ["0", "1", "2", "3", "4"]
    assert _nice_top(9) == 12 and _nice_top(41) == 60 and _nice_top(0) == 4
    line = str(lines("接通率", ["8时", "9时", "10时"], [Series("接通率", [0.5, None, 1.0])]))
    # A gap (None) breaks the line: two single points, no polyline across it.
    assert line.count("<circle") == 2 and "<polyline" not in line
    assert "<title>10时 接通率 100.0%</title>" in line
