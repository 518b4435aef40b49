"""Voicemail → ticket, end to end on SQLite and PostgreSQL, from a real app_voicemail spool."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from callcenter.logs import CallContextFilter
from callcenter.tickets import default_triage
from recordings.ingest import VoicemailIngest, compact_transcript
from recordings.ivr_hint import IvrHint, encode_hint, parse_hint
from recordings.models import Recording, TranscriptionJob
from recordings.spool import read_message, scan_spool
from tests.conftest import FIXTURES
from tests.recordings.fakes import FakeTranscriber, Spool, simple_triage
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.models import Ticket
from ticketing.services import UNRECOGNISED_SUMMARY, TicketService

SPOOL_FIXTURE = FIXTURES / "asterisk" / "voicemail-spool"
FIXTURE_WAV = SPOOL_FIXTURE / "default" / "8000" / "INBOX" / "msg0000.wav"
LEAK = "喂 你好 我 是 三 栋 二 单元 一 二 零 一 的 业主 我 家 厨房 水管 在 滴水 麻烦 明天 派 人 来 看看"


async def eventually(cond: Callable[[], Awaitable[bool]], *, polls: int = 500) -> None:
    """Wait for background work (real database I/O) to reach a state; no timeouts involved."""
    for _ in range(polls):
        if await cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@dataclass
class World:
    sm: async_sessionmaker[AsyncSession]
    bus: EventBus
    clock: ManualClock
    tickets: TicketService
    transcriber: FakeTranscriber
    spool: Spool
    data_dir: Path
    seeded: Seeded
    events: list[DomainEvent]

    def ingest(self, **kw: object) -> VoicemailIngest:
        return VoicemailIngest(
            self.sm, self.spool.root, self.data_dir, self.transcriber, simple_triage,
            self.tickets, lookup_by_number, self.clock,
            default_community_id=self.seeded.community_id, **kw)  # type: ignore[arg-type]

    async def tickets_in_db(self) -> list[Ticket]:
        async with self.sm() as s:
            return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())

    async def jobs(self) -> list[TranscriptionJob]:
        async with self.sm() as s:
            return list((await s.scalars(select(TranscriptionJob).order_by(TranscriptionJob.id))).all())


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> World:
    root = tmp_path / "spool"
    shutil.copytree(SPOOL_FIXTURE, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    bus = EventBus()
    clock = ManualClock(datetime(2026, 11, 22, 10, 40, tzinfo=UTC))
    events: list[DomainEvent] = []

    async def record(e: DomainEvent) -> None:
        events.append(e)

    bus.subscribe("*", record)
    transcriber = FakeTranscriber(default_text=LEAK)
    return World(sessionmaker, bus, clock, TicketService(sessionmaker, bus, clock), transcriber,
                 Spool(root), tmp_path / "data", await seed_directory(sessionmaker), events)


async def test_real_spool_message_becomes_one_ticket(world: World) -> None:
    report = await world.ingest().scan_and_process()
    await world.bus.drain()
    assert (report.found, report.registered, len(report.jobs)) == (1, 1, 1)

    [ticket] = await world.tickets_in_db()
    assert ticket.number == "BX20261122-0001"
    assert ticket.source == "voicemail" and ticket.state == "new"
    assert ticket.caller_number == "13912345678" and ticket.caller_name == "王小明"
    assert ticket.person_id == world.seeded.wang_id
    assert ticket.room_id == world.seeded.room_3_2_1201
    assert ticket.location == "湖畔花园3栋2单元1201室"
    assert ticket.community_id == world.seeded.community_id
    assert ticket.category == "plumbing" and ticket.priority == "normal"
    assert ticket.department == "engineering"
    assert not ticket.location_conflict
    assert ticket.summary.startswith("【给排水】喂你好我是三栋二单元")
    assert ticket.description == LEAK

    [job] = await world.jobs()
    assert (job.state, job.attempts, job.ticket_id, job.error_id) == ("done", 1, ticket.id, None)
    assert job.transcript == LEAK and len(job.words) == len(LEAK.split())
    async with world.sm() as s:
        rec = await s.get(Recording, ticket.recording_id)
    assert rec is not None
    assert (rec.context, rec.mailbox, rec.msg_id) == ("default", "8000", "1795343499-00000000")
    assert rec.duration_s == 8.0
    assert rec.received_at == datetime.fromtimestamp(1795343499, UTC)
    stored = world.data_dir / "recordings" / rec.stored_path
    assert stored.read_bytes() == FIXTURE_WAV.read_bytes()
    assert rec.sha256 == hashlib.sha256(FIXTURE_WAV.read_bytes()).hexdigest()
    # The transcriber was handed our copy, never Asterisk's spool file.
    assert world.transcriber.calls == [stored]
    assert [e.name for e in world.events] == ["ticket.created"]
    assert world.events[0].data["number"] == ticket.number


async def test_rescan_restart_and_a_copy_elsewhere_never_make_a_second_ticket(world: World) -> None:
    await world.ingest().scan_and_process()
    again = await world.ingest().scan_and_process()  # a rescan by a restarted server
    assert (again.registered, again.known, again.jobs) == (0, 1, [])
    # The same message copied into another mailbox and another folder: same content.
    src = world.spool.root / "default" / "8000" / "INBOX"
    for dest in (world.spool.root / "default" / "8001" / "INBOX",
                 world.spool.root / "default" / "8000" / "Old"):
        dest.mkdir(parents=True)
        shutil.copy(src / "msg0000.wav", dest / "msg0003.wav")
        shutil.copy(src / "msg0000.txt", dest / "msg0003.txt")
    third = await world.ingest().scan_and_process()
    assert (third.found, third.registered, third.duplicates) == (3, 0, 1)
    assert third.known == 2  # Old/ is the same identity as INBOX/
    ing = world.ingest()
    await ing.on_voicemail_left(DomainEvent("voicemail.left", {"mailbox": "8000@default"}))
    assert len(await world.tickets_in_db()) == 1
    assert len(await world.jobs()) == 1
    assert len(world.transcriber.calls) == 1


async def test_a_job_left_running_by_a_crash_is_resumed_on_start(world: World) -> None:
    ing = world.ingest()
    [msg] = scan_spool(world.spool.root)
    assert await ing.register(msg) == "new"
    async with world.sm() as s:  # the crash: job marked running, process gone
        job = (await s.scalars(select(TranscriptionJob))).one()
        job.state, job.attempts = "running", 1
        await s.commit()
    assert await world.ingest().process_queued() == []  # running jobs are not touched live
    claimed_elsewhere = await world.ingest().run_job(job.id)
    assert claimed_elsewhere.state == "running" and world.transcriber.calls == []

    restarted = world.ingest()
    await restarted.start()
    try:
        async def job_done() -> bool:
            return (await world.jobs())[0].state == "done"

        await eventually(job_done)
        jobs = await world.jobs()
        assert jobs[0].state == "done" and jobs[0].attempts == 2
    finally:
        await restarted.stop()
    assert len(await world.tickets_in_db()) == 1


async def test_corrupt_wav_still_makes_a_ticket_that_says_so(world: World) -> None:
    world.spool.add(raw=b"RIFF\x00\x00\x00\x00garbage, not audio", caller="<13800000002>")
    report = await world.ingest().scan_and_process()
    bad = next(j for j in report.jobs if j.error_id)
    assert bad.state == "failed" and bad.error_id == "audio_unreadable"
    assert "not a WAV file" in bad.reason
    async with world.sm() as s:
        ticket = await s.get(Ticket, bad.ticket_id)
        job = (await s.scalars(select(TranscriptionJob).where(
            TranscriptionJob.id == bad.job_id))).one()
    assert ticket is not None
    assert ticket.summary == UNRECOGNISED_SUMMARY
    assert ticket.category == "other" and ticket.source == "voicemail"
    assert ticket.recording_id is not None and ticket.caller_number == "13800000002"
    assert job.reason == bad.reason and job.ticket_id == ticket.id
    assert len(await world.tickets_in_db()) == 2  # the good fixture message too


async def test_silent_and_timed_out_recordings_become_unrecognised_tickets(world: World) -> None:
    shutil.rmtree(world.spool.root / "default")
    world.spool.add(silent=True)
    report = await world.ingest().scan_and_process()
    assert [(j.state, j.error_id) for j in report.jobs] == [("failed", "no_speech")]
    world.spool.add(freq=880)
    world.transcriber.hang = True
    report = await world.ingest(transcribe_timeout_s=0.05).scan_and_process()
    assert [(j.state, j.error_id) for j in report.jobs] == [("failed", "transcription_timeout")]
    tickets = await world.tickets_in_db()
    assert [t.summary for t in tickets] == [UNRECOGNISED_SUMMARY] * 2


async def test_emergency_transcript_requests_an_incident(world: World) -> None:
    shutil.rmtree(world.spool.root / "default")
    wav = world.spool.add(freq=700)
    world.transcriber.say(wav, "三 栋 二 单元 一 二 零 一 厨房 水管 爆了 水 到处 都是")
    await world.ingest().scan_and_process()
    await world.bus.drain()
    assert sorted(e.name for e in world.events) == ["incident.requested", "ticket.created"]
    inc = next(e for e in world.events if e.name == "incident.requested").data
    [ticket] = await world.tickets_in_db()
    assert ticket.priority == "emergency"
    assert inc["ticket_id"] == ticket.id
    assert (inc["community"], inc["building"], inc["unit"], inc["room"]) == ("hupan", "3", "2", "1201")
    assert inc["category"] == "plumbing" and inc["caller"] == "13912345678"
    assert inc["summary"] == ticket.summary


async def test_location_from_record_transcript_and_their_disagreement(world: World) -> None:
    shutil.rmtree(world.spool.root / "default")
    s = world.seeded
    cases = [
        # caller, what they say, expected room, conflict
        ('"王小明" <13912345678>', "我 是 五 栋 一 单元 八 零 一 水管 漏水", s.room_3_2_1201, True),
        ('"李四" <13800000002>', "七 号楼 一 单元 五 零 二 马桶 漏水", s.room_7_1_502, False),
        ('"李四" <13800000002>', "家里 水管 漏水", None, False),
        ('"李四" <13800000002>', "三 栋 二 单元 一 二 零 一 水管 漏水", s.room_3_2_1201, True),
        ('<13700000009>', "五 栋 一 单元 八 零 一 水管 漏水", s.room_5_1_801, False),
        ('<13700000009>', "水管 漏水", None, False),
    ]
    for i, (caller, text, _room, _conflict) in enumerate(cases):
        wav = world.spool.add(freq=300 + 10 * i, caller=caller)
        world.transcriber.say(wav, text)
    await world.ingest().scan_and_process()
    tickets = await world.tickets_in_db()
    got = [(t.room_id, t.location_conflict) for t in tickets]
    assert got == [(room, conflict) for _, _, room, conflict in cases]
    wang_conflict = tickets[0]
    assert (wang_conflict.said_building, wang_conflict.said_unit, wang_conflict.said_room) == (
        "5", "1", "801")
    assert wang_conflict.person_id == s.wang_id
    assert tickets[1].person_id == s.li_id and tickets[2].person_id == s.li_id
    assert tickets[2].location == "" and tickets[2].community_id == s.community_id
    assert tickets[4].person_id is None and tickets[4].community_id == s.community_id
    assert tickets[5].location == ""


async def test_periodic_scan_and_bus_event_pick_up_new_messages(world: World) -> None:
    ing = world.ingest(scan_interval_s=30)
    world.bus.subscribe("voicemail.left", ing.on_voicemail_left)
    await ing.start()
    try:
        async def tickets(n: int) -> bool:
            return len(await world.tickets_in_db()) == n

        await eventually(lambda: tickets(1))  # the scan on start

        async def sleeping() -> bool:
            return world.clock.sleepers == 1

        await eventually(sleeping)  # …then it waits for the interval
        world.spool.add(freq=500)
        await world.bus.publish_and_wait(DomainEvent("voicemail.left", {"mailbox": "8000"}))
        assert len(await world.tickets_in_db()) == 2
        world.spool.add(freq=520)
        await world.clock.advance(29)
        assert await tickets(2) and world.clock.sleepers == 1
        await world.clock.advance(1)
        await eventually(lambda: tickets(3))  # the periodic scan
        await eventually(sleeping)
    finally:
        await ing.stop()


async def test_retention_deletes_old_recording_files_but_keeps_tickets(world: World) -> None:
    ing = world.ingest(retention_days=30)
    await ing.scan_and_process()
    async with world.sm() as s:
        rec = (await s.scalars(select(Recording))).one()
    stored = world.data_dir / "recordings" / rec.stored_path
    assert stored.is_file()
    assert await ing.purge_expired() == 0
    world.clock.set(rec.received_at + timedelta(days=31))
    assert await ing.purge_expired() == 1
    assert not stored.exists()
    async with world.sm() as s:
        rec2 = await s.get(Recording, rec.id)
        assert rec2 is not None and rec2.purged_at == world.clock.now()
        assert (await s.scalar(select(func.count(Ticket.id)))) == 1
    report = await ing.scan_and_process()  # the spool still has it: not ingested again
    assert report.registered == 0 and len(await world.tickets_in_db()) == 1
    assert await ing.purge_expired() == 0


async def test_gives_up_after_max_attempts_with_a_ticket(world: World) -> None:
    ing = world.ingest(max_attempts=2)
    [msg] = scan_spool(world.spool.root)
    await ing.register(msg)
    async with world.sm() as s:
        job = (await s.scalars(select(TranscriptionJob))).one()
        job.attempts = 2  # two earlier runs died mid-job
        await s.commit()
    [result] = await ing.process_queued()
    assert (result.state, result.error_id) == ("failed", "too_many_attempts")
    assert world.transcriber.calls == []
    [ticket] = await world.tickets_in_db()
    assert ticket.summary == UNRECOGNISED_SUMMARY


def test_compact_transcript_joins_chinese_words_only() -> None:
    assert compact_transcript("三 栋  二 单元 room 1201 漏水") == "三栋二单元 room 1201 漏水"


# -- the IVR's hint (VM_CATEGORY) -------------------------------------------

def _hinted_ingest(world: World) -> VoicemailIngest:
    return VoicemailIngest(world.sm, world.spool.root, world.data_dir, world.transcriber,
                           default_triage(), world.tickets, lookup_by_number, world.clock,
                           default_community_id=world.seeded.community_id)


async def test_room_chosen_in_the_menu_and_the_menu_path_make_the_ticket(world: World) -> None:
    shutil.rmtree(world.spool.root / "default")
    s = world.seeded
    # 李四 owns two rooms and chose 7-1-502 in the IVR; the message itself is silent.
    chosen = world.spool.add(caller='"李四" <13800000002>', category=encode_hint(IvrHint(
        call_id="1763800000.7", room_id=s.room_7_1_502, path=("报修", "门窗门禁"))))
    world.transcriber.say(chosen, "")
    # A hint naming a room that is not the caller's is not believed.
    stray = world.spool.add(caller='"王小明" <13912345678>', freq=500, category=encode_hint(
        IvrHint(call_id="1763800000.8", room_id=s.room_7_1_502, path=("报修",))))
    world.transcriber.say(stray, "")
    # A site's own VM_CATEGORY: ignored, nothing breaks.
    foreign = world.spool.add(caller='"李四" <13800000002>', freq=600, category="urgent")
    world.transcriber.say(foreign, "")

    msg = read_message("default", "8000", "INBOX", chosen.with_suffix(".txt"))
    assert parse_hint(msg.category) is not None
    await _hinted_ingest(world).scan_and_process()
    first, second, third = await world.tickets_in_db()

    assert first.room_id == s.room_7_1_502 and first.person_id == s.li_id
    assert first.category == "door_access" and first.department == "engineering"
    assert first.summary == UNRECOGNISED_SUMMARY
    assert first.description == "语音导航：报修 → 门窗门禁"

    assert second.room_id == s.room_3_2_1201  # 王小明's own room, not the stray hint
    assert second.category == "other"

    assert third.room_id is None and third.category == "other"
    assert third.description == ""


async def test_what_was_said_wins_over_the_menu_path(world: World) -> None:
    shutil.rmtree(world.spool.root / "default")
    wav = world.spool.add(caller='"李四" <13800000002>', category=encode_hint(IvrHint(
        call_id="c", room_id=world.seeded.room_7_1_502, path=("报修", "门窗门禁"))))
    world.transcriber.say(wav, "家里 马桶 漏水 了")
    await _hinted_ingest(world).scan_and_process()
    [ticket] = await world.tickets_in_db()
    assert ticket.category == "plumbing"
    assert ticket.description == "家里 马桶 漏水 了\n\n语音导航：报修 → 门窗门禁"


async def test_a_scanned_message_logs_with_the_linkedid_of_the_call_that_left_it(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    shutil.rmtree(world.spool.root / "default")
    hinted = world.spool.add(caller='"李四" <13800000002>', category=encode_hint(IvrHint(
        call_id="1763800000.9", path=("报修",))))
    world.transcriber.say(hinted, "")
    plain = world.spool.add(caller='"李四" <13800000002>', freq=600)
    world.transcriber.say(plain, "")
    caplog.handler.addFilter(CallContextFilter())
    caplog.set_level(logging.INFO, logger="recordings.ingest")
    await world.ingest().scan_and_process()  # the periodic scan: bound to no call
    lines = [(r.getMessage(), r.call) for r in caplog.records  # type: ignore[attr-defined]
             if r.name == "recordings.ingest"]
    ids = {msg.split(" ")[2]: call for msg, call in lines if "→ ticket" in msg}
    assert sorted(ids.values()) == ["", " [linkedid=1763800000.9]"]
    registered = [call for msg, call in lines if "registered as recording" in msg]
    assert sorted(registered) == ["", " [linkedid=1763800000.9]"]
