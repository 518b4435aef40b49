"""The table of outage notices (停水停电通知).

A notice covers a community (``building`` ''), a building, or a range of units in
a building (``unit_from``..``unit_to``); it is live from ``starts_at`` until
``ends_at`` or until someone ends it early (``ended_at``, ``ended_by``). Nothing
runs at the end time: every query asks for the notices live *now*."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime, utcnow


class OutageNotice(Base):
    __tablename__ = "outage_notices"
    __table_args__ = (Index("ix_outage_notices_community_ends", "community_id", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    building: Mapped[str] = mapped_column(String(32), default="", server_default="")
    unit_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    unit_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(String(500))
    all_callers: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The sound file callers hear (under the prompts' directory, without extension):
    # the text spoken, or the generic prompt when it could not be (``audio_note`` says why).
    prompt: Mapped[str] = mapped_column(String(100), default="outage-generic")
    audio_note: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_role: Mapped[str] = mapped_column(String(16), default="", server_default="")
    group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # posted from 群发事件
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    end_note: Mapped[str] = mapped_column(String(300), default="", server_default="")
