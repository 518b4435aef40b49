"""Migration 0017: complaints filed before grades existed become 一般 (general), other
tickets stay without a grade, nothing else is touched; its downgrade drops the column
and keeps every ticket and its history (both backends)."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import _alembic_config, current_revisions, migrate
from tests.db.test_staff_communities_migration import old_engine

__all__ = ["old_engine"]


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(sync_conn: Any) -> None:
        command.downgrade(_alembic_config(sync_conn), revision)

    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # a table rebuild must not cascade (see migrate)
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
        async with conn.begin():
            await conn.run_sync(run)


@pytest.mark.revision("0016_ha_leases")
async def test_0017_grades_old_complaints_general_and_downgrades(old_engine: AsyncEngine
                                                                 ) -> None:
    async with old_engine.begin() as conn:
        for number, category in (("T1", "complaint"), ("T2", "plumbing")):
            await conn.execute(text(
                "INSERT INTO tickets (number, source, caller_number, caller_name, location, "
                "location_conflict, category, priority, department, state, summary, "
                "description, created_by, created_at, updated_at) VALUES (:n, 'phone', '', "
                "'', '', false, :c, 'normal', '', 'new', 's', '', 'x', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"), {"n": number, "c": category})
        await conn.execute(text(
            "INSERT INTO ticket_events (ticket_id, from_state, to_state, actor, at, note) "
            "SELECT id, NULL, 'new', 'x', CURRENT_TIMESTAMP, '' FROM tickets"))
    await migrate(old_engine)
    async with old_engine.connect() as conn:
        grades = dict((await conn.execute(text(
            "SELECT number, complaint_grade FROM tickets"))).all())
        assert grades == {"T1": "general", "T2": None}
    await _downgrade(old_engine, "0016_ha_leases")
    revisions = await current_revisions(old_engine)  # the other branches' heads stay
    assert "0016_ha_leases" in revisions and "0017_complaint_grades" not in revisions
    async with old_engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("tickets")})
        assert "complaint_grade" not in columns and "category" in columns
        assert (await conn.execute(text("SELECT count(*) FROM tickets"))).scalar() == 2
        assert (await conn.execute(text("SELECT count(*) FROM ticket_events"))).scalar() == 2
