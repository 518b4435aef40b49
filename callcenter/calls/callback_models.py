"""The callback worklist (未接来电回拨): one open entry per community, caller number
and local day, for callers nobody spoke to."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow

STATES = ("open", "done")
# How an entry was closed.
DONE_HOW = ("callback", "marked", "called_again")
# What an agent marks an entry with (POST /api/callbacks/{id}/done).
MARK_OUTCOMES = {"reached": "已联系", "invalid_number": "空号", "not_needed": "无需回拨"}


class Callback(Base):
    """A caller to call back. ``missed``: each call that reached nobody, in order
    (``linkedid``, ``at``, ``ended_in`` ivr / queue / oncall / ring, ``wait_s``,
    ``ivr_path``, ``role``); ``dialled``: each callback attempt (``user_id``, ``by``,
    ``at``, ``result`` dialling / answered / no_answer). The partial unique index
    keeps one *open* entry per (community, number, day) across servers."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("uq_callbacks_open", "community", "number", "day", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
        Index("ix_callbacks_state_day", "state", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community: Mapped[str] = mapped_column(String(64), default="")
    """The community's code; empty: none known (the site's default community's)."""
    number: Mapped[str] = mapped_column(String(32))
    """E.164."""
    day: Mapped[date] = mapped_column(Date)
    """The local day (``[general] timezone``) of the first missed call."""
    state: Mapped[str] = mapped_column(String(8), default="open")
    caller_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    missed_count: Mapped[int] = mapped_column(Integer, default=0)
    first_missed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_missed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    missed: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dialled: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    done_by: Mapped[str] = mapped_column(String(100), default="")
    """Who closed it (a name), empty when the system did (the caller called again)."""
    done_how: Mapped[str | None] = mapped_column(String(16), nullable=True)
    done_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
