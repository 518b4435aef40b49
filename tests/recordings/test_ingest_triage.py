"""The ingest with the real triage rules (``ticketing.triage``): the transcript decides
category, emergency and the spoken location of the ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import ManualClock
from callcenter.directory.services import lookup_by_number
from recordings.ingest import VoicemailIngest
from tests.recordings.fakes import FakeTranscriber, Spool
from tests.ticketing.directory_data import seed_directory
from ticketing.models import Ticket
from ticketing.services import TicketService

triage_module = pytest.importorskip("ticketing.triage", reason="triage branch not merged yet")

CASES = [
    # transcript, category, emergency, (building, unit, room)
    ("喂 你好 我 是 三 栋 二 单元 一 二 零 一 的 业主 我 家 厨房 水管 爆 了 水 到处 都是 麻烦 赶紧 派 人 过来",
     "plumbing", True, ("3", "2", "1201")),
    ("你好 我 家 马桶 堵 了 冲 不 下去 我 是 七 号 楼 一 单元 五 零 二", "plumbing", False,
     ("7", "1", "502")),
    ("电梯 里 有人 被困 了 就是 十二 栋 的 电梯 快点 来 人 啊", "elevator", True, ("12", None, None)),
]


@pytest.fixture
def db_backend() -> str:
    return "sqlite"


async def test_real_triage_decides_category_priority_and_location(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    seeded = await seed_directory(sessionmaker)
    spool = Spool(tmp_path / "spool")
    transcriber = FakeTranscriber()
    for i, (text, *_rest) in enumerate(CASES):
        wav = spool.add(freq=300 + 40 * i, caller="<13700000009>")
        transcriber.say(wav, text)
    bus = EventBus()
    incidents: list[DomainEvent] = []

    async def on_incident(e: DomainEvent) -> None:
        incidents.append(e)

    bus.subscribe("incident.requested", on_incident)
    clock = ManualClock(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    ingest = VoicemailIngest(sessionmaker, spool.root, tmp_path / "data", transcriber,
                             triage_module.triage, TicketService(sessionmaker, bus, clock),
                             lookup_by_number, clock, default_community_id=seeded.community_id)
    await ingest.scan_and_process()
    await bus.drain()
    async with sessionmaker() as s:
        tickets = (await s.scalars(select(Ticket).order_by(Ticket.id))).all()
    got = [(t.category, t.priority == "emergency", (t.said_building, t.said_unit, t.said_room))
           for t in tickets]
    assert got == [(c, e, loc) for _, c, e, loc in CASES]
    assert tickets[1].room_id == seeded.room_7_1_502  # unknown caller: the room they named
    assert sorted(e.data["ticket_id"] for e in incidents) == [tickets[0].id, tickets[2].id]
