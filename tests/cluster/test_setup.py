"""Which databases get the bus between servers: PostgreSQL only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_app
from callcenter.cluster.setup import PG_BUS, listen_dsn
from callcenter.demo import demo_settings
from callcenter.settings import DatabaseSettings


def test_the_listen_dsn_is_asyncpg_s_form_of_a_postgresql_url_and_none_for_sqlite() -> None:
    assert listen_dsn("postgresql://postgres@127.0.0.1:5432/cc") == \
        "postgresql://postgres@127.0.0.1:5432/cc"
    assert listen_dsn("postgresql+asyncpg://u:p@db/cc") == "postgresql://u:p@db/cc"
    assert listen_dsn("sqlite:///var/cc.sqlite3") is None


async def test_a_server_starts_the_bus_on_postgresql_and_not_on_sqlite(
        db_url: str, db_backend: str, tmp_path: Path) -> None:
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url))
    client = TestClient(TestServer(create_app(settings, transcribe=False)))
    await client.start_server()
    try:
        bus = client.app.get(PG_BUS)
        if db_backend == "sqlite":
            assert bus is None
        else:
            assert bus is not None
            await bus.connected.wait()
    finally:
        await client.close()
