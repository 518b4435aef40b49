"""The whole server for the fuzzer, in its own process (its own core, as in production).

    python -m tests.api.serve <database url> <data dir> <port>

``create_app`` on the demo settings with the Asterisk stand-in (the demo's phones)
in the same process, no transcription; the database is migrated and seeded by the
test before. SIGTERM stops both.
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
from callcenter.demo import demo_phones, demo_settings
from callcenter.settings import DatabaseSettings
from callcenter.simulator import AsteriskStandIn


async def serve(db_url: str, data_dir: Path, port: int) -> None:
    settings = replace(demo_settings(data_dir, port), database=DatabaseSettings(url=db_url))
    standin = AsteriskStandIn.from_settings(settings, phones=demo_phones(), prompt_seconds=0.05)
    await standin.start()
    runner = web.AppRunner(create_app(settings, transcribe=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await standin.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))


if __name__ == "__main__":
    main()
