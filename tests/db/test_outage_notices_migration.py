"""Migration 0021: the outage_notices table on a database at 0020 that already holds a
community; a notice's defaults (not for every caller, no end by hand) come from the
server, and the downgrade drops the table and touches nothing else (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import current_revisions, migrate
from tests.db.test_complaint_grades_migration import _downgrade
from tests.db.test_staff_communities_migration import old_engine

__all__ = ["old_engine"]


@pytest.mark.revision("0020_outbound")
async def test_0021_adds_the_notices_and_downgrades(old_engine: AsyncEngine) -> None:
    async with old_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO communities (code, name, timezone, hotline_numbers) "
            "VALUES ('hupan', '湖畔花园', 'Asia/Shanghai', '[]')"))
    await migrate(old_engine)
    async with old_engine.begin() as conn:
        cid = (await conn.execute(text("SELECT id FROM communities"))).scalar()
        await conn.execute(text(
            "INSERT INTO outage_notices (community_id, kind, text, starts_at, ends_at, prompt, "
            "created_at, created_by) VALUES (:cid, 'water', '3栋停水', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP, 'outage-generic', CURRENT_TIMESTAMP, 'boss')"), {"cid": cid})
        row = (await conn.execute(text(
            "SELECT building, all_callers, ended_at, ended_by FROM outage_notices"))).one()
    assert (row[0], bool(row[1]), row[2], row[3]) == ("", False, None, "")
    await _downgrade(old_engine, "0020_outbound")
    revisions = await current_revisions(old_engine)
    assert "0020_outbound" in revisions and "0021_outage_notices" not in revisions
    async with old_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "outage_notices" not in tables and "callbacks" in tables
        assert (await conn.execute(text("SELECT count(*) FROM communities"))).scalar() == 1
