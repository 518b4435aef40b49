"""A group incident's one click: 发布停水通知 / 发布停电通知 from its page.

"3栋好几户都停水了" is what a notice answers: the supervisor posts one for the
incident's building, prefilled from its category (``KIND_OF``) with a default end
(``DEFAULT_HOURS`` from now, editable), and the incident's log records it
(``TicketGroups.log_outage``). The notices themselves are not this package's:
the composition root puts a poster under ``GROUP_OUTAGES`` (``ivr.outages``'s
service fits ``OutagePoster``); without one the page offers no button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

# The incident's category → the notice kinds its page offers, the likeliest first.
KIND_OF: dict[str, tuple[str, ...]] = {
    "plumbing": ("water", "power"), "electrical": ("power", "water"),
    "elevator": ("lift", "power"), "gas": ("gas",),
}
KIND_LABELS = {"water": "停水", "power": "停电", "gas": "停气", "lift": "电梯停运"}
DEFAULT_HOURS = 4


class PostedNotice(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def where(self) -> str: ...
    @property
    def kind_label(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def ends_at(self) -> datetime: ...


class OutagePoster(Protocol):
    async def post_for_group(self, *, community_id: int, building: str, kind: str, text: str,
                             ends_at: datetime, group_id: int, username: str, role: str,
                             scope: frozenset[int] | None) -> PostedNotice: ...


GROUP_OUTAGES: web.AppKey[OutagePoster] = web.AppKey("group_outages")


def kinds_for(category: str) -> Sequence[str]:
    return KIND_OF.get(category, ())


def default_text(building: str, kind: str, until: str) -> str:
    """``3栋目前停水，正在抢修，预计18:00恢复。``"""
    where = f"{building}栋" if building else "小区"
    what = KIND_LABELS.get(kind, "停水停电")
    return f"{where}目前{what}，正在抢修，预计{until}恢复，给您带来不便，敬请谅解。"


def outage_note(notice: PostedNotice, until: str) -> tuple[str, dict[str, Any]]:
    """The incident log's entry for a posted notice."""
    return (f"发布{notice.kind_label}通知（{notice.where}，至{until}）：{notice.text}",
            {"outage_id": notice.id, "ends_at": notice.ends_at.isoformat()})
