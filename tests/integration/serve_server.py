"""The whole server in its own process, against an Asterisk the test runs:

    python -m tests.integration.serve_server <database url> <data dir> <http port> <ami port>

``create_app`` on the demo settings (no transcription) with its AMI link to the
given port, where the test's stand-in listens; the database is migrated and seeded
by the test before. Prints ``ready`` once the HTTP site listens. SIGTERM stops it;
the crash tests ``kill -9`` it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from callcenter.app import create_app
from callcenter.demo import demo_settings
from callcenter.settings import DatabaseSettings, Settings


def settings_for(db_url: str, data_dir: Path, http_port: int, ami_port: int) -> Settings:
    """The settings this process runs with (the test builds its stand-in from them)."""
    return replace(demo_settings(data_dir, http_port, ami_port=ami_port),
                   database=DatabaseSettings(url=db_url))


async def serve(settings: Settings) -> None:
    runner = web.AppRunner(create_app(settings, transcribe=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http.host, settings.http.port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    db_url, data_dir, http_port, ami_port = sys.argv[1:5]
    asyncio.run(serve(settings_for(db_url, Path(data_dir), int(http_port), int(ami_port))))


if __name__ == "__main__":
    main()
