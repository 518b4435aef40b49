"""Tables of the ticketing domain: tickets, their transition log, number counters,
departments and their people, completion photos, mandatory callback tasks.

``ticket_events`` is the one log of everything done to a ticket (who, in which
role, when, which action, with what): the SLA clock and the KPI read it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

import ticketing.group_models  # noqa: F401  (ticket_groups: the target of tickets.group_id)
from callcenter.db.base import Base, UtcDateTime, utcnow


class Ticket(Base):
    """A repair or service ticket (报修/工单). ``number`` is what people read out."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_state_created", "state", "created_at"),
        Index("ix_tickets_community_created", "community_id", "created_at"),
        Index("ix_tickets_needs_listen", "needs_listen", "listen_notified_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="SET NULL"), nullable=True
    )
    source: Mapped[str] = mapped_column(String(16))
    caller_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True
    )
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), nullable=True, index=True
    )
    location: Mapped[str] = mapped_column(String(200), default="")
    said_building: Mapped[str | None] = mapped_column(String(32), nullable=True)
    said_unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    said_room: Mapped[str | None] = mapped_column(String(32), nullable=True)
    location_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    # 投诉分级 (``ticketing.categories.COMPLAINT_GRADES``): set for complaints only.
    complaint_grade: Mapped[str | None] = mapped_column(String(16), nullable=True)
    department: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="new")
    summary: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    recording_id: Mapped[int | None] = mapped_column(
        ForeignKey("recordings.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # A voicemail whose transcription or triage never completed: someone must
    # listen to it (``ticketing.listen``). ``listen_reason`` is why (the job's
    # error id), ``listen_notice`` the decision as the ticket page shows it, and
    # ``listen_notified_at`` when the notice reached night duty or the front desk.
    needs_listen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    listen_reason: Mapped[str] = mapped_column(String(64), default="", server_default="")
    listen_notice: Mapped[str] = mapped_column(String(300), default="", server_default="")
    listen_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    # Work orders: who it is dispatched to (``department`` is the department's code),
    # the visit agreed with the owner, what the 回访 found, what the work took.
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True, index=True)
    appointment_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    common_area: Mapped[str] = mapped_column(String(32), default="", server_default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    followup_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    followup_resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    followup_comment: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    materials: Mapped[str] = mapped_column(String(500), default="", server_default="")
    cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    # 群发事件: the parent incident this report belongs to (``ticketing.groups``).
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_groups.id", ondelete="SET NULL"), nullable=True, index=True)

    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketEvent.id"
    )


class TicketEvent(Base):
    """One entry of a ticket's transition log. ``from_state`` is None for creation."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(1000), default="")
    # The workflow action (``ticketing.workflow.ACTIONS``), who did it (staff user and
    # role at the time) and its particulars (assignee, score, ...). Empty for old rows.
    action: Mapped[str] = mapped_column(String(24), default="", server_default="")
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_role: Mapped[str] = mapped_column(String(16), default="", server_default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class Department(Base):
    """A department of one community (工程部, 保洁部 ...). ``code`` is what tickets
    store; ``oncall_role`` names the on-call schedule whose person takes a ticket
    dispatched to "the department's on-call person now"."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    oncall_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    members: Mapped[list[DepartmentMember]] = relationship(
        back_populates="department", cascade="all, delete-orphan",
        order_by="DepartmentMember.id")


class DepartmentMember(Base):
    """A staff user in a department; ``head`` marks the department head."""

    __tablename__ = "department_members"
    __table_args__ = (UniqueConstraint("department_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    head: Mapped[bool] = mapped_column(Boolean, default=False)

    department: Mapped[Department] = relationship(back_populates="members")


class TicketPhoto(Base):
    """A photo of the work, stored beside the recordings (``stored_path`` is relative
    to that store and made only by ``ticketing.photos``)."""

    __tablename__ = "ticket_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    stored_path: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100), default="")
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CallbackTask(Base):
    """A mandatory callback for a supervisor after a poor 回访: the ticket cannot be
    archived while one is not ``done_at``."""

    __tablename__ = "ticket_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_by: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(String(1000), default="")


class TicketCounter(Base):
    """The last sequence number handed out per number prefix (``BX20261122``)."""

    __tablename__ = "ticket_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
