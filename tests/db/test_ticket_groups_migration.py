"""Migration 0018: every ticket filed before group incidents is in none, the new tables
take an incident (one open per key), and the downgrade drops them and ``group_id``
while keeping every ticket and its history (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import current_revisions, migrate
from tests.db.test_complaint_grades_migration import _downgrade
from tests.db.test_staff_communities_migration import old_engine

__all__ = ["old_engine"]


@pytest.mark.revision("0017_complaint_grades")
async def test_0018_adds_groups_old_tickets_in_none_and_downgrades(old_engine: AsyncEngine
                                                                   ) -> None:
    async with old_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO communities (code, name, timezone, hotline_numbers) "
            "VALUES ('hupan', '湖畔花园', 'Asia/Shanghai', '[]')"))
        for number in ("T1", "T2"):
            await conn.execute(text(
                "INSERT INTO tickets (number, source, caller_number, caller_name, location, "
                "location_conflict, category, priority, department, state, summary, "
                "description, created_by, created_at, updated_at) VALUES (:n, 'phone', '', "
                "'', '', false, 'plumbing', 'normal', '', 'new', 's', '', 'x', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"n": number})
        await conn.execute(text(
            "INSERT INTO ticket_events (ticket_id, from_state, to_state, actor, at, note) "
            "SELECT id, NULL, 'new', 'x', CURRENT_TIMESTAMP, '' FROM tickets"))
    await migrate(old_engine)
    async with old_engine.connect() as conn:
        groups = dict((await conn.execute(text("SELECT number, group_id FROM tickets"))).all())
        assert groups == {"T1": None, "T2": None}
    insert = text(
        "INSERT INTO ticket_groups (community_id, building, category, state, open_key, "
        "opened_at, closed_by, resolution) SELECT id, '3', 'plumbing', 'open', :key, "
        "CURRENT_TIMESTAMP, '', '' FROM communities")
    async with old_engine.begin() as conn:
        await conn.execute(insert, {"key": "1:3:plumbing"})
        await conn.execute(text("UPDATE tickets SET group_id = "
                                "(SELECT id FROM ticket_groups)"))
    with pytest.raises(IntegrityError):  # one open incident per (community, building, category)
        async with old_engine.begin() as conn:
            await conn.execute(insert, {"key": "1:3:plumbing"})
    async with old_engine.begin() as conn:  # closed ones (open_key NULL) do not collide
        for _ in range(2):
            await conn.execute(insert, {"key": None})
    await _downgrade(old_engine, "0017_complaint_grades")
    revisions = await current_revisions(old_engine)
    assert "0017_complaint_grades" in revisions and "0018_ticket_groups" not in revisions
    async with old_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("tickets")})
        assert "ticket_groups" not in tables and "ticket_group_events" not in tables
        assert "group_id" not in columns and "complaint_grade" in columns
        assert (await conn.execute(text("SELECT count(*) FROM tickets"))).scalar() == 2
        assert (await conn.execute(text("SELECT count(*) FROM ticket_events"))).scalar() == 2
