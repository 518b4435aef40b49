"""Tables of emergency paging.

``Incident`` keeps a snapshot of the escalation policy taken when it opened, so
editing a policy never changes a page already running. ``PagingTimer`` rows are
the escalation's clock: the next step and when it is due; workers claim them
atomically, so two server processes never dial the same step twice and a
restarted server resumes where the last one stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow

INCIDENT_STATES = ("open", "acknowledged", "resolved")
PAGE_CHANNELS = ("phone", "wecom", "dingtalk", "webhook", "email")
PAGE_OUTCOMES = ("accepted", "passed", "already_handled", "answered", "no_answer", "busy",
                 "failed", "sent", "hung_up", "no_input", "unknown_digit", "interrupted", "deferred")


class EscalationPolicy(Base):
    """Ordered steps for one community and category (``"*"`` = any category).

    ``steps`` is a list of objects, see ``callcenter.paging.escalation.Step``."""

    __tablename__ = "escalation_policies"
    __table_args__ = (UniqueConstraint("community_id", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100), default="")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    max_rounds: Mapped[int] = mapped_column(Integer, default=3)
    restart_wait_s: Mapped[int] = mapped_column(Integer, default=60)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_dedup", "community_id", "building", "category", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    building: Mapped[str] = mapped_column(String(32), default="")
    unit: Mapped[str] = mapped_column(String(32), default="")
    room: Mapped[str] = mapped_column(String(32), default="")
    category: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(String(1000), default="")
    source: Mapped[str] = mapped_column(String(16))
    callers: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    policy_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acked_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    acked_by_name: Mapped[str] = mapped_column(String(100), default="")
    acked_via: Mapped[str] = mapped_column(String(16), default="")
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    stop_reason: Mapped[str] = mapped_column(String(32), default="")


class IncidentReport(Base):
    """Each report of an incident; the first opened it, later ones joined it."""

    __tablename__ = "incident_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    call_id: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(1000), default="")
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    reference: Mapped[str] = mapped_column(String(64), default="")


class PageAttempt(Base):
    """One try to reach one person on one channel. ``outcome`` is None while
    the attempt runs; ``error_code`` says why a failure failed."""

    __tablename__ = "page_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    timer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer)
    try_no: Mapped[int] = mapped_column(Integer, default=0)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    person_name: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(300), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error_code: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    worker: Mapped[str] = mapped_column(String(64), default="")


class PagingTimer(Base):
    """The next escalation step of an incident and when it is due.

    A worker claims a due row (``claimed_by``), records the attempt, runs it,
    then marks the row ``done`` and inserts the next one in one transaction."""

    __tablename__ = "paging_timers"
    __table_args__ = (
        Index("ix_paging_timers_due", "done", "due_at"),
        UniqueConstraint("incident_id", "round", "step", "try_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    round: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    try_no: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
