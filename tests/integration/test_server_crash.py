"""Issue 12, defect 3: the server killed (``kill -9``) while a caller is in the
AsyncAGI menu. A real server process against the stand-in in the test's process:
the caller stays in ``AGI(agi:async)`` as Asterisk keeps them; the next server
adopts the channel from its resync and the caller hears the menu again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.heartbeat import FAMILY, KEY
from callcenter.demo import free_port
from callcenter.simulator import AsteriskStandIn, Caller, Wait
from tests.integration.demo_db import seed_demo_db
from tests.integration.serve_server import settings_for

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(self, db_url: str, data_dir: Path, ami_port: int, log: Path) -> None:
        self.args = ["-m", "tests.integration.serve_server", db_url, str(data_dir),
                     str(free_port()), str(ami_port)]
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line.strip() == b"ready", self.log.read_text()

    async def kill(self) -> None:
        """``kill -9``: no cleanup runs, the heartbeat stays in AstDB."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[AsteriskStandIn, ServerProcess]]:
    ami_port = free_port()
    settings = settings_for(db_url, tmp_path / "data", 0, ami_port)
    await seed_demo_db(db_url, datetime.now(UTC).date())
    standin = AsteriskStandIn.from_settings(settings, ivr_transport="asyncagi", prompt_seconds=0.05)
    await standin.start()
    server = ServerProcess(db_url, tmp_path / "data", ami_port, tmp_path / "server.log")
    try:
        yield standin, server
    finally:
        await server.stop()
        await standin.stop()


def _commands(standin: AsteriskStandIn, channel: str) -> list[str]:
    """The AGI commands the stand-in ran on ``channel`` so far, in order."""
    return [dict(e)["Command"] for e in list(standin.events)
            if dict(e).get("Event") == "AGIExecStart" and dict(e).get("Channel") == channel]


async def _until(pred: Callable[[], object], within_s: float,
                 what: str | Callable[[], str]) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(what if isinstance(what, str) else what())
        await asyncio.sleep(0.02)


def _menu_prompts(commands: list[str]) -> list[str]:
    """The top menu's prompts among them (main-office, main-night, ... by the hour)."""
    return [c.split()[2] for c in commands if c.upper().startswith(("STREAM FILE", "GET DATA"))
            and c.split()[2].rsplit("/", 1)[-1].startswith("main-")]


async def _caller_in_the_menu(standin: AsteriskStandIn, server: ServerProcess) -> Any:
    """Start the server; once its heartbeat is in AstDB, an owner calls and hears the
    top menu. Returns the stand-in's call."""
    await server.start()
    await _until(lambda: standin.astdb.get(FAMILY, KEY) is not None, 20, "no heartbeat")
    call = standin.place_call(Caller(number="13812345678", name="王建国",
                                     context=standin.pbx.hotline_context, did="4008001234",
                                     script=[Wait(600)]))
    channel = call.app.name
    await _until(lambda: _menu_prompts(_commands(standin, channel)), 20,
                 lambda: f"the first server never played the menu: {_commands(standin, channel)}")
    return call


async def test_a_server_killed_during_the_menu_is_replaced_and_the_caller_hears_the_menu_again(
        world: tuple[AsteriskStandIn, ServerProcess]) -> None:
    standin, server = world
    call = await _caller_in_the_menu(standin, server)
    channel = call.app.name
    assert 'SET VARIABLE TIMEOUT(absolute) "0"' in _commands(standin, channel)
    await server.kill()
    before = len(_commands(standin, channel))
    await asyncio.sleep(0.5)
    assert not call.app.dead and call.agi is not None and call.agi.running  # still in AGI(agi:async)
    quiet = len(_commands(standin, channel))
    assert quiet <= before + 1  # at most the command in flight ran: nobody drives it now
    await server.start()
    await _until(lambda: _menu_prompts(_commands(standin, channel)[quiet:]), 30,
                 "the new server never adopted the waiting caller")
    again = _commands(standin, channel)[quiet:]
    assert again[0] == "GET VARIABLE CC_DID"  # adopted: its environment rebuilt from the PBX
    assert _menu_prompts(again)[0] == _menu_prompts(_commands(standin, channel))[0]
    assert not call.app.dead
    assert standin.pbx.hotline_guard is not None and standin.pbx.hotline_guard.fallbacks == []


async def test_a_call_just_after_the_server_died_reaches_the_message_box_within_the_bound(
        world: tuple[AsteriskStandIn, ServerProcess]) -> None:
    """Killed a moment ago: the heartbeat is still fresh, so the printed hotline runs
    AGI(agi:async) and nobody takes the call. Within agi_wait_s (15 s at the default
    5 s heartbeat) TIMEOUT(absolute) sends it to the fallback: the repair mailbox."""
    from callcenter.ami.heartbeat import agi_wait_s

    standin, server = world
    await server.start()
    await _until(lambda: standin.astdb.get(FAMILY, KEY) is not None, 20, "no heartbeat")
    await server.kill()
    started = asyncio.get_running_loop().time()
    call = standin.place_call(Caller(number="13812345678", name="王建国",
                                     context=standin.pbx.hotline_context, did="4008001234",
                                     script=[Wait(60)]))
    guard = standin.pbx.hotline_guard
    assert guard is not None
    bound = agi_wait_s(5.0)
    await _until(lambda: call.app.uniqueid in guard.fallbacks, bound + 5,
                 f"the caller waited in AGI(agi:async) longer than {bound} s")
    waited = asyncio.get_running_loop().time() - started
    assert bound - 1 <= waited <= bound + 2
    names = [dict(e).get("Event") for e in standin.events if dict(e).get("Channel") == call.app.name]
    assert "AsyncAGIStart" in names and "AsyncAGIEnd" in names  # it was in AGI, then the fallback
    await _until(lambda: any(dict(e).get("Application") == "VoiceMail" for e in standin.events
                             if dict(e).get("Channel") == call.app.name), 5, "no voicemail")


async def test_a_server_stopped_gracefully_leaves_the_menu_caller_for_the_next_one(
        world: tuple[AsteriskStandIn, ServerProcess]) -> None:
    """SIGTERM (systemctl restart) while a caller hears the menu: the server does not
    hand the call back with ASYNCAGI BREAK (the hotline would hang up) but re-arms
    TIMEOUT(absolute) and leaves it waiting; the next server adopts it."""
    standin, server = world
    call = await _caller_in_the_menu(standin, server)
    channel = call.app.name
    await server.stop()
    assert standin.astdb.get(FAMILY, KEY) is None  # new calls go to the fallback at once
    await _until(lambda: call.app.hangup_at is not None, 10, "the timeout was not re-armed")
    quiet = len(_commands(standin, channel))
    assert "ASYNCAGI BREAK" not in _commands(standin, channel)
    assert not call.app.dead and call.agi is not None and call.agi.running
    await server.start()
    await _until(lambda: _menu_prompts(_commands(standin, channel)[quiet:]), 30,
                 "the new server never adopted the waiting caller")
    assert _commands(standin, channel)[quiet] == "GET VARIABLE CC_DID"
    assert call.app.hangup_at is None  # lifted again by the server that took it
    assert standin.pbx.hotline_guard is not None and standin.pbx.hotline_guard.fallbacks == []
