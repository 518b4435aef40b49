"""Tables of the recordings domain: voicemail recordings and their transcription jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UtcDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed")


class Recording(Base):
    """One voicemail message, copied out of Asterisk's spool into our data directory.

    Identity is ``(context, mailbox, msg_id)`` as app_voicemail wrote it; ``sha256``
    is the content of the WAV file. After the retention period the file is deleted
    and ``purged_at`` set, but the row stays so a rescan never ingests it again."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("context", "mailbox", "msg_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    context: Mapped[str] = mapped_column(String(80))
    mailbox: Mapped[str] = mapped_column(String(80))
    msg_id: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str] = mapped_column(String(300))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    caller_number: Mapped[str] = mapped_column(String(32), default="")
    caller_name: Mapped[str] = mapped_column(String(100), default="")
    # VM_CATEGORY as the IVR set it (see recordings/ivr_hint.py)
    ivr_hint: Mapped[str] = mapped_column(String(250), default="", server_default="")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    job: Mapped[TranscriptionJob | None] = relationship(back_populates="recording", uselist=False)


class TranscriptionJob(Base):
    """Transcribe → triage → ticket for one recording. One job per recording."""

    __tablename__ = "transcription_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(1000), default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    recording: Mapped[Recording] = relationship(back_populates="job")
