"""Helpers shared by the sub-commands: settings, a database session, asyncio."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.settings import Settings, load_settings

T = TypeVar("T")


def settings_from_args(args: argparse.Namespace) -> Settings:
    path = Path(args.config) if getattr(args, "config", None) else None
    return load_settings(path, must_exist=path is not None)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database for one command: every command creates or upgrades
    the schema on first use, so nobody has to run a separate step."""
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def run_with_db(settings: Settings,
                fn: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with database(settings) as sm:
            return await fn(sm)

    return asyncio.run(go())
