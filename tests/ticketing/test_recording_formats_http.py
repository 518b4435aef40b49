"""The recording download of a GSM voicemail: the ticket page's player gets a PCM
WAV (browsers cannot play GSM); an original nothing could decode is served
as itself with its own type, not mislabelled as WAV."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.auth.tokens import create_token
from callcenter.clock import ManualClock
from callcenter.settings import settings_from_mapping
from callcenter.tickets import VOICEMAIL_INGEST, setup_tickets
from tests.recordings.fakes import FakeTranscriber, simple_triage, write_txt, write_wav
from tests.recordings.test_ingest_formats import SOX, gsm_from
from tests.ticketing.directory_data import seed_directory

pytestmark = pytest.mark.skipif(SOX is None, reason="sox is not installed")


@pytest.fixture
def db_backend() -> str:
    """Serving a file does not depend on the backend (the ingest tests run on both)."""
    return "sqlite"


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def served(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                 tmp_path: Path) -> AsyncIterator[tuple[Client, dict[str, str], Path]]:
    await seed_directory(sessionmaker)
    async with sessionmaker() as s:
        token = await create_token(s, role="agent", name="agent1")
    spool = tmp_path / "spool"
    inbox = spool / "default" / "8000" / "INBOX"
    inbox.mkdir(parents=True)
    gsm_from(write_wav(tmp_path / "src.wav", seconds=1.0), inbox / "msg0000.gsm")
    write_txt(inbox / "msg0000.txt", msg_id="1795343499-00000001")
    settings = settings_from_mapping({
        "data_dir": str(tmp_path / "data"), "database": {"url": db_url},
        "voicemail": {"spool_dir": str(spool), "context": "default", "mailboxes": ["8000"]},
    })
    application = create_core_app(settings, clock=ManualClock())
    setup_tickets(application, transcriber=lambda _app: FakeTranscriber(default_text="水管 漏水"),
                  triage_fn=simple_triage)
    client = TestClient(TestServer(application, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client, {"Authorization": f"Bearer {token}"}, inbox / "msg0000.gsm"
    finally:
        await client.close()


async def ticket_recording(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(1000):
        async with client.get("/api/tickets", headers=headers) as r:
            items = (await r.json())["items"]
        if items:
            async with client.get(f"/api/tickets/{items[0]['id']}", headers=headers) as r:
                return dict((await r.json())["recording"])
        await asyncio.sleep(0.02)
    raise AssertionError("the voicemail never became a ticket")


async def test_gsm_voicemail_is_served_as_a_playable_pcm_wav(
        served: tuple[Client, dict[str, str], Path]) -> None:
    client, headers, gsm = served
    rec = await ticket_recording(client, headers)
    assert rec["transcription"]["state"] == "done"
    async with client.get(rec["url"], headers=headers) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
        assert r.headers["Content-Disposition"].endswith('.wav"')
        body = await r.read()
    with wave.open(io.BytesIO(body), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() == 8000
    # The original GSM is kept as Asterisk wrote it.
    ingest = client.app[VOICEMAIL_INGEST]
    stored = sorted(ingest.store.root.rglob("*.gsm"))
    assert [p.read_bytes() for p in stored] == [gsm.read_bytes()]

    # Without its PCM copy (say, it could not be decoded) the original is a
    # GSM download, never labelled as WAV.
    for copy in ingest.store.root.rglob("*.gsm.wav"):
        copy.unlink()
    async with client.get(rec["url"], headers=headers) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "audio/x-gsm"
        assert await r.read() == gsm.read_bytes()
