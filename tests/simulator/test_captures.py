"""The stand-in against the real Asterisk 20.20.1 captures, over real sockets.

Each test replays what the client sent in a capture and checks that the
stand-in answers with the same frames in the same order: same event names,
same field names in the same order, same values except ids and times
(events the README says were trimmed from ``*.txt`` are skipped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from callcenter.simulator import AsteriskStandIn, ScaledClock
from callcenter.simulator.captures import TRIMMED, read_capture, shape
from tests.simulator.amiclient import MiniAmi
from tests.simulator.replay import FIXTURES, Replay

SPEED = 25.0


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    s = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm", clock=ScaledClock(SPEED),
                        record_root=tmp_path / "rec")
    s.add_member("frontdesk", "Local/1001@agents/n", "Agent 1001")
    s.pbx.queues["frontdesk"].members["Local/1001@agents/n"].state_interface = "Local/1001@agents"
    await s.start()
    yield s
    await s.stop()


async def test_login_capture_01(standin: AsteriskStandIn, client: MiniAmi) -> None:
    pairs = await Replay(client).run(FIXTURES / "01_login.txt")
    assert client.banner == "Asterisk Call Manager/9.0.0"
    kinds = [b.event or b.fields[0][1] for b, _ in pairs]
    assert kinds == ["Success", "FullyBooted", "SuccessfulAuth", "Success", "Success", "Success"]
    assert pairs[-1][1].getall("Output")[1].startswith("res_agi.so")


async def test_asyncagi_capture_02_chinese_caller(standin: AsteriskStandIn, client: MiniAmi,
                                                  tmp_path: Path) -> None:
    await client.login()
    await client.wait_event("SuccessfulAuth")
    replay = Replay(client)
    pairs = await replay.run(FIXTURES / "02_asyncagi_hotline.txt")
    start = next(got for exp, got in pairs if exp.event == "AsyncAGIStart")
    env = unquote(start["Env"])
    assert "agi_calleridname: 张三 客服测试\n" in env
    assert "agi_request: async\n" in env
    results = [unquote(got["Result"]) for exp, got in pairs if exp.event == "AsyncAGIExec"]
    assert results[:4] == ["200 result=0\n", "200 result=1 (张三 客服测试)\n", "200 result=0 endpos=11234\n",
                           "200 result=5\n"]
    assert results[4].startswith("200 result=1 (timeout) endpos=")
    # RECORD FILE wrote the file (absolute paths land under record_root)
    assert (tmp_path / "rec" / "srv/pbx/var/spool/asterisk/tmp/agi-rec.wav").stat().st_size > 44
    # the Cdr carries the UTF-8 name intact
    cdr = next(got for exp, got in pairs if exp.event == "Cdr")
    assert cdr["CallerID"] == '"张三 客服测试" <13800138000>'


class FastAgiServer:
    """The test's FastAGI server: replays 03_fastagi_session.txt's commands."""

    def __init__(self, session_lines: list[str]) -> None:
        self.expected = session_lines
        self.received: list[str] = []
        self.done = asyncio.Event()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.after_hangup: bytes | None = b"unset"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for line in self.expected:
                if line.startswith(">>> "):
                    writer.write(line[4:].encode() + b"\n")
                    await writer.drain()
                else:
                    raw = await asyncio.wait_for(reader.readline(), 5)
                    self.received.append(raw.decode("utf-8").rstrip("\n"))
            # Asterisk keeps the socket open after HANGUP: nothing more comes until we close.
            try:
                extra = await asyncio.wait_for(reader.readline(), 0.03)
            except TimeoutError:
                extra = None
            self.after_hangup = extra
        finally:
            writer.close()
            self.done.set()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_fastagi_capture_03_session_and_ami(standin: AsteriskStandIn, client: MiniAmi) -> None:
    lines = [ln for ln in (FIXTURES / "03_fastagi_session.txt").read_text(encoding="utf-8").splitlines()
             if ln.startswith(("<<< ", ">>> ")) or ln == "<<< "]
    lines = [ln if ln != "<<<" else "<<< " for ln in lines]
    fagi = FastAgiServer(lines)
    await fagi.start()
    standin.pbx.fastagi_url = f"agi://127.0.0.1:{fagi.port}/ivr"
    try:
        await client.login()
        await client.wait_event("SuccessfulAuth")
        replay = Replay(client, names={"agi://127.0.0.1:4573/ivr": standin.pbx.fastagi_url})
        await replay.run(FIXTURES / "03_fastagi_ami.txt")
        await asyncio.wait_for(fagi.done.wait(), 5)
    finally:
        await fagi.stop()
    expected = [ln[4:] for ln in lines if ln.startswith("<<< ")]
    volatile = ("agi_request:", "agi_channel:", "agi_uniqueid:", "agi_threadid:")
    assert len(fagi.received) == len(expected)
    for ours, theirs in zip(fagi.received, expected, strict=True):
        if theirs.startswith(volatile):
            assert ours.split(":")[0] == theirs.split(":")[0]
        else:
            assert ours == theirs
    assert fagi.received[-1] == "HANGUP"
    assert fagi.after_hangup is None  # the socket stayed open and silent until the server closed it
    assert "agi_calleridname: 张三 客服测试" in fagi.received


async def test_voicemail_capture_04(standin: AsteriskStandIn, client: MiniAmi, tmp_path: Path) -> None:
    await client.login()
    await client.wait_event("SuccessfulAuth")
    await Replay(client).run(FIXTURES / "04_voicemail.txt")
    inbox = tmp_path / "vm" / "default" / "8000" / "INBOX"
    ours = (inbox / "msg0000.txt").read_text(encoding="utf-8")
    theirs = (FIXTURES / "voicemail-spool/default/8000/INBOX/msg0000.txt").read_text(encoding="utf-8")

    def keys(text: str) -> list[str]:
        return [ln.split("=")[0] for ln in text.splitlines()]

    assert keys(ours) == keys(theirs)
    assert 'callerid="王小明" <13912345678>' in ours
    assert "context=voicemail-deposit" in ours and "exten=8000" in ours
    assert (inbox / "msg0000.wav").read_bytes()[:4] == b"RIFF"


async def test_queue_capture_05(standin: AsteriskStandIn, client: MiniAmi) -> None:
    await client.login()
    await client.wait_event("SuccessfulAuth")
    pairs = await Replay(client).run(FIXTURES / "05_queue.txt")
    complete = next(got for exp, got in pairs if exp.event == "AgentComplete")
    assert complete["Reason"] == "caller"
    assert complete["MemberName"] == "Agent 1001"
    linked = {got.get("Linkedid") for _, got in pairs if got.get("Linkedid")}
    assert len(linked) == 1  # the caller's and the agent's channels share the call's Linkedid


async def test_logoff_capture_06(standin: AsteriskStandIn, client: MiniAmi) -> None:
    await client.login()
    await client.wait_event("SuccessfulAuth")
    await Replay(client).run(FIXTURES / "06_logoff.txt")
    with pytest.raises(ConnectionError):
        await client.wait_for(lambda f: True, 2)


async def test_resync_capture_07_events_off(standin: AsteriskStandIn, client: MiniAmi) -> None:
    # the capture was taken after 05 had completed one call; its counters are values, not shape
    replay = Replay(client, volatile={"Completed", "CallsTaken", "InCall", "Status", "NewMessages",
                                      "ServicelevelPerf", "Available"})
    blocks = read_capture(FIXTURES / "07_resync.txt")
    # wait for the caller to be bridged before the CoreShowChannels of the capture
    send_until = next(i for i, b in enumerate(blocks) if b.sent and b.get("Action") == "CoreShowChannels")
    for b in blocks[:send_until]:
        if b.sent:
            replay.send(b)
        else:
            replay.compare(b, await replay.next_frame(5))
    for _ in range(200):
        if any(c.bridge for c in standin.pbx.channels.values()) and len(standin.pbx.channels) == 4:
            break
        await asyncio.sleep(0.01)
    await replay.run(FIXTURES / "07_resync.txt", start=send_until)
    # Events: off: no event that is not a list item reached this client
    names = {f.event for f in client.frames if f.event}
    assert names <= {"CoreShowChannel", "CoreShowChannelsComplete", "QueueParams", "QueueMember",
                     "QueueStatusComplete", "QueueSummary", "QueueSummaryComplete", "ChannelHungup",
                     "ChannelsHungupListComplete"}


def test_capture_shape_helper_skips_trimmed_events() -> None:
    full = [b.fields for b in read_capture(FIXTURES / "full" / "02_asyncagi_hotline.log") if not b.sent]
    trimmed = [b.fields for b in read_capture(FIXTURES / "02_asyncagi_hotline.txt") if not b.sent]
    assert shape(full, skip=TRIMMED) == shape(trimmed)
    assert shape(full) != shape(trimmed)
