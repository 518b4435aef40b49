"""The newcomer's demo: its own SQLite database, a sample community, the
built-in Asterisk stand-in and the server, on one machine, in one command."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.importer import ImportReport, import_rows
from callcenter.directory.models import Person
from callcenter.directory.sample import DEMO_COMMUNITY, sample_rows
from callcenter.settings import (
    AsteriskSettings,
    FastAgiSettings,
    HttpSettings,
    Secret,
    Settings,
    VoicemailSettings,
)

log = logging.getLogger(__name__)

DEMO_AMI_USER = "callcenter"
DEMO_AMI_SECRET = "demo-secret"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def demo_settings(data_dir: Path, port: int, *, ami_port: int | None = None,
                  fastagi_port: int | None = None) -> Settings:
    data_dir = data_dir.resolve()
    return Settings(
        data_dir=data_dir,
        default_community=DEMO_COMMUNITY,
        http=HttpSettings(host="127.0.0.1", port=port),
        asterisk=(
            AsteriskSettings(
                name="standin", host="127.0.0.1", port=ami_port or free_port(),
                username=DEMO_AMI_USER, secret=Secret(DEMO_AMI_SECRET), ping_interval=5.0,
                trunk="Local/{number}@phones", extension_channel="Local/{extension}@phones",
            ),
        ),
        fastagi=FastAgiSettings(host="127.0.0.1", port=fastagi_port or free_port()),
        voicemail=VoicemailSettings(spool_dir=data_dir / "spool" / "voicemail", scan_interval_s=5.0),
        source="<demo>",
    )


async def seed_directory(sm: async_sessionmaker[AsyncSession]) -> ImportReport | None:
    """Load the sample community once; an existing demo database is kept."""
    async with sm() as s:
        if (await s.scalar(select(func.count()).select_from(Person))) or 0:
            return None
    rows = ((i + 2, row) for i, row in enumerate(sample_rows()))
    return await import_rows(sm, rows)


async def run_demo(data_dir: Path, port: int, *, simulate_calls: bool = True) -> None:
    from callcenter.app import create_app
    from callcenter.appkeys import SESSIONMAKER
    from callcenter.server import serve

    settings = demo_settings(data_dir, port)
    app = create_app(settings)

    async def started(bound: int) -> None:
        report = await seed_directory(app[SESSIONMAKER])
        if report is not None:
            print(f"示例小区「{DEMO_COMMUNITY}」已导入：{report.imported} 位住户", flush=True)
        print(f"\n  物业呼叫中心演示已启动 / demo running:  http://127.0.0.1:{bound}/\n", flush=True)

    await serve(app, settings.http.host, settings.http.port, on_started=started)
