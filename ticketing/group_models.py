"""Tables of group incidents (群发事件 / 一事多报): one parent per event, its members
are tickets (``tickets.group_id``), and its own log.

``open_key`` is ``<community id>:<building>:<category>`` while the incident is open
and NULL once it is closed: unique, so two servers creating the same moment's
tickets can never open two incidents for one event (NULLs never collide, in
PostgreSQL or SQLite)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow

GROUP_STATES = {"open": "处理中", "closed": "已办结"}


class TicketGroup(Base):
    """A parent incident: ``building`` '' is the whole community."""

    __tablename__ = "ticket_groups"
    __table_args__ = (Index("ix_ticket_groups_community_state", "community_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    building: Mapped[str] = mapped_column(String(32), default="", server_default="")
    category: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="open")
    open_key: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The ticket whose report opened it: it carries the notice to the supervisors.
    opened_by_ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    closed_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    resolution: Mapped[str] = mapped_column(String(1000), default="", server_default="")


class TicketGroupEvent(Base):
    """One entry of an incident's log: opened, joined, linked, unlinked, told, closed."""

    __tablename__ = "ticket_group_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("ticket_groups.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    actor_role: Mapped[str] = mapped_column(String(16), default="", server_default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


GROUP_EVENT_LABELS: dict[str, str] = {
    "group_join": "并入群发事件",
    "group_link": "加入群发事件",
    "group_unlink": "移出群发事件",
    "group_resolve": "事件办结，完工",
    "group_closed": "事件办结",
    "group_notice": "群发事件通知",
}
"""The ticket log's actions of group incidents (``ticket_events.action``), as shown."""
