"""The staff directory answers from memory: ringing never waits for the database."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.clock import ManualClock
from callcenter.directory.models import StaffUser
from callcenter.screenpop.staff import StaffDirectory


async def add_agent(sessionmaker: Any, username: str, extension: str) -> None:
    async with sessionmaker() as s:
        s.add(StaffUser(username=username, display_name=username, role="agent",
                        extension=extension, active=True, notify={}, all_communities=True))
        await s.commit()


async def test_an_expired_copy_answers_while_it_is_re_read(sessionmaker: Any) -> None:
    clock = ManualClock()
    staff = StaffDirectory(sessionmaker, clock, ttl_s=30)
    await add_agent(sessionmaker, "xiaoli", "8001")
    assert [e.ref.username for e in await staff.find(["8001"], [])] == ["xiaoli"]

    await add_agent(sessionmaker, "xiaozhao", "8002")
    assert await staff.find(["8002"], []) == []  # within the TTL: the loaded copy
    await clock.advance(31)
    assert await staff.find(["8002"], []) == []  # expired: answered at once, re-read behind
    await staff.close()  # the re-read finishes
    assert [e.ref.username for e in await staff.find(["8002"], [])] == ["xiaozhao"]


async def test_invalidate_makes_the_next_question_wait_for_the_fresh_copy(
        sessionmaker: Any) -> None:
    staff = StaffDirectory(sessionmaker, ManualClock(), ttl_s=30)
    assert await staff.all() == []
    await add_agent(sessionmaker, "xiaoli", "8001")
    staff.invalidate()
    assert [e.ref.username for e in await staff.find(["8001"], [])] == ["xiaoli"]


async def test_a_failed_re_read_keeps_the_old_copy(sessionmaker: Any) -> None:
    clock = ManualClock()
    staff = StaffDirectory(sessionmaker, clock, ttl_s=30)
    await add_agent(sessionmaker, "xiaoli", "8001")
    await staff.all()

    def broken() -> Any:
        raise ConnectionError("database restarting")

    staff._sm = broken  # the database goes away
    await clock.advance(31)
    assert [e.ref.username for e in await staff.find(["8001"], [])] == ["xiaoli"]
    await staff.close()
    await asyncio.sleep(0)
    assert [e.ref.username for e in await staff.find(["8001"], [])] == ["xiaoli"]
