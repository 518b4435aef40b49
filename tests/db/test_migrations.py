"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.db.engine import MIGRATIONS_DIR, current_revisions, migrate
from callcenter.db.models import all_metadata


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, all_metadata()))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ: {differences}"


async def test_migrate_twice_is_a_no_op(engine: AsyncEngine) -> None:
    before = await current_revisions(engine)
    await migrate(engine)
    assert await current_revisions(engine) == before
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    assert before == set(scripts.get_heads())
