"""A voicemail whose transcription never completed is not left to sit: its ticket
is marked "unknown: listen" and night duty (at night) or the front desk (in
office hours) gets a notice through their own channel, here a real webhook on
loopback. The whole app runs: spool, ingest, tickets, the notice loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.appkeys import SESSION_RESOLVER
from callcenter.auth.identity import Identity
from callcenter.clock import ManualClock
from callcenter.directory.models import StaffUser
from callcenter.oncall.services import ChainSpec, ShiftInput, create_schedule
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from recordings.models import TranscriptionJob
from tests.console.helpers import serving
from tests.recordings.fakes import FakeTranscriber, Spool, simple_triage
from tests.ticketing.directory_data import seed_directory
from ticketing.listen import ACTOR
from ticketing.models import Ticket, TicketEvent
from ticketing.services import UNRECOGNISED_SUMMARY
from ticketing.triage import triage

NIGHT = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # Sunday 23:00 in Shanghai
OFFICE = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CORRUPT = b"RIFF\x24\x00\x00\x00WAVEfmt garbage, not audio"


@pytest.fixture
def db_backend() -> str:
    """The notice's database side is plain ORM; the ingest runs on both backends elsewhere."""
    return "sqlite"


@dataclass
class Hooks:
    base: str
    got: list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    got: list[tuple[str, dict[str, Any]]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((request.match_info["who"], await request.json()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{who}", handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield Hooks(str(server.make_url("")).rstrip("/"), got)
    finally:
        await server.close()


async def seed_staff(sm: async_sessionmaker[AsyncSession], base: str) -> None:
    async with sm() as s:
        users = {}
        for name, role in (("night1", "night_duty"), ("night2", "night_duty"),
                           ("desk1", "agent")):
            u = StaffUser(username=name, display_name=f"值班{name}", role=role,
                          active=True, notify={"webhook": f"{base}/{name}"},
                          all_communities=True)
            s.add(u)
            await s.flush()
            users[name] = u.id
        await s.commit()
    async with sm() as s:
        await create_schedule(s, community="hupan", role="night_duty", shifts=[
            ShiftInput("夜班", "18:00", "08:30", [users["night1"], users["night2"]],
                       date(2026, 11, 16)),
            ShiftInput("周末", "08:30", "18:00", [users["night1"], users["night2"]],
                       date(2026, 11, 16)),
        ], chain=[ChainSpec(0, "primary", "rotation", 0), ChainSpec(1, "backup", "rotation", 1)])


async def until(cond: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(1000):
        if await cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


@asynccontextmanager
async def running(db_url: str, tmp: Path, clock: ManualClock,
                  transcriber: FakeTranscriber | None,
                  triage_fn: Any = simple_triage) -> AsyncIterator[
                      TestClient[web.Request, web.Application]]:
    settings = settings_from_mapping({
        "data_dir": str(tmp / "data"), "database": {"url": db_url},
        "default_community": "hupan",
        "voicemail": {"spool_dir": str(tmp / "spool"), "context": "default",
                      "mailboxes": ["8000"]},
    })
    app = create_core_app(settings, clock=clock)
    setup_tickets(app, transcriber=lambda _app: transcriber, triage_fn=triage_fn)

    async def resolver(request: web.Request) -> Identity | None:
        return Identity(user_id=None, username="zhang", role="agent", via="session",
                        display_name="张客服", csrf_token="csrf-1")

    app[SESSION_RESOLVER] = resolver
    async with serving(app) as client:
        yield client


async def listened(sm: async_sessionmaker[AsyncSession]) -> list[Ticket]:
    async with sm() as s:
        return list((await s.scalars(select(Ticket).where(
            Ticket.listen_notified_at.is_not(None)).order_by(Ticket.id))).all())


async def log_of(sm: async_sessionmaker[AsyncSession], ticket_id: int) -> list[TicketEvent]:
    async with sm() as s:
        return list((await s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.actor == ACTOR))).all())


async def test_a_corrupt_wav_at_night_tells_night_duty_to_listen(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, hooks.base)
    Spool(tmp_path / "spool").add(raw=CORRUPT, caller="<13800000002>", msg_id="100-bad")
    async with running(db_url, tmp_path, ManualClock(NIGHT), FakeTranscriber()) as client:
        await until(lambda: _has(listened(sessionmaker)))
        [ticket] = await listened(sessionmaker)
        assert ticket.summary == UNRECOGNISED_SUMMARY and ticket.category == "other"
        assert ticket.needs_listen and ticket.listen_reason == "audio_unreadable"
        assert ticket.listen_notice == "转写失败，已通知夜班值班人员收听录音"
        # Exactly one notice, to the night duty on call (the primary), by webhook.
        assert [who for who, _ in hooks.got] == ["night1"]
        body = hooks.got[0][1]
        assert ticket.number in body["title"] and "请收听" in body["title"]
        assert body["fields"]["原因"] == "录音无法解码"
        [event] = await log_of(sessionmaker, ticket.id)
        assert "已通知夜班值班人员收听录音" in event.note and "值班night1" in event.note
        assert "非电话呼叫" in event.note
        async with client.get(f"/tickets/{ticket.id}") as r:
            page = await r.text()
        assert r.status == 200
        assert "转写失败，已通知夜班值班人员收听录音" in page
        async with client.get(f"/api/tickets/{ticket.id}") as r:
            listen = (await r.json())["listen"]
        assert listen["needed"] and listen["reason"] == "audio_unreadable"
        assert listen["notified_at"] is not None
        await asyncio.sleep(0.2)
    assert len(hooks.got) == 1  # not sent again


async def _has(rows: Awaitable[list[Ticket]]) -> bool:
    return bool(await rows)


async def test_a_crash_looping_job_ends_with_a_notice_and_a_marked_ticket(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    """The job a crash loop left ``running`` after its last real attempt."""
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, hooks.base)
    Spool(tmp_path / "spool").add(msg_id="200-loop")
    transcriber = FakeTranscriber(default_text="五 栋 水管 漏水")
    async with running(db_url, tmp_path, ManualClock(NIGHT), None) as _client:
        await until(lambda: _has(listened(sessionmaker)))  # no model: listen too
    hooks.got.clear()
    async with sessionmaker() as s:  # a second message, which crashed the server three times
        await s.execute(TicketEvent.__table__.delete())
        await s.execute(Ticket.__table__.delete())
        job = (await s.scalars(select(TranscriptionJob))).one()
        job.state, job.attempts, job.ticket_id, job.error_id = "running", 3, None, None
        await s.commit()
    async with running(db_url, tmp_path, ManualClock(NIGHT), transcriber) as _client:
        await until(lambda: _has(listened(sessionmaker)))
        [ticket] = await listened(sessionmaker)
    assert transcriber.calls == []  # not run a fourth time
    assert ticket.listen_reason == "too_many_attempts"
    assert ticket.listen_notice == "转写失败，已通知夜班值班人员收听录音"
    assert [who for who, _ in hooks.got] == ["night1"]
    assert "多次转写均未完成" in hooks.got[0][1]["text"]


async def test_in_office_hours_the_front_desk_is_told(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, hooks.base)
    Spool(tmp_path / "spool").add(raw=CORRUPT, msg_id="300-bad")
    async with running(db_url, tmp_path, ManualClock(OFFICE), FakeTranscriber()):
        await until(lambda: _has(listened(sessionmaker)))
        [ticket] = await listened(sessionmaker)
    assert ticket.listen_notice == "转写失败，已通知前台收听录音"
    assert [who for who, _ in hooks.got] == ["desk1"]


async def test_a_notice_nobody_received_is_retried_and_a_good_message_sends_none(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, "http://127.0.0.1:9")  # nothing listens there
    spool = Spool(tmp_path / "spool")
    spool.add(raw=CORRUPT, msg_id="400-bad")
    spool.add(msg_id="401-good")
    clock = ManualClock(NIGHT)
    transcriber = FakeTranscriber(default_text="三 栋 水管 漏水")
    async with running(db_url, tmp_path, clock, transcriber):
        async def both() -> bool:
            async with sessionmaker() as s:
                return len((await s.scalars(select(Ticket))).all()) == 2
        await until(both)
        for _ in range(3):
            await clock.advance(60)
            await asyncio.sleep(0.05)
        assert await listened(sessionmaker) == []
        async with sessionmaker() as s:
            bad, good = (await s.scalars(select(Ticket).order_by(Ticket.id))).all()
            assert bad.needs_listen and bad.listen_notice.startswith("转写失败，请收听录音")
            assert not good.needs_listen and good.category == "plumbing"
            for user in (await s.scalars(select(StaffUser))).all():
                user.notify = {"webhook": f"{hooks.base}/{user.username}"}
            await s.commit()
        for _ in range(20):  # the next pass (after the retries' backoff, on the clock)
            await clock.advance(60)
            await asyncio.sleep(0.05)
            if await listened(sessionmaker):
                break
        [ticket] = await listened(sessionmaker)
        assert ticket.id == bad.id
    assert [who for who, _ in hooks.got] == ["night1"]


async def test_a_night_message_that_sounds_like_an_emergency_only_through_asr_errors_is_listened_to(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    """The real triage: "冒 出 好 多 言" is "冒 出 好 多 烟" only by sound (言/烟, yan),
    so it is not paged, but night duty is told to listen and the ticket says why."""
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, hooks.base)
    wav = Spool(tmp_path / "spool").add(msg_id="500-unsure")
    transcriber = FakeTranscriber()
    transcriber.say(wav, "楼 上 冒 出 好 多 言 三 栋")
    async with running(db_url, tmp_path, ManualClock(NIGHT), transcriber, triage) as client:
        await until(lambda: _has(listened(sessionmaker)))
        [ticket] = await listened(sessionmaker)
        assert ticket.category == "fire" and ticket.priority == "normal"  # not a page
        assert ticket.needs_listen and ticket.listen_reason == "triage_unsure"
        assert ticket.listen_notice == "需值班人员收听确认，已通知夜班值班人员收听录音"
        assert "需值班人员收听确认：" in ticket.description
        assert "火情" in ticket.description and "识别错误" in ticket.description
        assert [who for who, _ in hooks.got] == ["night1"]
        body = hooks.got[0][1]
        assert "可能是紧急情况" in body["text"] and "类别未知" not in body["text"]
        async with client.get(f"/tickets/{ticket.id}") as r:
            page = await r.text()
        assert "需值班人员收听确认，已通知夜班值班人员收听录音" in page


async def test_a_clear_emergency_at_night_is_not_a_listen_notice(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        hooks: Hooks) -> None:
    await seed_directory(sessionmaker)
    await seed_staff(sessionmaker, hooks.base)
    wav = Spool(tmp_path / "spool").add(msg_id="501-sure")
    transcriber = FakeTranscriber()
    transcriber.say(wav, "电梯 停 了 有 人 在 里面 喊 救命 三 栋")
    async with running(db_url, tmp_path, ManualClock(NIGHT), transcriber, triage):
        async def filed() -> bool:
            async with sessionmaker() as s:
                return bool((await s.scalars(select(Ticket))).all())
        await until(filed)
        async with sessionmaker() as s:
            [ticket] = (await s.scalars(select(Ticket))).all()
    assert ticket.priority == "emergency" and not ticket.needs_listen
    assert hooks.got == []
