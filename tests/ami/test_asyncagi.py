"""AsyncAGI sessions over a real AMI socket, scripted from the recorded call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher, AsyncAgiTimeout
from callcenter.ami.captures import client_frames, server_bytes
from callcenter.ami.client import AmiLink
from callcenter.ami.parser import Frame, FrameParser, encode_frame
from ivr.errors import CallerHungUp
from tests.ami.fakeami import FakeAmi, FakeSettings
from tests.ami.test_client import until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
CAPTURE = (FIXTURES / "02_asyncagi_hotline.txt").read_bytes()


def recorded() -> tuple[Frame, dict[str, str]]:
    """The AsyncAGIStart frame and {command verb: URL-encoded Result} from the capture."""
    frames = [f for f in FrameParser(expect_banner=False).feed(server_bytes(CAPTURE))
              if isinstance(f, Frame)]
    start = next(f for f in frames if f.event == "AsyncAGIStart")
    by_id = {f["CommandId"]: f["Result"] for f in frames if f.event == "AsyncAGIExec"}
    results = {}
    for cf in client_frames(CAPTURE):
        d = dict(cf)
        if d.get("Action") == "AGI":
            verb = " ".join(d["Command"].split()[:2])
            results[verb] = by_id[d["CommandID"]]
    return start, results


START, RESULTS = recorded()


class Script:
    """Answers AGI actions like the recorded Asterisk did."""

    def __init__(self, ami: FakeAmi) -> None:
        self.ami = ami
        self.silent: set[str] = set()
        self.hangup_on: str | None = None
        self.refuse = False
        ami.handlers["agi"] = self.agi

    def agi(self, f: Frame) -> list[bytes]:
        aid, cid, command = f["ActionID"], f["CommandID"], f["Command"]
        if self.refuse:
            return [encode_frame([("Response", "Error"), ("ActionID", aid),
                                  ("Message", "Channel does not exist.")])]
        out = [encode_frame([("Response", "Success"), ("ActionID", aid),
                             ("Message", "Added AGI command to queue")])]
        verb = " ".join(command.split()[:2])
        if verb == self.hangup_on:
            out.append(encode_frame([("Event", "Hangup"), ("Channel", START["Channel"]),
                                     ("Uniqueid", START["Uniqueid"]), ("Cause", "16")]))
            return out
        if verb in self.silent:
            return out
        result = RESULTS.get(verb) or RESULTS.get(command.split()[0], "200%20result%3D0%0A")
        out.append(encode_frame([("Event", "AsyncAGIExec"), ("Channel", START["Channel"]),
                                 ("Uniqueid", START["Uniqueid"]),
                                 ("Linkedid", START["Linkedid"]),
                                 ("Result", result), ("CommandId", cid)]))
        if command == "ASYNCAGI BREAK":
            out.append(encode_frame([("Event", "AsyncAGIEnd"), ("Channel", START["Channel"]),
                                     ("Uniqueid", START["Uniqueid"])]))
        return out


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeAmi, AmiLink, Script]]:
    ami = FakeAmi()
    await ami.start()
    link = AmiLink(FakeSettings(port=ami.port), rng=random.Random(1), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(2)
    yield ami, link, Script(ami)
    await link.stop()
    await ami.close()


async def test_recorded_hotline_session_runs_through_asyncagi(env) -> None:  # type: ignore[no-untyped-def]
    ami, link, _ = env
    seen: dict[str, object] = {}
    done = asyncio.Event()

    async def ivr(chan: AsyncAgiChannel) -> None:
        seen["ids"] = {k: v for k, v in structlog.contextvars.get_contextvars().items()
                       if k in ("pbx", "uniqueid", "linkedid")}
        seen["name"] = chan.caller_name
        seen["number"] = chan.caller_number
        await chan.answer()
        seen["var"] = await chan.get_variable("CALLERID(name)")
        await chan.stream_file("hello-world")
        seen["digits"] = await chan.get_data("beep", 6000, 1)
        rec = await chan.record_file("/tmp/agi-rec", timeout_ms=4000)
        seen["rec"] = rec.data
        await chan.set_variable("CC_STATE", "handled")
        done.set()

    dispatcher = AsyncAgiDispatcher(link, ivr, command_timeout_s=1)
    dispatcher.attach()
    ami.push(encode_frame(START.headers))
    await asyncio.wait_for(done.wait(), 2)
    await until(lambda: not dispatcher.sessions)
    assert seen.pop("ids") == {"pbx": "pbx-test", "uniqueid": "probe-agi-1",
                               "linkedid": "probe-agi-1"}
    assert seen == {"name": "张三 客服测试", "number": "13800138000",
                    "var": "张三 客服测试", "digits": "5", "rec": "timeout"}
    commands = [f["Command"] for f in ami.actions("AGI")]
    assert commands[0] == "ANSWER" and commands[-1] == "ASYNCAGI BREAK"
    assert commands.count("ASYNCAGI BREAK") == 1
    assert all(f["Channel"] == START["Channel"] for f in ami.actions("AGI"))
    await dispatcher.close()


async def test_hangup_mid_command_raises_caller_hung_up_and_no_break(env) -> None:  # type: ignore[no-untyped-def]
    ami, link, script = env
    script.hangup_on = "STREAM FILE"
    raised: list[BaseException] = []

    async def ivr(chan: AsyncAgiChannel) -> None:
        await chan.answer()
        try:
            await chan.stream_file("hello-world")
        except CallerHungUp as exc:
            raised.append(exc)
            raise

    dispatcher = AsyncAgiDispatcher(link, ivr, command_timeout_s=1)
    dispatcher.attach()
    ami.push(encode_frame(START.headers))
    await until(lambda: bool(raised) and not dispatcher.sessions)
    commands = [f["Command"] for f in ami.actions("AGI")]
    assert "ASYNCAGI BREAK" not in commands
    await dispatcher.close()


async def test_missing_asyncagiexec_times_out(env) -> None:  # type: ignore[no-untyped-def]
    ami, link, script = env
    script.silent.add("GET DATA")
    errors: list[BaseException] = []

    async def ivr(chan: AsyncAgiChannel) -> None:
        try:
            await chan.get_data("beep", 6000, 1)
        except AsyncAgiTimeout as exc:
            errors.append(exc)

    dispatcher = AsyncAgiDispatcher(link, ivr, command_timeout_s=0.05)
    dispatcher.attach()
    ami.push(encode_frame(START.headers))
    await until(lambda: bool(errors) and not dispatcher.sessions)
    assert errors[0].error_id == "asyncagi_timeout"  # type: ignore[attr-defined]
    # The channel was still up, so close() handed it back to the dialplan.
    assert [f["Command"] for f in ami.actions("AGI")][-1] == "ASYNCAGI BREAK"
    await dispatcher.close()


async def test_refused_agi_action_means_caller_gone(env) -> None:  # type: ignore[no-untyped-def]
    ami, link, script = env
    script.refuse = True
    errors: list[BaseException] = []

    async def ivr(chan: AsyncAgiChannel) -> None:
        try:
            await chan.answer()
        except CallerHungUp as exc:
            errors.append(exc)

    dispatcher = AsyncAgiDispatcher(link, ivr)
    dispatcher.attach()
    ami.push(encode_frame(START.headers))
    await until(lambda: bool(errors) and not dispatcher.sessions)
    assert "Channel does not exist" in str(errors[0])
    assert len(ami.actions("AGI")) == 1  # no BREAK to a channel that is gone
    await dispatcher.close()


async def test_close_cancels_running_sessions(env) -> None:  # type: ignore[no-untyped-def]
    ami, link, script = env
    script.silent.add("WAIT FOR")
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def ivr(chan: AsyncAgiChannel) -> None:
        started.set()
        try:
            await chan.wait_for_digit(10000)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    dispatcher = AsyncAgiDispatcher(link, ivr, command_timeout_s=30)
    dispatcher.attach()
    ami.push(encode_frame(START.headers))
    await asyncio.wait_for(started.wait(), 2)
    await until(lambda: bool(ami.actions("AGI")))
    await asyncio.wait_for(dispatcher.close(), 2)
    assert cancelled == [True]
    assert [f["Command"] for f in ami.actions("AGI")][-1] == "ASYNCAGI BREAK"
    assert not dispatcher.sessions
