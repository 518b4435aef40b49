"""Migration 0019: the callbacks table, whose partial unique index lets one *open*
entry exist per (community, number, day) while done ones pile up; its downgrade drops
the table and touches nothing else (both backends)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import current_revisions, migrate
from tests.db.test_complaint_grades_migration import _downgrade
from tests.db.test_staff_communities_migration import old_engine

__all__ = ["old_engine"]

INSERT = text(
    "INSERT INTO callbacks (community, number, day, state, missed_count, first_missed_at, "
    "last_missed_at, missed, dialled, done_by, note, updated_at) VALUES ('hupan', "
    "'+8613812345678', :day, :state, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '[]', '[]', '', "
    "'', CURRENT_TIMESTAMP)")


@pytest.mark.revision("0018_ticket_groups")
async def test_0019_one_open_entry_per_number_and_day_and_downgrades(old_engine: AsyncEngine
                                                                     ) -> None:
    async with old_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO communities (code, name, timezone, hotline_numbers) "
            "VALUES ('hupan', '湖畔花园', 'Asia/Shanghai', '[]')"))
    await migrate(old_engine)
    async with old_engine.begin() as conn:
        for state in ("done", "done", "open"):  # done ones of the day, and one open
            await conn.execute(INSERT, {"day": date(2026, 12, 3), "state": state})
        await conn.execute(INSERT, {"day": date(2026, 12, 4), "state": "open"})  # the next day
    with pytest.raises(IntegrityError):
        async with old_engine.begin() as conn:
            await conn.execute(INSERT, {"day": date(2026, 12, 3), "state": "open"})
    async with old_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM callbacks"))).scalar() == 4
    await _downgrade(old_engine, "0018_ticket_groups")
    revisions = await current_revisions(old_engine)
    assert "0018_ticket_groups" in revisions and "0019_callback_worklist" not in revisions
    async with old_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "callbacks" not in tables and "call_logs" in tables
        assert (await conn.execute(text("SELECT count(*) FROM communities"))).scalar() == 1
