"""Voicemail in every format app_voicemail writes (``format=wav49|gsm|wav``):
the best file per message is ingested, the original kept with its own suffix,
a PCM WAV made for the browser and the transcriber, and a format nothing here
decodes still becomes a ticket that says why. Real GSM files made by sox."""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from recordings.ingest import VoicemailIngest
from recordings.models import Recording, TranscriptionJob
from recordings.services import RecordingService
from recordings.spool import best_audio, scan_spool
from recordings.store import RecordingStore
from tests.recordings.fakes import FakeTranscriber, simple_triage, write_txt, write_wav
from tests.ticketing.directory_data import seed_directory
from ticketing.models import Ticket
from ticketing.services import UNRECOGNISED_SUMMARY, TicketService

SAID = "三 栋 二 单元 一 二 零 一 厨房 水管 漏水"
SOX = shutil.which("sox")
needs_sox = pytest.mark.skipif(SOX is None, reason="sox is not installed")


def sox(src: Path, dest: Path, *args: str) -> Path:
    assert SOX is not None
    subprocess.run([SOX, str(src), *args, str(dest)], check=True, capture_output=True)
    return dest


def gsm_from(wav: Path, dest: Path) -> Path:
    return sox(wav, dest, "-r", "8000", "-c", "1", "-t", "gsm")


def wav49_from(wav: Path, dest: Path) -> Path:
    """A RIFF WAV holding GSM 06.10 (format tag 0x31), as Asterisk's ``wav49``."""
    out = sox(wav, dest, "-r", "8000", "-c", "1", "-t", "wav", "-e", "gsm-full-rate")
    assert out.read_bytes()[20:22] == b"\x31\x00"
    return out


@dataclass
class World:
    sm: async_sessionmaker[AsyncSession]
    spool: Path
    data_dir: Path
    transcriber: FakeTranscriber
    tickets: TicketService
    clock: ManualClock
    community_id: int
    tmp: Path

    def ingest(self, **kw: object) -> VoicemailIngest:
        return VoicemailIngest(
            self.sm, self.spool, self.data_dir, self.transcriber, simple_triage, self.tickets,
            lookup_by_number, self.clock, default_community_id=self.community_id,
            **kw)  # type: ignore[arg-type]

    def inbox(self, mailbox: str = "8000") -> Path:
        path = self.spool / "default" / mailbox / "INBOX"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def source_wav(self, freq: float = 440.0) -> Path:
        return write_wav(self.tmp / f"src-{freq:g}.wav", seconds=1.5, freq=freq)

    async def one(self) -> tuple[Recording, TranscriptionJob, Ticket]:
        async with self.sm() as s:
            rec = (await s.scalars(select(Recording))).one()
            job = (await s.scalars(select(TranscriptionJob))).one()
            ticket = (await s.scalars(select(Ticket))).one()
        return rec, job, ticket


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> World:
    bus = EventBus()
    clock = ManualClock(datetime(2026, 11, 22, 10, 40, tzinfo=UTC))
    seeded = await seed_directory(sessionmaker)
    return World(sessionmaker, tmp_path / "spool", tmp_path / "data",
                 FakeTranscriber(default_text=SAID), TicketService(sessionmaker, bus, clock),
                 clock, seeded.community_id, tmp_path)


def assert_pcm_wav(path: Path, *, seconds: float) -> None:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() == pytest.approx(seconds * 8000, abs=160)
        assert any(w.readframes(w.getnframes()))  # real sound, not a silent stand-in


def test_best_audio_file_is_chosen_per_message(tmp_path: Path) -> None:
    names = ["msg0000.gsm", "msg0000.WAV", "msg0000.wav"]
    paths = [tmp_path / n for n in names]
    assert best_audio(paths) == tmp_path / "msg0000.wav"
    assert best_audio(paths[:2]) == tmp_path / "msg0000.WAV"
    assert best_audio(paths[:1]) == tmp_path / "msg0000.gsm"
    assert best_audio([tmp_path / "msg0000.g729"]) == tmp_path / "msg0000.g729"
    assert best_audio([]) is None


def test_scan_finds_gsm_wav49_and_unknown_formats_and_prefers_wav(tmp_path: Path) -> None:
    inbox = tmp_path / "default" / "8000" / "INBOX"
    for n, suffixes in enumerate([(".wav", ".WAV", ".gsm"), (".WAV", ".gsm"), (".gsm",),
                                  (".g729",), ()]):
        write_txt(inbox / f"msg{n:04d}.txt", msg_id=f"100-{n}")
        for suffix in suffixes:
            (inbox / f"msg{n:04d}{suffix}").write_bytes(b"x")
    (inbox / "msg0009.gsm").write_bytes(b"x")  # audio without its .txt: not yet complete
    (inbox / "msg0008.txt.tmp").write_bytes(b"x")
    found = scan_spool(tmp_path)
    assert [(m.msgnum, m.audio_path.name, m.audio_format) for m in found] == [
        ("0000", "msg0000.wav", ".wav"), ("0001", "msg0001.WAV", ".WAV"),
        ("0002", "msg0002.gsm", ".gsm"), ("0003", "msg0003.g729", ".g729")]


