"""The FastAGI server over real sockets, with this test playing Asterisk."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from ivr.errors import CallerHungUp
from ivr.fastagi import MAX_LINE, FastAgiChannel, FastAgiServer

HEADER = (
    "agi_network: yes\nagi_network_script: hotline\nagi_request: agi://127.0.0.1/hotline\n"
    "agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: 1700000000.7\n"
    "agi_callerid: 13812345678\nagi_calleridname: 张三 客服测试\n\n"
)


@pytest.fixture
async def server() -> AsyncIterator[tuple[FastAgiServer, list[object]]]:
    seen: list[object] = []

    async def handler(ch: FastAgiChannel) -> None:
        seen.append(dict(ch.env))
        await ch.answer()
        try:
            seen.append(await ch.get_variable("CALLERID(name)"))
            seen.append(await ch.stream_file("welcome", "12"))
            await ch.stream_file("bye")
        except CallerHungUp:
            seen.append("hung up")

    srv = FastAgiServer(handler, "127.0.0.1", 0, header_timeout_s=0.5, command_timeout_s=2)
    await srv.start()
    yield srv, seen
    await srv.stop()


async def _asterisk(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _up_to_the_name(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A call whose handler has answered and now asks for the caller's name."""
    r, w = await _asterisk(port)
    w.write(HEADER.encode())
    assert await r.readline() == b"ANSWER\n"
    w.write(b"200 result=0\n")
    assert await r.readline() == b"GET VARIABLE CALLERID(name)\n"
    return r, w


async def test_a_session_runs_and_the_server_closes_the_socket(server: tuple[FastAgiServer, list[object]]) -> None:
    srv, seen = server
    r, w = await _up_to_the_name(srv.port)
    w.write("200 result=1 (张三 客服测试)\n".encode())
    assert await r.readline() == b'STREAM FILE welcome "12"\n'
    w.write(b"200 result=50 endpos=1200\n")
    assert await r.readline() == b'STREAM FILE bye ""\n'
    w.write(b"200 result=0 endpos=800\n")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 2) == b""  # the server closed: Asterisk may go on
    assert seen[0]["agi_calleridname"] == "张三 客服测试"  # type: ignore[index]
    assert seen[1:] == ["张三 客服测试", "2"]
    w.close()


async def test_a_hangup_notice_ends_the_session(server: tuple[FastAgiServer, list[object]]) -> None:
    srv, seen = server
    r, w = await _asterisk(srv.port)
    w.write(HEADER.encode())
    await r.readline()
    w.write(b"200 result=0\n")
    await r.readline()
    w.write(b"HANGUP\n200 result=1 (x)\n")  # the notice, then the reply to GET VARIABLE
    await w.drain()
    # No further command: the session ends at once and the socket is closed.
    assert await asyncio.wait_for(r.read(), 2) == b""
    assert seen[-1] == "hung up" and len(seen) == 2
    w.close()


async def test_a_hangup_notice_after_the_last_reply_ends_the_next_command(
    server: tuple[FastAgiServer, list[object]],
) -> None:
    """As in the capture: Asterisk sends HANGUP unprompted, then 511 to what follows."""
    srv, seen = server
    r, w = await _asterisk(srv.port)
    w.write(HEADER.encode())
    assert await r.readline() == b"ANSWER\n"
    w.write(b"200 result=0\nHANGUP\n")
    assert await r.readline() == b"GET VARIABLE CALLERID(name)\n"
    w.write(b"511 Command Not Permitted on a dead channel or intercepted\n")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 2) == b""
    assert seen[-1] == "hung up"
    w.close()


