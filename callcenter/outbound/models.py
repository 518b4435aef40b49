"""Outbound calls: one job per person to call for one purpose, and each attempt.

A job moves ``queued`` → ``dialing`` (one server took it: a conditional update
on its state, so two servers never dial it both) → ``queued`` again for a retry
or a final state: ``done`` (the person answered and the script ran), ``unreached``
(the retries ran out), ``invalid`` (a number that cannot be dialled), ``skipped``
(do-not-call, or the ticket no longer needs it), ``cancelled`` (by hand)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow

QUEUED, DIALING = "queued", "dialing"
DONE, UNREACHED, INVALID, SKIPPED, CANCELLED = "done", "unreached", "invalid", "skipped", \
    "cancelled"
FINAL = frozenset({DONE, UNREACHED, INVALID, SKIPPED, CANCELLED})
STATE_LABELS = {QUEUED: "等待呼叫", DIALING: "呼叫中", DONE: "已完成", UNREACHED: "未接通",
                INVALID: "号码无效", SKIPPED: "未呼叫", CANCELLED: "已取消"}

KINDS = {"survey": "回访调查", "fee": "催缴提醒"}
CAMPAIGN_STATES = {"active": "进行中", "paused": "已暂停", "cancelled": "已停止"}


class OutboundJob(Base):
    __tablename__ = "outbound_jobs"
    __table_args__ = (
        Index("ix_outbound_jobs_due", "state", "due_at"),
        # one job per purpose: a ticket's survey is queued once, whoever asks twice
        Index("uq_outbound_jobs_key", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120))
    """What the job is for, unique (``survey:ticket:42``)."""
    kind: Mapped[str] = mapped_column(String(16))
    community: Mapped[str] = mapped_column(String(64), default="")
    number: Mapped[str] = mapped_column(String(32))
    """As the directory has it (E.164 or a landline); checked again before each dial."""
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True, index=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_campaigns.id", ondelete="CASCADE"), nullable=True, index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What the call says (a reminder: ``amount``, ``room``, ``room_id``)."""
    state: Mapped[str] = mapped_column(String(12), default=QUEUED)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    link: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The PBX link of the attempt in flight (the per-PBX limit counts these)."""
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """The last attempt's outcome (``rules.OUTCOMES``)."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What the script got (a survey: ``score``, ``resolved``)."""
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboundCampaign(Base):
    """A batch of calls made once (催缴: the owners in arrears of one community in one
    period). Its jobs are keyed by the period and the person: nobody is called twice
    in a period, whatever campaigns overlap."""

    __tablename__ = "outbound_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    community: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(16))
    """``2026-12``: the month it counts for."""
    state: Mapped[str] = mapped_column(String(12), default="active")
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """How it was built (``min_amount``, ``min_age_days``) and what it left out."""
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboundAttempt(Base):
    __tablename__ = "outbound_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbound_jobs.id", ondelete="CASCADE"),
                                        index=True)
    number: Mapped[str] = mapped_column(String(32))
    link: Mapped[str] = mapped_column(String(64), default="")
    server: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str] = mapped_column(String(500), default="")


class OutboundHold(Base):
    """A kind of call paused by a supervisor (all servers stop dialling it within a
    turn of their dialer, a second): the row exists while it is paused."""

    __tablename__ = "outbound_holds"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    held_by: Mapped[str] = mapped_column(String(100), default="")
    held_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