@needs_sox
@pytest.mark.parametrize("fmt", ["gsm", "wav49"])
async def test_gsm_and_wav49_voicemail_becomes_a_transcribed_ticket(world: World, fmt: str) -> None:
    src = world.source_wav()
    original = (gsm_from(src, world.inbox() / "msg0000.gsm") if fmt == "gsm"
                else wav49_from(src, world.inbox() / "msg0000.WAV"))
    write_txt(world.inbox() / "msg0000.txt", msg_id="1795343499-00000001")

    report = await world.ingest().scan_and_process()
    assert (report.found, report.registered) == (1, 1)
    rec, job, ticket = await world.one()
    # The original is kept byte for byte, under the suffix Asterisk gave it.
    assert rec.stored_path.endswith(original.suffix)
    store = RecordingStore(world.data_dir)
    assert store.path_for(rec.stored_path).read_bytes() == original.read_bytes()
    # A PCM WAV beside it is what the transcriber was given …
    playable = store.path_for(rec.stored_path + ".wav")
    assert world.transcriber.calls == [playable]
    assert_pcm_wav(playable, seconds=1.5)
    assert (job.state, job.error_id) == ("done", None)
    assert ticket.summary.startswith("【给排水】") and ticket.description == SAID
    # … and what the ticket page's player gets.
    assert await RecordingService(world.sm, world.data_dir).file_for(rec.id) == playable

    # Retention removes both files.
    world.clock.set(rec.received_at + timedelta(days=400))
    assert await world.ingest(retention_days=30).purge_expired() == 1
    assert not playable.exists() and not store.path_for(rec.stored_path).exists()


@needs_sox
async def test_only_the_best_format_of_a_message_is_ingested_once(world: World) -> None:
    src = world.source_wav()
    shutil.copy(src, world.inbox() / "msg0000.wav")
    wav49_from(src, world.inbox() / "msg0000.WAV")
    gsm_from(src, world.inbox() / "msg0000.gsm")
    write_txt(world.inbox() / "msg0000.txt", msg_id="1795343499-00000001")
    await world.ingest().scan_and_process()
    again = await world.ingest().scan_and_process()
    assert (again.registered, again.known) == (0, 1)
    rec, job, _ = await world.one()
    assert rec.stored_path.endswith(".wav") and job.state == "done"
    stored = RecordingStore(world.data_dir).path_for(rec.stored_path)
    assert stored.read_bytes() == src.read_bytes()
    assert world.transcriber.calls == [stored]  # no copy made of a PCM WAV
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]


@needs_sox
@pytest.mark.parametrize("fmt", ["gsm", "wav49"])
async def test_gsm_without_sox_still_makes_a_ticket_that_says_why(world: World, fmt: str) -> None:
    src = world.source_wav()
    original = (gsm_from(src, world.inbox() / "msg0000.gsm") if fmt == "gsm"
                else wav49_from(src, world.inbox() / "msg0000.WAV"))
    write_txt(world.inbox() / "msg0000.txt", msg_id="1795343499-00000001")
    [result] = (await world.ingest(sox_binary="no-such-sox-here").scan_and_process()).jobs
    assert (result.state, result.error_id) == ("failed", "audio_unsupported_format")
    assert "不支持的录音格式" in result.reason and "sox" in result.reason
    rec, job, ticket = await world.one()
    assert ticket.summary == UNRECOGNISED_SUMMARY and job.ticket_id == ticket.id
    assert ticket.caller_number == "13912345678" and ticket.recording_id == rec.id
    assert world.transcriber.calls == []
    # The original is kept and downloadable as it is.
    service = RecordingService(world.sm, world.data_dir)
    assert (await service.file_for(rec.id)).read_bytes() == original.read_bytes()


async def test_unknown_and_broken_formats_become_tickets_with_the_reason(world: World) -> None:
    inbox = world.inbox()
    (inbox / "msg0000.g729").write_bytes(b"\x01\x02" * 400)
    write_txt(inbox / "msg0000.txt", msg_id="1795343499-00000001", caller="<13800000002>")
    (inbox / "msg0001.gsm").write_bytes(b"")  # a recording that never started
    write_txt(inbox / "msg0001.txt", msg_id="1795343499-00000002", caller="<13800000003>")
    report = await world.ingest().scan_and_process()
    assert report.found == 2
    by_caller = {}
    async with world.sm() as s:
        for job in report.jobs:
            ticket = await s.get(Ticket, job.ticket_id)
            assert ticket is not None and ticket.summary == UNRECOGNISED_SUMMARY
            by_caller[ticket.caller_number] = job
    g729, empty = by_caller["13800000002"], by_caller["13800000003"]
    assert (g729.state, g729.error_id) == ("failed", "audio_unsupported_format")
    assert ".g729" in g729.reason and "voicemail.conf" in g729.reason
    assert (empty.state, empty.error_id) == ("failed", "audio_empty_file")
    assert world.transcriber.calls == []


def test_store_keeps_the_suffix_and_refuses_odd_ones(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    when = datetime(2026, 11, 22, tzinfo=UTC)
    assert store.relative_path("ab" * 32, when, "m1", ".WAV") == "2026/11/abababababababab-m1.WAV"
    assert store.relative_path("ab" * 32, when, "m1", ".gsm").endswith("-m1.gsm")
    for odd in ("", ".", "./../x", ".wav/../../x", ".tar.gz"):
        assert store.relative_path("ab" * 32, when, "m1", odd).endswith("-m1.bin"), odd
    assert store.playable_path("2026/11/x.wav") == "2026/11/x.wav"
    assert store.playable_path("2026/11/x.WAV") == "2026/11/x.WAV.wav"