@pytest.mark.parametrize("payload", [b"", b"agi_channel: X\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                     b"\xff\xfe garbage\n\n"])
async def test_early_close_garbage_or_silence_is_dropped_without_spinning(
    server: tuple[FastAgiServer, list[object]], payload: bytes,
) -> None:
    srv, seen = server
    r, w = await _asterisk(srv.port)
    if payload:
        w.write(payload)
        await w.drain()
    if payload == b"":
        w.close()  # peer gone before the blank line
    loop = asyncio.get_running_loop()
    t0, cpu0 = loop.time(), time.process_time()
    await asyncio.sleep(0.8)  # longer than the header timeout
    assert time.process_time() - cpu0 < 0.5 * (loop.time() - t0)
    assert srv.active_sessions == 0 and seen == []
    if payload:
        assert await asyncio.wait_for(r.read(), 2) == b""
        w.close()


async def test_sessions_are_routed_by_script_name() -> None:
    from ivr.fastagi import ScriptRouter

    ran: list[str] = []

    async def hotline(ch: FastAgiChannel) -> None:
        ran.append(f"hotline:{ch.caller_number}")
        await ch.answer()

    srv = FastAgiServer(ScriptRouter({"hotline": hotline}), "127.0.0.1", 0, header_timeout_s=0.5,
                        command_timeout_s=2)
    await srv.start()
    try:
        r, w = await _asterisk(srv.port)
        w.write(HEADER.replace("agi_network_script: hotline", "agi_network_script: hotline?x=1")
                .encode())
        assert await r.readline() == b"ANSWER\n"
        w.write(b"200 result=0\n")
        assert await asyncio.wait_for(r.read(), 2) == b""
        w.close()
        assert ran == ["hotline:13812345678"]

        r, w = await _asterisk(srv.port)
        w.write(HEADER.replace("agi_network_script: hotline", "agi_network_script: nosuch").encode())
        assert await r.readline() == b'STREAM FILE sorry-system ""\n'
        w.write(b"200 result=0 endpos=8000\n")
        assert await r.readline() == b"HANGUP\n"
        w.write(b"200 result=1\nHANGUP\n")
        assert await asyncio.wait_for(r.read(), 2) == b""
        w.close()
        assert ran == ["hotline:13812345678"]
    finally:
        await srv.stop()
    assert srv.active_sessions == 0


async def test_a_silent_asterisk_mid_call_is_timed_out_and_the_socket_closed() -> None:
    entered: list[str] = []

    async def handler(ch: FastAgiChannel) -> None:
        entered.append("in")
        await ch.answer()
        entered.append("answered")  # never reached: no reply comes

    srv = FastAgiServer(handler, "127.0.0.1", 0, header_timeout_s=0.5, command_timeout_s=0.3)
    await srv.start()
    try:
        r, w = await _asterisk(srv.port)
        w.write(HEADER.encode())
        assert await r.readline() == b"ANSWER\n"
        assert await asyncio.wait_for(r.read(), 2) == b""   # closed after the command timeout
        assert entered == ["in"] and srv.active_sessions == 0
        w.close()
    finally:
        await srv.stop()


async def test_stop_cancels_a_running_session_and_closes_its_socket() -> None:
    started = asyncio.Event()

    async def handler(ch: FastAgiChannel) -> None:
        started.set()
        await ch.answer()

    srv = FastAgiServer(handler, "127.0.0.1", 0, command_timeout_s=30)
    await srv.start()
    r, w = await _asterisk(srv.port)
    w.write(HEADER.encode())
    await asyncio.wait_for(started.wait(), 2)
    assert await r.readline() == b"ANSWER\n"
    await asyncio.wait_for(srv.stop(), 2)
    assert await asyncio.wait_for(r.read(), 2) == b""
    assert srv.active_sessions == 0
    w.close()


@pytest.mark.parametrize(("replies", "outcome"), [
    # capture 08: the callee answered and hung up; the caller is still up
    ([b"200 result=-1\n", b"200 result=6\n", b"200 result=1 (ANSWER)\n"], "-1 ANSWER"),
    # the caller hung up while it rang: the notice, then Dial's -1
    ([b"HANGUP\n200 result=-1\n"], "hung up"),
    # the -1 came, and the channel is gone when asked
    ([b"200 result=-1\n", b"511 Command Not Permitted on a dead channel or intercept routine\n"], "hung up"),
], ids=["callee-hung-up", "caller-hung-up", "gone-when-asked"])
async def test_dial_returning_minus_one_is_not_taken_for_the_callers_hang_up(
        replies: list[bytes], outcome: str) -> None:
    seen: list[str] = []

    async def handler(ch: FastAgiChannel) -> None:
        try:
            res = await ch.exec("Dial", "PJSIP/801,20")
            seen.append(f"{res.result} {await ch.get_variable('DIALSTATUS')}")
        except CallerHungUp:
            seen.append("hung up")

    srv = FastAgiServer(handler, "127.0.0.1", 0, command_timeout_s=2)
    await srv.start()
    try:
        r, w = await _asterisk(srv.port)
        w.write(HEADER.encode())
        sent = []
        for reply in replies:
            sent.append((await asyncio.wait_for(r.readline(), 2)).decode().strip())
            w.write(reply)
        assert await asyncio.wait_for(r.read(), 2) == b""
        w.close()
    finally:
        await srv.stop()
    assert seen == [outcome]
    assert sent[0] == 'EXEC Dial "PJSIP/801,20"'
    if len(sent) > 1:
        assert sent[1] == "CHANNEL STATUS"


@pytest.mark.parametrize("where", ["reply", "header"])
async def test_a_line_over_the_limit_closes_that_connection_only(
    server: tuple[FastAgiServer, list[object]], where: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply (or header line) longer than the reader's 8 KB limit: that call's link is
    dropped cleanly with one warning, no traceback, and the next call is served."""
    srv, seen = server
    long_line = b"x" * (MAX_LINE * 3)
    if where == "header":
        r, w = await _asterisk(srv.port)
        w.write(b"agi_network: yes\nagi_calleridname: " + long_line + b"\n\n")
    else:
        r, w = await _up_to_the_name(srv.port)
        w.write(b"200 result=1 (" + long_line + b")\n")
    await w.drain()
    with caplog.at_level(logging.WARNING, logger="ivr.fastagi"):
        assert await asyncio.wait_for(r.read(), 2) == b""  # closed, nothing more sent
        for _ in range(100):
            if srv.active_sessions == 0:
                break
            await asyncio.sleep(0.01)
    w.close()
    assert srv.active_sessions == 0
    if where == "reply":
        assert seen[-1] == "hung up" and len(seen) == 2  # the handler saw a lost link
    records = [rec for rec in caplog.records if rec.name == "ivr.fastagi"]
    assert len(records) == 1 and records[0].exc_info is None, records
    assert "8192" in records[0].getMessage() or "header" in records[0].getMessage()
    # The next call is served as usual.
    seen.clear()
    r, w = await _up_to_the_name(srv.port)
    w.write("200 result=1 (张三)\n".encode())
    assert await r.readline() == b'STREAM FILE welcome "12"\n'
    w.close()
