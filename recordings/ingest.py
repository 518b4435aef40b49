"""Voicemail → repair ticket.

Every recording app_voicemail leaves in the spool becomes exactly one ticket:

1. ``register``: a new message (by identity ``context/mailbox/msg_id``, and by
   content hash + msg_id for a copy of it elsewhere in the spool) is copied
   atomically into ``<data_dir>/recordings`` and a ``queued`` job is written
   with it, in one transaction. A rescan, a restart or a second event finds
   the identity and does nothing.
2. ``run_job``: transcribe → triage → ticket. The ticket is written and the
   job finished in one transaction, and a ticket per recording is unique in
   the database, so a crash at any point never yields a second ticket. Jobs a
   crash left ``running`` are queued again by ``recover`` on start.
3. Audio that cannot be understood (empty, silent, corrupt, a format nothing
   here decodes, transcription failed or timed out) still becomes a ticket
   that says so, and the job keeps the reason.

The original is stored as Asterisk wrote it (``.wav``, WAV49 ``.WAV``,
``.gsm``, ...). A non-WAV original is decoded once, when its job runs, into a
PCM WAV beside it (``RecordingStore.make_playable``): the ticket page plays
that copy and the transcriber reads it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent
from callcenter.clock import Clock
from recordings.errors import AudioError
from recordings.ivr_hint import parse_hint
from recordings.models import Recording, TranscriptionJob
from recordings.safefs import REFUSALS, RefusedFile, open_beneath
from recordings.spool import SpoolMessage, scan_spool
from recordings.store import RecordingStore, sha256_fileobj
from ticketing.categories import CATEGORIES
from ticketing.listen import UNSURE_DECISION, needs_listen
from ticketing.location import SaidLocation, decide_location
from ticketing.models import Ticket
from ticketing.services import MAX_DESCRIPTION, UNRECOGNISED_SUMMARY, NewTicket, TicketService

log = logging.getLogger(__name__)


def call_ids(ivr_hint: str | None) -> dict[str, str]:
    """``{"linkedid": ...}`` of the call that left a message (its IVR hint), to
    bind on the message's log lines; empty when the hint names none."""
    hint = parse_hint(ivr_hint or "")
    return {"linkedid": hint.call_id} if hint is not None and hint.call_id else {}

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Larger than any voicemail (app_voicemail's maxsecs at 16-bit 48 kHz is ~30 MB for
five minutes); a spool file above it is refused, not copied."""


class TranscriptLike(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def words(self) -> Sequence[Any]:
        """Mappings ``{word, start, end, conf}`` or objects with ``to_dict()``."""

    @property
    def duration_s(self) -> float: ...


class Transcriber(Protocol):
    """What the ingest needs from the vosk pool: ``transcribe(path, on_start=...) -> Transcript``
    (a coroutine, or a plain call returning one). Errors are exceptions, ideally
    with an ``error_id``."""

    def transcribe(self, path: Path, *, on_start: Callable[[], Awaitable[None]] | None = None
                   ) -> Awaitable[TranscriptLike] | TranscriptLike:
        """``on_start`` is awaited when a worker is about to decode ``path`` (each
        time, when a dead worker's job is retried): the ingest counts an attempt."""


class TriageLike(Protocol):
    @property
    def category(self) -> str: ...

    @property
    def emergency(self) -> bool: ...

    @property
    def building(self) -> str | None: ...

    @property
    def unit(self) -> str | None: ...

    @property
    def room(self) -> str | None: ...


TriageFn = Callable[[str], TriageLike]


class RoomLink(Protocol):
    @property
    def room_id(self) -> int: ...


class CallerRecord(Protocol):
    @property
    def person_id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def units(self) -> Sequence[RoomLink]: ...


Lookup = Callable[[AsyncSession, str], Awaitable[Sequence[CallerRecord]]]


@dataclass(frozen=True, slots=True)
class JobResult:
    job_id: int
    recording_id: int
    ticket_id: int | None
    ticket_number: str | None
    state: str
    error_id: str | None = None
    reason: str = ""


@dataclass(slots=True)
class IngestReport:
    found: int = 0
    registered: int = 0
    known: int = 0
    duplicates: int = 0
    jobs: list[JobResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found, "registered": self.registered, "known": self.known,
            "duplicates": self.duplicates,
            "jobs": [
                {"job_id": j.job_id, "recording_id": j.recording_id, "ticket_id": j.ticket_id,
                 "ticket": j.ticket_number, "state": j.state, "error_id": j.error_id,
                 "reason": j.reason}
                for j in self.jobs
            ],
        }


def _word_dict(word: Any) -> dict[str, Any]:
    if isinstance(word, Mapping):
        return dict(word)
    to_dict = getattr(word, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"word": str(word)}


_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\uff00-\uffef])\s+(?=[\u3400-\u9fff\uff00-\uffef])")


