"""An Asterisk that writes no ``msg_id`` (before 11): a message renumbered or moved
to Old/ is still the same message and never makes a second ticket, while two
messages left in the same second by different callers are two tickets."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from recordings.ingest import VoicemailIngest
from recordings.models import Recording
from recordings.spool import scan_spool
from tests.recordings.fakes import FakeTranscriber, simple_triage, write_txt, write_wav
from tests.ticketing.directory_data import seed_directory
from ticketing.models import Ticket
from ticketing.services import TicketService

ORIGTIME = 1795343499


def old_asterisk_message(folder: Path, msgnum: int, *, caller: str = '"王小明" <13912345678>',
                         freq: float = 440.0, duration: int = 8) -> None:
    """A message as Asterisk 1.8/10 writes it: no ``msg_id=`` line."""
    write_wav(folder / f"msg{msgnum:04d}.wav", freq=freq)
    txt = write_txt(folder / f"msg{msgnum:04d}.txt", caller=caller, origtime=ORIGTIME,
                    duration=duration)
    txt.write_text(re.sub(r"(?m)^msg_id=.*\n", "", txt.read_text(encoding="utf-8")),
                   encoding="utf-8")


def renumber(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".wav", ".txt"):
        src.with_suffix(suffix).rename(dest.with_suffix(suffix))


@pytest.fixture
async def ingest(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> VoicemailIngest:
    clock = ManualClock(datetime(2026, 11, 22, 10, 40, tzinfo=UTC))
    seeded = await seed_directory(sessionmaker)
    return VoicemailIngest(
        sessionmaker, tmp_path / "spool", tmp_path / "data", FakeTranscriber("水管 漏水"),
        simple_triage, TicketService(sessionmaker, EventBus(), clock), lookup_by_number, clock,
        default_community_id=seeded.community_id)


async def tickets(sm: async_sessionmaker[AsyncSession]) -> list[Ticket]:
    async with sm() as s:
        return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())


async def test_a_renumbered_message_without_msg_id_never_makes_a_second_ticket(
        ingest: VoicemailIngest, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    box = ingest.spool_dir / "default" / "8000"
    inbox = box / "INBOX"
    old_asterisk_message(inbox, 0, caller="<13800000002>", freq=300)
    old_asterisk_message(inbox, 1)
    first = await ingest.scan_and_process()
    assert (first.registered, len(await tickets(sessionmaker))) == (2, 2)

    # msg0000 is deleted: app_voicemail resequences, msg0001 becomes msg0000 …
    for suffix in (".wav", ".txt"):
        (inbox / f"msg0000{suffix}").unlink()
    renumber(inbox / "msg0001.wav", inbox / "msg0000.wav")
    again = await ingest.scan_and_process()
    assert (again.found, again.registered, again.known, again.duplicates) == (1, 0, 1, 0)
    # … then it is listened to and moved to Old/ under yet another number.
    renumber(inbox / "msg0000.wav", box / "Old" / "msg0003.wav")
    moved = await ingest.scan_and_process()
    assert (moved.found, moved.registered, moved.known) == (1, 0, 1)
    assert len(await tickets(sessionmaker)) == 2
    async with sessionmaker() as s:
        ids = (await s.scalars(select(Recording.msg_id))).all()
    assert len(ids) == 2 and all(re.fullmatch(rf"{ORIGTIME}-[0-9a-f]{{16}}", i) for i in ids)


async def test_messages_left_in_the_same_second_by_two_callers_are_two_tickets(
        ingest: VoicemailIngest, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    inbox = ingest.spool_dir / "default" / "8000" / "INBOX"
    old_asterisk_message(inbox, 0, caller="<13800000002>")
    old_asterisk_message(inbox, 1, caller="<13800000003>")  # the very same audio bytes
    report = await ingest.scan_and_process()
    assert (report.registered, report.duplicates) == (2, 0)
    assert sorted(t.caller_number for t in await tickets(sessionmaker)) == [
        "13800000002", "13800000003"]


async def test_a_message_registered_under_the_old_number_based_id_is_known(
        ingest: VoicemailIngest, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """After upgrading: the server made ``<origtime>-<msgnum>`` ids for such messages."""
    inbox = ingest.spool_dir / "default" / "8000" / "INBOX"
    old_asterisk_message(inbox, 4)
    [msg] = scan_spool(ingest.spool_dir)
    assert await ingest.register(dataclasses.replace(msg, msg_id=f"{ORIGTIME}-0004")) == "new"
    await ingest.process_queued()
    renumber(inbox / "msg0004.wav", inbox / "msg0002.wav")  # and renumbered since
    report = await ingest.scan_and_process()
    assert (report.registered, report.known) == (0, 1)
    assert len(await tickets(sessionmaker)) == 1
    # A different message (other audio) at the same second still goes in.
    old_asterisk_message(inbox, 5, caller="<13800000002>", freq=880)
    assert (await ingest.scan_and_process()).registered == 1
    assert len(await tickets(sessionmaker)) == 2
