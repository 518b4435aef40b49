"""The ingest with the real vosk pool (the small Korean test model): speech becomes a
ticket with the words and their confidences; a corrupt or silent file becomes a
ticket that says it could not be understood, with the pool's typed error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from recordings.ingest import VoicemailIngest
from recordings.models import TranscriptionJob
from recordings.transcribe import TranscriberPool
from recordings.vosk_model import find_model
from tests.conftest import FIXTURES
from tests.recordings.fakes import Spool, simple_triage
from tests.ticketing.directory_data import seed_directory
from ticketing.models import Ticket
from ticketing.services import UNRECOGNISED_SUMMARY, TicketService

KO_WAV = FIXTURES / "recordings" / "ko_hello_8k.wav"


@pytest.fixture
def db_backend() -> str:
    """One backend is enough here: the ingest's database side runs on both elsewhere."""
    return "sqlite"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return find_model(None)


@pytest.fixture
async def pool(model_path: Path) -> AsyncIterator[TranscriberPool]:
    async with TranscriberPool(model_path, workers=1, job_timeout=60.0) as p:
        yield p


@pytest.mark.slow
async def test_real_transcription_silence_and_corruption(
        sessionmaker: async_sessionmaker[AsyncSession], pool: TranscriberPool,
        tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    spool = Spool(tmp_path / "spool")
    spool.add(wav=KO_WAV, caller="<13912345678>")
    spool.add(silent=True)
    spool.add(raw=b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    bus = EventBus()
    clock = ManualClock(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    ingest = VoicemailIngest(sessionmaker, spool.root, tmp_path / "data", pool, simple_triage,
                             TicketService(sessionmaker, bus, clock), lookup_by_number, clock)
    report = await ingest.scan_and_process()
    assert report.registered == 3
    speech, silent, corrupt = report.jobs
    assert (speech.state, speech.error_id) == ("done", None)
    assert silent.state == "failed" and silent.error_id == "audio_silent"
    assert corrupt.state == "failed" and corrupt.error_id is not None
    assert corrupt.error_id.startswith("audio_")
    async with sessionmaker() as s:
        tickets = {t.id: t for t in (await s.scalars(select(Ticket))).all()}
        jobs = {j.id: j for j in (await s.scalars(select(TranscriptionJob))).all()}
    heard = jobs[speech.job_id]
    assert "엄마" in heard.transcript
    assert all({"word", "start", "end", "conf"} <= set(w) for w in heard.words)
    assert any(w["word"] == "엄마" for w in heard.words)
    assert tickets[speech.ticket_id or 0].description == heard.transcript
    for bad in (silent, corrupt):
        assert tickets[bad.ticket_id or 0].summary == UNRECOGNISED_SUMMARY
        assert jobs[bad.job_id].reason == bad.reason and bad.reason