def compact_transcript(text: str) -> str:
    """ASR output splits Chinese into words by spaces; people read it without them."""
    return _CJK_GAP.sub("", " ".join(text.split()))


def summary_for(text: str, category: str, *, limit: int = 80) -> str:
    body = compact_transcript(text)
    if len(body) > limit:
        body = body[: limit - 1] + "…"
    return f"【{CATEGORIES[category].label}】{body}"


class VoicemailIngest:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        spool_dir: Path,
        data_dir: Path,
        transcriber: Transcriber | None,
        triage_fn: TriageFn | None,
        tickets: TicketService,
        lookup: Lookup,
        clock: Clock,
        *,
        scan_interval_s: float = 60.0,
        retention_days: int = 365,
        default_community_id: int | None = None,
        contexts: tuple[str, ...] | None = None,
        mailboxes: tuple[str, ...] | None = None,
        transcribe_timeout_s: float = 300.0,
        max_attempts: int = 3,
        sox_binary: str | None = "sox",
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._sm = sessionmaker
        self.spool_dir = spool_dir
        self.store = RecordingStore(data_dir)
        self._transcriber = transcriber
        self._triage = triage_fn
        self._tickets = tickets
        self._lookup = lookup
        self._clock = clock
        self._interval = scan_interval_s
        self._retention = retention_days
        self._default_community_id = default_community_id
        self._contexts = contexts
        self._mailboxes = mailboxes
        self._timeout = transcribe_timeout_s
        self._max_attempts = max_attempts
        self._sox = sox_binary
        self._max_bytes = max_message_bytes
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- running ------------------------------------------------------------

    async def start(self) -> None:
        """Queue again what a crash left running, then scan now and every interval."""
        await self.recover()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="voicemail-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.scan_and_process()
                await self.purge_expired()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voicemail scan failed; trying again in %.0f s", self._interval)
            await self._clock.sleep(self._interval)

    async def on_voicemail_left(self, event: DomainEvent) -> None:
        """Bus handler for ``voicemail.left``: scan at once instead of waiting."""
        report = await self.scan_and_process()
        log.info("voicemail.left %s: %d new, %d jobs", event.data.get("mailbox", "?"),
                 report.registered, len(report.jobs))

    async def scan_and_process(self) -> IngestReport:
        async with self._lock:
            report = IngestReport()
            messages = await asyncio.to_thread(scan_spool, self.spool_dir,
                                               contexts=self._contexts, mailboxes=self._mailboxes)
            report.found = len(messages)
            for msg in messages:
                try:
                    outcome = await self.register(msg)
                except RefusedFile as exc:  # swapped for a link since the scan saw it
                    REFUSALS.refuse(exc.path, exc.reason)
                    continue
                except Exception:
                    log.exception("could not register voicemail %s", msg.audio_path)
                    continue
                if outcome == "new":
                    report.registered += 1
                elif outcome == "duplicate":
                    report.duplicates += 1
                else:
                    report.known += 1
            report.jobs = await self.process_queued()
            return report

    # -- registering --------------------------------------------------------

    async def register(self, msg: SpoolMessage) -> str:
        """``"new"``, ``"known"`` (same identity) or ``"duplicate"`` (same content
        and msg_id under another identity)."""
        async with self._sm() as session:
            if await self._find(session, msg.identity) is not None:
                return "known"
            # One descriptor, opened without following links and checked to be a
            # regular file, is hashed and copied: what was checked is what is stored.
            audio = await asyncio.to_thread(self._open_audio, msg)
            try:
                return await self._register_open(session, msg, audio)
            finally:
                audio.close()

    def _open_audio(self, msg: SpoolMessage) -> BinaryIO:
        try:
            relative: Path | str = msg.audio_path.relative_to(self.spool_dir)
            root = self.spool_dir
        except ValueError:
            root, relative = msg.audio_path.parent, msg.audio_path.name
        return open_beneath(root, relative, max_bytes=self._max_bytes)

    async def _register_open(self, session: AsyncSession, msg: SpoolMessage,
                             audio: BinaryIO) -> str:
        sha = await asyncio.to_thread(sha256_fileobj, audio)
        if not msg.has_msg_id and msg.origtime is not None:
            # No msg_id from Asterisk, and before this identity an older
            # version of this server named such a message ``<origtime>-<msgnum>``:
            # the same audio left at the same time in this mailbox under such
            # an id is this message (its number may have changed since).
            legacy = (await session.scalars(select(Recording.id).where(
                Recording.context == msg.context, Recording.mailbox == msg.mailbox,
                Recording.sha256 == sha,
                Recording.msg_id.like(f"{int(msg.origtime.timestamp())}-____")))).first()
            if legacy is not None:
                return "known"
        same = (await session.scalars(
            select(Recording.id).where(Recording.sha256 == sha,
                                       Recording.msg_id == msg.msg_id))).first()
        if same is not None:
            return "duplicate"
        received_at = msg.origtime or self._clock.now()
        stored = self.store.relative_path(sha, received_at, msg.msg_id, msg.audio_format)
        size = await self.store.save(audio, stored)
        rec = Recording(context=msg.context, mailbox=msg.mailbox, msg_id=msg.msg_id,
                        sha256=sha, stored_path=stored, size_bytes=size,
                        duration_s=msg.duration_s, caller_number=msg.caller_number,
                        caller_name=msg.caller_name, received_at=received_at,
                        ivr_hint=msg.category, created_at=self._clock.now())
        session.add(rec)
        await session.flush()
        session.add(TranscriptionJob(recording_id=rec.id, state="queued",
                                     created_at=self._clock.now(), words=[]))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return "known"
        with structlog.contextvars.bound_contextvars(**call_ids(msg.category)):
            log.info("voicemail %s/%s/%s registered as recording %d", *msg.identity, rec.id)
        return "new"

    async def _find(self, session: AsyncSession, identity: tuple[str, str, str]) -> int | None:
        context, mailbox, msg_id = identity
        return (await session.scalars(select(Recording.id).where(
            Recording.context == context, Recording.mailbox == mailbox,
            Recording.msg_id == msg_id))).first()

    # -- processing ---------------------------------------------------------

    async def recover(self) -> int:
        """Jobs left ``running`` by a crash go back to ``queued``."""
        async with self._sm() as session:
            jobs = (await session.scalars(
                select(TranscriptionJob).where(TranscriptionJob.state == "running"))).all()
            for job in jobs:
                job.state = "queued"
            await session.commit()
        if jobs:
            log.warning("re-queued %d transcription job(s) left running", len(jobs))
        return len(jobs)

    async def process_queued(self) -> list[JobResult]:
        async with self._sm() as session:
            ids = (await session.scalars(
                select(TranscriptionJob.id).where(TranscriptionJob.state == "queued")
                .order_by(TranscriptionJob.id))).all()
        results = []
        for job_id in ids:
            try:
                results.append(await self.run_job(job_id))
            except Exception:
                log.exception("transcription job %d failed unexpectedly", job_id)
        return results

    async def run_job(self, job_id: int) -> JobResult:
        """Transcribe, triage and file one queued job; its lines carry the
        linkedid of the call that left the message, when the IVR noted it."""
        async with self._sm() as session:
            hint = await session.scalar(
                select(Recording.ivr_hint).join(TranscriptionJob,
                                                TranscriptionJob.recording_id == Recording.id)
                .where(TranscriptionJob.id == job_id))
        with structlog.contextvars.bound_contextvars(**call_ids(hint)):
            return await self._run_job(job_id)

    async def _run_job(self, job_id: int) -> JobResult:
        async with self._sm() as session:
            job = await session.get(TranscriptionJob, job_id)
            if job is None:
                raise LookupError(f"no transcription job {job_id}")
            rec = await session.get(Recording, job.recording_id)
            assert rec is not None
            if job.state != "queued":
                return JobResult(job.id, rec.id, job.ticket_id, None, job.state, job.error_id,
                                 job.reason)
            # Claim it: only one runner (this process or a CLI scan) wins. The claim
            # is not an attempt: a crash before a worker took the job (at start-up,
            # waiting for a worker) leaves it ``running`` with its count unchanged,
            # and ``recover`` queues it again. ``attempts`` counts the times a
            # worker was handed the job (``_started``).
            claimed = await session.execute(
                update(TranscriptionJob)
                .where(TranscriptionJob.id == job_id, TranscriptionJob.state == "queued")
                .values(state="running")
            )
            await session.commit()
            if getattr(claimed, "rowcount", 1) != 1:
                return JobResult(job.id, rec.id, None, None, "running")
            attempts = job.attempts

        text, words, error_id, reason = await self._transcribe(rec, job_id, attempts)
        new = await self._ticket_for(rec, text, error_id)

        created = False
        async with self._sm() as session:
            ticket = (await session.scalars(
                select(Ticket).where(Ticket.recording_id == rec.id))).first()
            if ticket is None:
                ticket = await self._tickets.add(session, new)
                created = True
            job = await session.get(TranscriptionJob, job_id)
            assert job is not None
            job.state = "failed" if error_id else "done"
            job.error_id = error_id
            job.reason = reason[:1000]
            job.transcript = text
            job.words = [dict(w) for w in words]
            job.ticket_id = ticket.id
            job.finished_at = self._clock.now()
            ticket_id, number, state = ticket.id, ticket.number, job.state
            await session.commit()
        if created:
            self._tickets.announce_created(await self._tickets.get(ticket_id))
        log.info("voicemail recording %d → ticket %s (%s%s)", rec.id, number, state,
                 f", {error_id}" if error_id else "")
        return JobResult(job_id, rec.id, ticket_id, number, state, error_id, reason)

    async def _started(self, job_id: int) -> None:
        """A worker is about to decode the job: count the attempt, durably, first.
        A job that kills whatever decodes it (and the server with it) thus ends
        after ``max_attempts`` real runs, whatever happens around them."""
        async with self._sm() as session:
            await session.execute(
                update(TranscriptionJob).where(TranscriptionJob.id == job_id)
                .values(attempts=TranscriptionJob.attempts + 1, started_at=self._clock.now()))
            await session.commit()

    async def _transcribe(self, rec: Recording, job_id: int, attempts: int
                          ) -> tuple[str, list[dict[str, Any]], str | None, str]:
        if attempts >= self._max_attempts:
            return "", [], "too_many_attempts", (
                f"转写已尝试 {attempts} 次仍未完成 / gave up after {attempts} attempts")
        try:
            path = self.store.path_for(rec.stored_path)
        except ValueError:
            return "", [], "recording_missing", "录音路径无效 / stored path is invalid"
        if not path.is_file():
            return "", [], "recording_missing", "录音文件不存在 / recording file is missing"
        try:
            playable = await asyncio.to_thread(self.store.make_playable, rec.stored_path,
                                               sox_binary=self._sox)
        except AudioError as exc:
            log.warning("recording %d cannot be decoded: %s", rec.id, exc.message)
            return "", [], exc.error_id, exc.message
        except Exception as exc:
            log.exception("recording %d: converting it to WAV failed", rec.id)
            return "", [], "audio_unreadable", (
                f"录音无法转换为 WAV / could not convert the recording to WAV: "
                f"{type(exc).__name__}: {exc}")
        path = self.store.path_for(playable)
        if self._transcriber is None:
            return "", [], "transcription_unavailable", (
                "未配置语音识别，请收听录音 / no transcriber configured")
        try:
            async with asyncio.timeout(self._timeout):
                result = self._transcriber.transcribe(
                    path, on_start=lambda: self._started(job_id))
                transcript = await result if inspect.isawaitable(result) else result
        except TimeoutError:
            return "", [], "transcription_timeout", (
                f"转写超时（{self._timeout:.0f} 秒）/ transcription timed out")
        except Exception as exc:
            error_id = getattr(exc, "error_id", None) or "transcription_failed"
            return "", [], str(error_id), f"{type(exc).__name__}: {exc}"
        text = " ".join(transcript.text.split())
        words = [_word_dict(w) for w in transcript.words]
        if not text:
            return "", words, "no_speech", "录音中没有识别出语音 / no speech recognised"
        return text, words, None, ""

    async def _ticket_for(self, rec: Recording, text: str, error_id: str | None) -> NewTicket:
        category, emergency = "other", False
        said = SaidLocation()
        unsure_note = ""
        hint = parse_hint(rec.ivr_hint or "")
        # Transcription or triage that never completed: someone must listen.
        listen = error_id if error_id and needs_listen(error_id) else ""
        if text and error_id is None:
            result = await self._triaged(rec, text)
            if result is None:
                listen = "triage_failed" if self._triage is not None else ""
            else:
                category = result.category if result.category in CATEGORIES else "other"
                emergency = bool(result.emergency)
                said = SaidLocation(result.building, result.unit, result.room)
                if getattr(result, "unsure", False) and not emergency:
                    listen = "triage_unsure"  # maybe an emergency: a person decides
                    why = str(getattr(result, "unsure_reason", "") or "")
                    unsure_note = f"{UNSURE_DECISION}：{why}" if why else UNSURE_DECISION
        if category == "other" and hint is not None and hint.path:
            # Nothing (or nothing useful) said: the menu the caller went through
            # (报修 → 水电) still tells what it is about.
            result = await self._triaged(rec, " ".join(hint.path))
            if result is not None and result.category in CATEGORIES:
                category = result.category
        async with self._sm() as session:
            people = list(await self._lookup(session, rec.caller_number)) if rec.caller_number else []
            room_ids = [u.room_id for p in people for u in p.units]
            if hint is not None and hint.room_id is not None and (
                    hint.room_id in room_ids or not room_ids):
                # The room the IVR knew the caller for, or the one they chose there.
                room_ids = [hint.room_id]
            decision = await decide_location(session, room_ids, said,
                                             default_community_id=self._default_community_id)
        person_id: int | None = None
        caller_name = rec.caller_name
        if len(people) == 1:
            person_id = people[0].person_id
        elif decision.room is not None:
            owners = [p for p in people if any(u.room_id == decision.room.room_id for u in p.units)]
            if len(owners) == 1:
                person_id = owners[0].person_id
        if person_id is not None:
            caller_name = next(p.name for p in people if p.person_id == person_id) or caller_name
        summary = summary_for(text, category) if text and error_id is None else UNRECOGNISED_SUMMARY
        description = text[:MAX_DESCRIPTION]
        if unsure_note:
            description = f"{description}\n\n{unsure_note}"
        if hint is not None and hint.path:
            description = (f"{description}\n\n" if description else "") + \
                f"语音导航：{hint.path_text}"
        return NewTicket(
            source="voicemail",
            category=category,
            priority="emergency" if emergency else "normal",
            summary=summary,
            description=description[:MAX_DESCRIPTION],
            caller_number=rec.caller_number,
            caller_name=caller_name,
            person_id=person_id,
            room_id=decision.room.room_id if decision.room else None,
            community_id=decision.community_id,
            location=decision.label,
            said_building=said.building,
            said_unit=said.unit,
            said_room=said.room,
            location_conflict=decision.conflict,
            recording_id=rec.id,
            created_by="voicemail",
            listen_reason=listen,
        )

    async def _triaged(self, rec: Recording, text: str) -> TriageLike | None:
        if self._triage is None:
            return None
        try:
            raw = self._triage(text)
            return await raw if inspect.isawaitable(raw) else raw
        except Exception:
            log.exception("triage failed on recording %d; filing as other", rec.id)
            return None

    # -- retention ----------------------------------------------------------

    async def purge_expired(self) -> int:
        """Delete recording files older than the retention period (tickets stay)."""
        if self._retention <= 0:
            return 0
        cutoff = self._clock.now() - timedelta(days=self._retention)
        purged = 0
        async with self._sm() as session:
            rows = (await session.scalars(select(Recording).where(
                Recording.received_at < cutoff, Recording.purged_at.is_(None)))).all()
            for rec in rows:
                try:
                    await self.store.delete(rec.stored_path)
                except (OSError, ValueError):
                    log.exception("could not delete recording file %s", rec.stored_path)
                    continue
                rec.purged_at = self._clock.now()
                purged += 1
            await session.commit()
        if purged:
            log.info("retention: deleted %d recording(s) older than %d days", purged,
                     self._retention)
        return purged
