"""One server of a pair, in its own process, against the test's stand-in:

    python -m tests.cluster.serve_node <db url> <data dir> <http port> <ami port> <fastagi port>

Like ``tests.integration.serve_server`` but with its own FastAGI port (the stand-in
sends the IVR to one server only) and "now" fixed at 10:00 Shanghai today, or on the
next working day on a weekend or holiday (office hours: the menu leads to the
front-desk queue), sleeps real. Prints ``ready``.
With ``CALLCENTER_TEST_CLOCK=system`` "now" is the real time instead (paging's
timers are due by it: a fixed "now" never reaches the next step), and with
``CALLCENTER_TEST_CLOCK_OFFSET_S`` the real time shifted by that many seconds (the
same shift on both servers and in the test: office hours whose time runs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.app import create_app
from callcenter.clock import SystemClock
from callcenter.demo import demo_settings
from callcenter.settings import DatabaseSettings, Settings
from ivr.holidays import HolidayCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def office_morning() -> datetime:
    """10:00 Shanghai on today's date, or on the next working day when today is a
    weekend or a public holiday (the menus then lead to the night or holiday
    branch, not the front desk: a run on a Saturday must not fail for it)."""
    calendar = HolidayCalendar()
    day = datetime.now(SHANGHAI).date()
    while not calendar.day(day).workday:
        day += timedelta(days=1)
    return datetime.combine(day, time(10), SHANGHAI)


class OfficeHoursClock(SystemClock):
    def __init__(self) -> None:
        self.when = office_morning()

    def now(self) -> datetime:
        return self.when


class ShiftedClock(SystemClock):
    """The real time shifted by ``offset_s`` (it runs, unlike ``OfficeHoursClock``)."""

    def __init__(self, offset_s: float) -> None:
        self.offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return super().now() + self.offset


def office_hours_offset_s() -> float:
    """The shift that makes now 10:00 in Shanghai on a working day (``office_morning``)."""
    return (office_morning() - datetime.now(SHANGHAI)).total_seconds()


def settings_for(db_url: str, data_dir: Path, http_port: int, ami_port: int,
                 fastagi_port: int) -> Settings:
    return replace(demo_settings(data_dir, http_port, ami_port=ami_port,
                                 fastagi_port=fastagi_port),
                   database=DatabaseSettings(url=db_url))


async def serve(settings: Settings) -> None:
    offset = os.environ.get("CALLCENTER_TEST_CLOCK_OFFSET_S")
    clock: SystemClock
    if offset is not None:
        clock = ShiftedClock(float(offset))
    elif os.environ.get("CALLCENTER_TEST_CLOCK") == "system":
        clock = SystemClock()
    else:
        clock = OfficeHoursClock()
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
    settings = settings_for(db_url, Path(data_dir), int(http_port), int(ami_port),
                            int(fastagi_port))
    short = os.environ.get("CALLCENTER_TEST_OUTBOUND_SHORT_CALLS")
    if short:  # a campaign test's calls: short rings, short scripts (ring_s,max_call_s)
        ring, call = (float(v) for v in short.split(","))
        settings = replace(settings, outbound=replace(settings.outbound, ring_s=ring,
                                                      max_call_s=call, pace_s=0.0))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
