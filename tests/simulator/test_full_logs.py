"""The stand-in against the complete capture streams (full/*.log).

These keep the chatty events a client really has to digest (VarSet,
Newexten, NewCallerid, AGIExecStart/End, DTMF, LocalBridge...). The stand-in
emits all of them in Asterisk's order except DeviceStateChange and
QueueMemberStatus (device state is not modelled), RTCP and talk detection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator import AsteriskStandIn, ScaledClock
from tests.simulator.amiclient import MiniAmi
from tests.simulator.replay import FIXTURES, Replay

NOT_MODELLED = frozenset({"DeviceStateChange", "QueueMemberStatus", "RTCPSent", "RTCPReceived",
                          "ChannelTalkingStart", "ChannelTalkingStop"})
FASTAGI_COMMANDS = [b"ANSWER", b"GET VARIABLE CALLERID(name)", b'STREAM FILE hello-world ""',
                    b"GET DATA beep 6000 1", b'SAY DIGITS 42 ""', b'VERBOSE "fastagi done" 1', b"HANGUP"]


async def fastagi_ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """03_fastagi_session.txt's server side, as fast as the stand-in answers."""
    while (await asyncio.wait_for(reader.readline(), 5)).strip():
        pass
    for command in FASTAGI_COMMANDS:
        writer.write(command + b"\n")
        await asyncio.wait_for(reader.readline(), 5)
    assert await asyncio.wait_for(reader.readline(), 5) == b"HANGUP\n"
    writer.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[AsteriskStandIn, MiniAmi, dict[str, str]]]:
    server = await asyncio.start_server(fastagi_ivr, "127.0.0.1", 0)
    url = f"agi://127.0.0.1:{server.sockets[0].getsockname()[1]}/ivr"
    s = AsteriskStandIn(spool_dir=tmp_path / "vm", clock=ScaledClock(25.0), record_root=tmp_path / "rec",
                        fastagi_url=url)
    s.add_member("frontdesk", "Local/1001@agents/n", "Agent 1001")
    s.pbx.queues["frontdesk"].members["Local/1001@agents/n"].state_interface = "Local/1001@agents"
    await s.start()
    c = await MiniAmi.connect(s.ami_port)
    await c.login()
    await c.wait_event("SuccessfulAuth")
    names = {"agi://127.0.0.1:4573/ivr": url,
             "/srv/pbx/var/spool/asterisk/voicemail": str(tmp_path / "vm")}
    yield s, c, names
    await c.close()
    await s.stop()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("capture", ["02_asyncagi_hotline.log", "03_fastagi_ami.log", "04_voicemail.log",
                                     "05_queue.log"])
async def test_full_stream_matches(rig: tuple[AsteriskStandIn, MiniAmi, dict[str, str]], capture: str) -> None:
    _, client, names = rig
    replay = Replay(client, skip=NOT_MODELLED, names=names)
    pairs = await replay.run(FIXTURES / "full" / capture)
    assert len(pairs) >= 40
    assert not replay.differences
