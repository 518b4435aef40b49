"""The call log: one row per call (per Asterisk ``Linkedid``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime

OUTCOMES = ("answered", "abandoned", "voicemail", "emergency", "ivr_only")


class CallLog(Base):
    """A call as it happened. Written from ``call.*`` events, idempotent by
    (asterisk, linkedid); ``outcome`` stays empty while the call is live."""

    __tablename__ = "call_logs"
    __table_args__ = (
        UniqueConstraint("asterisk", "linkedid"),
        Index("ix_call_logs_started_at", "started_at"),
        Index("ix_call_logs_caller_number", "caller_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64))
    asterisk: Mapped[str] = mapped_column(String(64))
    community: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """E.164 when the number normalises, else as Asterisk sent it."""
    caller_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    """The directory person the number matched (only when exactly one did)."""
    did: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    rung: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    wait_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    direction: Mapped[str] = mapped_column(String(3), default="in", server_default="in")
    """``in``: a caller rang the hotline; ``out``: the server dialled (a page, a
    campaign call, click-to-call). The hotline's figures count ``in`` only; for an
    ``out`` call ``did`` is the number dialled."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "linkedid": self.linkedid,
            "asterisk": self.asterisk,
            "community": self.community,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "person_id": self.person_id,
            "did": self.did,
            "ivr_path": list(self.ivr_path or []),
            "rung": list(self.rung or []),
            "answered_by": self.answered_by,
            "started_at": self.started_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "wait_s": self.wait_s,
            "talk_s": self.talk_s,
            "outcome": self.outcome,
            "direction": self.direction,
        }
