"""The demo's community in a test database: what every end-to-end test starts from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.heartbeat import FAMILY, KEY
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.demo import seed_directory, seed_staff
from callcenter.simulator import AsteriskStandIn


@asynccontextmanager
async def demo_db(db_url: str, day: date) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Migrate the database at ``db_url`` and seed the demo's directory and staff (the
    duty rotation starting on ``day``); yields a sessionmaker for reading more before
    the server starts, and disposes of its engine after."""
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        await seed_directory(sm)
        await seed_staff(sm, day)
        yield sm
    finally:
        await engine.dispose()


async def seed_demo_db(db_url: str, day: date) -> None:
    """``demo_db`` when nothing more is read."""
    async with demo_db(db_url, day):
        pass


async def heartbeat_seen(standin: AsteriskStandIn, within_s: float = 5.0) -> None:
    """Wait until the server's heartbeat is in the stand-in's AstDB: before it, the
    printed hotline (``from_settings``) sends a caller to the fallback, not the IVR."""
    deadline = asyncio.get_running_loop().time() + within_s
    while standin.astdb.get(FAMILY, KEY) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the server never wrote its heartbeat into the stand-in's AstDB")
        await asyncio.sleep(0.02)
