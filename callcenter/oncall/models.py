"""Tables of on-call schedules: shifts, rotations, overrides, the chain, attempts.

A schedule belongs to one community and one staff role (night_duty, engineer...).
Its shifts cover times of day (a night shift from 18:00 to 08:30 crosses
midnight); each shift has a rotation of people whose turn changes every
``period_days`` from ``start_date``. Overrides (a swap, sick leave) win over the
rotation for their time span. The chain says who follows the primary: the next
people in the rotation, or named users (the supervisor).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UtcDateTime, utcnow

CHAIN_SOURCES = ("rotation", "user")
CHAIN_LABELS = ("primary", "backup", "supervisor")


class OnCallSchedule(Base):
    __tablename__ = "oncall_schedules"
    __table_args__ = (UniqueConstraint("community_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    shifts: Mapped[list[OnCallShift]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="OnCallShift.start_minute"
    )
    chain: Mapped[list[OnCallChainLink]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan", order_by="OnCallChainLink.position"
    )
    overrides: Mapped[list[OnCallOverride]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan"
    )


class OnCallShift(Base):
    """A daily span in the community's local time, ``start_minute`` to
    ``end_minute`` (minutes after midnight). ``end <= start`` crosses midnight.

    ``members`` is the rotation (staff user ids in turn order); the turn moves
    by one every ``period_days`` days counted from ``rotation_start`` (the local
    date on which the shift of ``members[0]`` starts)."""

    __tablename__ = "oncall_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    members: Mapped[list[int]] = mapped_column(JSON, default=list)
    rotation_start: Mapped[date] = mapped_column(Date)
    period_days: Mapped[int] = mapped_column(Integer, default=7)

    schedule: Mapped[OnCallSchedule] = relationship(back_populates="shifts")


class OnCallChainLink(Base):
    """Position ``n`` of the chain: ``rotation`` takes the member ``offset``
    turns after the current one; ``user`` is a named person (the supervisor)."""

    __tablename__ = "oncall_chain"
    __table_args__ = (UniqueConstraint("schedule_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="rotation")
    offset: Mapped[int] = mapped_column(Integer, default=0)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )

    schedule: Mapped[OnCallSchedule] = relationship(back_populates="chain")


class OnCallOverride(Base):
    """From ``starts_at`` to ``ends_at`` (UTC), ``user_id`` stands in.

    With ``replaces_user_id`` it replaces that person wherever the chain has
    them (sick leave, one half of a swap); without, it replaces the primary."""

    __tablename__ = "oncall_overrides"
    __table_args__ = (Index("ix_oncall_overrides_span", "schedule_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    replaces_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=True
    )
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    schedule: Mapped[OnCallSchedule] = relationship(back_populates="overrides")


class OnCallAttempt(Base):
    """One ring of one person by the router: who, where, how it ended.

    ``call_id`` is the call's Asterisk Linkedid (the call log's key), or the
    channel's uniqueid when Asterisk did not tell; ``position`` is the order in
    which the people of the chain were rung (0 is the first)."""

    __tablename__ = "oncall_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="SET NULL"), nullable=True
    )
    role: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    target: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dial_status: Mapped[str] = mapped_column(String(32), default="")
