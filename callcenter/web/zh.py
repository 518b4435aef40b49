"""How the pages write days, times and durations for their readers (zh-CN)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

WEEKDAYS = "一二三四五六日"


def day_label(d: date) -> str:
    """``12月5日（周六）``."""
    return f"{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


def local_time(when: datetime | str | None, tz: ZoneInfo, *, seconds: bool = False) -> str:
    """``when`` (aware, or its ISO text) on the site's clock: ``12月5日（周六）02:17``;
    empty for none."""
    if not when:
        return ""
    at = (datetime.fromisoformat(when) if isinstance(when, str) else when).astimezone(tz)
    return f"{day_label(at.date())}{at.strftime('%H:%M:%S' if seconds else '%H:%M')}"


def mm_ss(seconds: float) -> str:
    """A duration as 分:秒 (95 → ``1:35``), as ``macros.html`` ``mmss``."""
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
