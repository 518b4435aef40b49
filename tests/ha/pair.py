"""Two real server processes on one PostgreSQL and one AsyncAGI stand-in, for the HA
tests and ``bench/failover.py``: which AMI session sent each AGI command, kill -9,
where each call went."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from callcenter.cluster.setup import listen_dsn
from callcenter.demo import free_port
from callcenter.simulator import AsteriskStandIn
from callcenter.simulator.ami_server import AmiSession

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AgiSpy:
    """Every ``AGI`` action the stand-in got: (monotonic time, AMI session, channel,
    command). Wraps the stand-in's handler; ``restore()`` puts it back."""

    sent: list[tuple[float, str, str, str]] = field(default_factory=list)
    _orig: Any = None

    def install(self) -> AgiSpy:
        self._orig = AmiSession.act_agi
        spy = self

        def act_agi(session: AmiSession, f: Any, aid: str | None) -> None:
            spy.sent.append((time.monotonic(), session.session_id, f.get("Channel") or "",
                             f.get("Command") or ""))
            spy._orig(session, f, aid)

        AmiSession.act_agi = act_agi  # type: ignore[method-assign]
        return self

    def restore(self) -> None:
        if self._orig is not None:
            AmiSession.act_agi = self._orig  # type: ignore[method-assign]

    def sessions_of(self, channel: str, before: float | None = None) -> set[str]:
        return {s for t, s, c, _ in self.sent if c == channel and (before is None or t < before)}

    def duplicates(self) -> int:
        """Commands one channel got from two sessions at once: the same command, from
        another session, while the first session was still driving (within 1 s)."""
        dup = 0
        last: dict[str, tuple[float, str, str]] = {}
        for t, s, c, cmd in self.sent:
            prev = last.get(c)
            if prev is not None and prev[1] != s and prev[2] == cmd and t - prev[0] < 1.0:
                dup += 1
            last[c] = (t, s, cmd)
        return dup


@dataclass
class OriginateSpy:
    """Every ``Originate`` the stand-in got: (monotonic time, AMI session, channel,
    the ``CC_PAGE_ATTEMPT`` variable)."""

    sent: list[tuple[float, str, str, str]] = field(default_factory=list)
    _orig: Any = None

    def install(self) -> OriginateSpy:
        self._orig = AmiSession.act_originate
        spy = self

        def act_originate(session: AmiSession, f: Any, aid: str | None) -> None:
            attempt = next((v.split("=", 1)[1] for k, v in f.headers
                            if k.lower() == "variable" and v.startswith("CC_PAGE_ATTEMPT=")), "")
            spy.sent.append((time.monotonic(), session.session_id, f.get("Channel") or "",
                             attempt))
            spy._orig(session, f, aid)

        AmiSession.act_originate = act_originate  # type: ignore[method-assign]
        return self

    def restore(self) -> None:
        if self._orig is not None:
            AmiSession.act_originate = self._orig  # type: ignore[method-assign]


class Node:
    """``python -m tests.cluster.serve_node`` in its own process."""

    def __init__(self, name: str, db_url: str, data_dir: Path, ami_port: int, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.args = ["-m", "tests.cluster.serve_node", db_url, str(data_dir), str(self.port),
                     str(ami_port), str(free_port())]
        self.log = log
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, "CALLCENTER_SERVER_ID": self.name, **self.env}
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                stderr=err)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line.strip() == b"ready", self.log.read_text()

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def lease_holder(db_url: str, link: str) -> tuple[str | None, int]:
    """(live holder or None, epoch) of a link's lease, read straight from PostgreSQL."""
    conn = await asyncpg.connect(listen_dsn(db_url))
    try:
        row = await conn.fetchrow("SELECT holder, epoch, expires_at >= now() AS live "
                                  "FROM ha_leases WHERE link = $1", link)
    finally:
        await conn.close()
    if row is None:
        return None, 0
    return (row["holder"] if row["live"] else None), int(row["epoch"])


async def until(pred: Callable[[], Any], within_s: float, what: str | Callable[[], str],
                step_s: float = 0.02) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = pred()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(what if isinstance(what, str) else what())
        await asyncio.sleep(step_s)


def reached(standin: AsteriskStandIn, channel: str) -> str | None:
    """Where a call got to: "queue" (joined a queue), "voicemail", else None."""
    for e in list(standin.events):
        d = dict(e)
        if d.get("Channel") != channel:
            continue
        if d.get("Event") == "QueueCallerJoin":
            return "queue"
        if d.get("Application") == "VoiceMail" or d.get("AppData", "").startswith("voicemail"):
            return "voicemail"
    return None
