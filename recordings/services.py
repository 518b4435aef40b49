"""Reading recordings back: the file to serve and a ticket's transcript."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.errors import DomainError, NotFound
from recordings.models import Recording, TranscriptionJob
from recordings.store import RecordingStore
from ticketing.models import Ticket

LOW_CONFIDENCE = 0.6


class RecordingGone(DomainError):
    """The recording existed but its file was deleted after the retention period."""

    error_id = "recording_purged"
    http_status = 410


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    recording_id: int
    duration_s: float | None
    caller_number: str
    received_at: Any
    purged: bool
    job_state: str | None
    error_id: str | None
    reason: str
    transcript: str
    words: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"/recordings/{self.recording_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.recording_id,
            "url": None if self.purged else self.url,
            "duration_s": self.duration_s,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "purged": self.purged,
            "transcription": {
                "state": self.job_state, "error_id": self.error_id, "reason": self.reason,
                "text": self.transcript, "words": self.words,
            },
        }


class RecordingService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path) -> None:
        self._sm = sessionmaker
        self.store = RecordingStore(data_dir)

    async def info(self, recording_id: int, *,
                   scope: frozenset[int] | None = None) -> RecordingInfo | None:
        """The recording and its transcription; None when there is none, or (with a
        ``scope`` of community ids) when its ticket is of another community or of none."""
        async with self._sm() as session:
            row = (await session.execute(
                select(Recording, TranscriptionJob)
                .outerjoin(TranscriptionJob, TranscriptionJob.recording_id == Recording.id)
                .where(Recording.id == recording_id)
            )).first()
            if row is not None and not await self._in_scope(session, recording_id, scope):
                row = None
        if row is None:
            return None
        rec, job = row[0], row[1]
        return RecordingInfo(
            recording_id=rec.id, duration_s=rec.duration_s, caller_number=rec.caller_number,
            received_at=rec.received_at, purged=rec.purged_at is not None,
            job_state=job.state if job else None, error_id=job.error_id if job else None,
            reason=job.reason if job else "", transcript=job.transcript if job else "",
            words=list(job.words or []) if job else [],
        )

    @staticmethod
    async def _in_scope(session: AsyncSession, recording_id: int,
                        scope: frozenset[int] | None) -> bool:
        """Is the recording's community (that of the ticket made of it) in ``scope``?"""
        if scope is None:
            return True
        community_id = await session.scalar(
            select(Ticket.community_id).where(Ticket.recording_id == recording_id).limit(1))
        return community_id is not None and community_id in scope

    async def file_for(self, recording_id: int, *, scope: frozenset[int] | None = None) -> Path:
        """The stored file of a registered recording: its PCM WAV copy when there
        is one, else the original. Only paths written by the ingest are ever
        opened; nothing from the request reaches the filesystem. With a ``scope``
        (community ids), one of another community is not found, as if it did not exist."""
        async with self._sm() as session:
            rec = await session.get(Recording, recording_id)
            if rec is not None and not await self._in_scope(session, recording_id, scope):
                rec = None
        if rec is None:
            raise NotFound(f"录音不存在 / no recording {recording_id}",
                           details={"recording_id": recording_id})
        if rec.purged_at is not None:
            raise RecordingGone(f"录音已按保存期限删除 / recording {recording_id} was deleted",
                                details={"recording_id": recording_id,
                                         "purged_at": rec.purged_at.isoformat()})
        # A GSM / WAV49 original has a PCM WAV beside it that browsers play. Either
        # is served only as a regular file inside the store reached through no
        # symbolic link (``RecordingStore.servable``); anything else is a 404.
        for stored in (self.store.playable_path(rec.stored_path), rec.stored_path):
            path = self.store.servable(stored)
            if path is not None:
                return path
        raise NotFound("录音文件不存在 / recording file missing",
                       details={"recording_id": recording_id})

    async def job_counts(self) -> dict[str, int]:
        async with self._sm() as session:
            rows = (await session.execute(
                select(TranscriptionJob.state, func.count(TranscriptionJob.id))
                .group_by(TranscriptionJob.state))).all()
        return {str(state): int(n) for state, n in rows}
