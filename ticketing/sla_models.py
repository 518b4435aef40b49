"""The SLA clock's table: one timer per (ticket, kind), in the database.

A timer is ``pending`` until it fires (``fired``, once: a worker claims it with
``claimed_by``/``claimed_at``, then moves it to ``fired`` with a guarded
``UPDATE``) or the workflow stops it (``cancelled``). Re-arming a clock (退单,
重开) rewrites the same row back to ``pending`` with a new ``due_at``.
``notified_at`` is when the breach's notice went out (None: not yet, or it
failed and is retried).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow

TIMER_STATES = ("pending", "fired", "cancelled")


class SlaTimer(Base):
    __tablename__ = "sla_timers"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind"),
        Index("ix_sla_timers_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # The clock's limit in minutes and whether it counts working time, copied when
    # armed (the breach says "2小时未接单" as the policy was then).
    limit_min: Mapped[int] = mapped_column(default=0)
    working_time: Mapped[bool] = mapped_column(default=False)
    armed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
