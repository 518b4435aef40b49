"""One server of a pair, in its own process, against the test's stand-in:

    python -m tests.cluster.serve_node <db url> <data dir> <http port> <ami port> <fastagi port>

Like ``tests.integration.serve_server`` but with its own FastAGI port (the stand-in
sends the IVR to one server only) and "now" fixed at 10:00 Shanghai today (office
hours: the menu leads to the front-desk queue), sleeps real. Prints ``ready``.
With ``CALLCENTER_TEST_CLOCK=system`` "now" is the real time instead (paging's
timers are due by it: a fixed "now" never reaches the next step).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.app import create_app
from callcenter.clock import SystemClock
from callcenter.demo import demo_settings
from callcenter.settings import DatabaseSettings, Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


class OfficeHoursClock(SystemClock):
    def __init__(self) -> None:
        self.when = datetime.now(SHANGHAI).replace(hour=10, minute=0, second=0, microsecond=0)

    def now(self) -> datetime:
        return self.when


def settings_for(db_url: str, data_dir: Path, http_port: int, ami_port: int,
                 fastagi_port: int) -> Settings:
    return replace(demo_settings(data_dir, http_port, ami_port=ami_port,
                                 fastagi_port=fastagi_port),
                   database=DatabaseSettings(url=db_url))


async def serve(settings: Settings) -> None:
    clock = SystemClock() if os.environ.get("CALLCENTER_TEST_CLOCK") == "system" \
        else OfficeHoursClock()
    app = create_app(settings, clock=clock, transcribe=False)
    runner = web.AppRunner(app, access_log=None)
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
    db_url, data_dir, http_port, ami_port, fastagi_port = sys.argv[1:6]
    asyncio.run(serve(settings_for(db_url, Path(data_dir), int(http_port), int(ami_port),
                                   int(fastagi_port))))


if __name__ == "__main__":
    main()
