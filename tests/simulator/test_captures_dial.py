"""The stand-in tells the same story as Asterisk in captures 08, 09, 10 and 12.

Each test sends the capture's actions to the stand-in, in the capture's rhythm,
over a real socket, and compares what comes back with what Asterisk sent,
channel by channel (``tests/simulator/story.py``): event names, dial statuses,
causes, AGI results, responses, in order; plus the cross-channel facts the
captures' README points out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from callcenter.ami.parser import Frame
from callcenter.simulator import Answer, AsteriskStandIn, HangUp, Phone, ScaledClock, Wait
from callcenter.simulator.captures import TRIMMED, read_capture
from tests.simulator.amiclient import MiniAmi
from tests.simulator.replay import FIXTURES
from tests.simulator.story import NOT_MODELLED, Drive, assert_same_story, capture_story, story
from tests.simulator.test_captures import FastAgiServer

SPEED = 20.0
#: the 08-12 captures end with the call's last Hangup, before cdr_manager posts its records
SKIP = TRIMMED | NOT_MODELLED | {"Cdr"}
USERS = {"rigall": "rigallsecret", "rigro": "rigrosecret"}
#: the rig's phones (AstDB ``rigphone``: answer:<ring s>:<talk s>:<dtmf>:<tail s>; unset rings on)
RIG_PHONES = [
    Phone("8101", answer_after=1, script=[Wait(2), HangUp()]),
    Phone("8203", answer_after=3, script=[Wait(3), HangUp()]),
    Phone("8401", answer_after=1, script=[Wait(2), HangUp()]),
    *(Phone(n, behaviour=Answer.NO_ANSWER) for n in ("8201", "8202", "8204")),
]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    s = AsteriskStandIn(users=USERS, spool_dir=tmp_path / "vm", clock=ScaledClock(SPEED), phones=RIG_PHONES)
    await s.start()
    yield s
    await s.stop()


def _fields(frames: list[Frame]) -> list[list[tuple[str, str]]]:
    return [list(f.headers) for f in frames]


def _results(frames: list[Frame]) -> list[str]:
    return [unquote(f["Result"]).strip() for f in frames if f.event == "AsyncAGIExec"]


async def test_capture_08_answered_dial_returns_minus_one_with_the_caller_up(client: MiniAmi) -> None:
    path = FIXTURES / "08_agi_dial_answered_hangup.txt"
    frames = await Drive(client, skip=SKIP).run(read_capture(path))
    assert_same_story(story(_fields(frames), skip=SKIP), capture_story(path, skip=SKIP))
    assert _results(frames) == ["200 result=-1", "200 result=1 (ANSWER)", "200 result=1 (16)",
                                "200 result=6", "200 result=0"]
    # the callee's Hangups come before Dial's result
    names = [(f.event, f.get("Channel") or "") for f in frames]
    minus_one = next(i for i, f in enumerate(frames) if f.event == "AsyncAGIExec")
    callee = [i for i, (e, ch) in enumerate(names) if e == "Hangup" and "@rig-phone" in ch]
    assert len(callee) == 2 and max(callee) < minus_one


async def test_capture_08_over_fastagi_dial_answers_minus_one_on_the_socket(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    session = (FIXTURES / "08_agi_dial_answered_hangup_fastagi_session.txt").read_text(encoding="utf-8")
    lines = [ln if ln != "<<<" else "<<< " for ln in session.splitlines() if ln.startswith(("<<<", ">>> "))]
    fagi = FastAgiServer(lines)
    await fagi.start()
    standin.pbx.fastagi_url = f"agi://127.0.0.1:{fagi.port}/ivr"
    try:
        path = FIXTURES / "08_agi_dial_answered_hangup_fastagi_ami.txt"
        frames = await Drive(client, skip=SKIP).run(read_capture(path))
        await asyncio.wait_for(fagi.done.wait(), 10)
    finally:
        await fagi.stop()
    assert_same_story(story(_fields(frames), skip=SKIP), capture_story(path, skip=SKIP))
    replies = [ln for ln in fagi.received if not ln.startswith("agi_") and ln]
    assert replies == [ln[4:] for ln in lines if ln.startswith("<<< 200")]
    assert replies[:2] == ["200 result=-1", "200 result=1 (ANSWER)"]


async def test_capture_09_every_leg_rings_and_the_first_to_answer_wins(client: MiniAmi) -> None:
    path = FIXTURES / "09_dial_parallel.txt"
    frames = await Drive(client, skip=SKIP).run(read_capture(path), within=30)
    assert_same_story(story(_fields(frames), skip=SKIP), capture_story(path, skip=SKIP))
    begins = [f for f in frames if f.event == "DialBegin" and f.get("Channel")]
    assert [f["DialString"] for f in begins] == ["8201@rig-phone", "8202@rig-phone", "8203@rig-phone",
                                                 "8204@rig-phone"]
    assert len({f["Channel"] for f in begins}) == 1 and len({f["DestChannel"] for f in begins}) == 4
    ends = [(f["DestChannel"].split("@")[0], f["DialStatus"]) for f in frames
            if f.event == "DialEnd" and f.get("Channel")]
    assert ends == [("Local/8201", "NOANSWER"), ("Local/8202", "NOANSWER"),
                    ("Local/8204", "CANCEL"), ("Local/8203", "ANSWER")]
    winner = next(f["DestChannel"] for f in frames if f.event == "DialEnd" and f.get("Channel") and f.get("DialStatus") == "ANSWER")
    assert _results(frames) == ["200 result=0", "200 result=1 (NOANSWER)", "200 result=-1",
                                "200 result=1 (ANSWER)", f"200 result=1 ({winner})", "200 result=0"]
    assert winner.endswith(";1")
