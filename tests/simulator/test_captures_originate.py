"""The stand-in tells the same story as Asterisk in captures 10 and 12.

10: an Originate into a target its dialplan does not have (a Context/Exten that
does not exist is refused at once; an async ``Local/`` channel into a missing
extension is queued, then fails with ``OriginateResponse`` Reason 0; the same
without ``Async`` answers ``Originate failed``). 12: each AMI session receives
only the event classes its user's ``read=`` allows.

As in ``test_captures_dial.py``: the capture's actions go to the stand-in in the
capture's rhythm over a real socket, and what comes back is compared with what
Asterisk sent, channel by channel (``tests/simulator/story.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.ami.event_classes import EVENT_CLASSES, parse_classes
from callcenter.ami.parser import Frame, encode_frame
from callcenter.simulator import AsteriskStandIn, ScaledClock
from callcenter.simulator.captures import read_capture
from tests.simulator.amiclient import MiniAmi
from tests.simulator.replay import FIXTURES
from tests.simulator.story import Drive, assert_same_story, capture_story, story
from tests.simulator.test_captures_dial import RIG_PHONES, SKIP, SPEED, _fields

RIGRO_READ = "system,call,agent,user,reporting,agi,dtmf"
USERS = {"rigall": "rigallsecret", "rigro": "rigrosecret"}


def _rig(tmp_path: Path, speed: float = SPEED) -> AsteriskStandIn:
    return AsteriskStandIn(users=USERS, read={"rigall": "all", "rigro": RIGRO_READ}, spool_dir=tmp_path / "vm",
                           clock=ScaledClock(speed), phones=RIG_PHONES)


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    async with _rig(tmp_path) as s:
        yield s


def _responses(frames: list[Frame]) -> list[tuple[str | None, str | None, str | None]]:
    return [(f.action_id, f.get("Response"), f.get("Message")) for f in frames
            if f.event is None and f.action_id != "c10-1"]


async def test_capture_10_an_originate_into_a_missing_target_fails_as_on_asterisk(client: MiniAmi) -> None:
    path = FIXTURES / "10_originate_missing_exten.txt"
    frames = await Drive(client, skip=SKIP).run(read_capture(path))
    assert_same_story(story(_fields(frames), skip=SKIP), capture_story(path, skip=SKIP))
    assert _responses(frames) == [("c10-2", "Success", "Originate successfully queued"),
                                  ("c10-3", "Success", "Originate successfully queued"),
                                  ("c10-4", "Error", "Extension does not exist."),
                                  ("c10-5", "Error", "Originate failed"),
                                  ("c10-6", "Success", "Originate successfully queued")]
    # the OriginateResponse fields as captured: the requested Channel, Reason 0, the made Uniqueid
    theirs = [b.fields for b in read_capture(path) if b.event == "OriginateResponse"]
    ours = [list(f.headers) for f in frames if f.event == "OriginateResponse"]
    assert [[k for k, _ in f] for f in ours] == [[k for k, _ in f] for f in theirs]
    assert [dict(f) for f in ours] == [dict(f) for f in theirs]
    # nothing left behind: no channel of a failed Originate lives on
    assert not [f for f in frames if f.event == "Newchannel" and "@rig-phone" in (f.get("Channel") or "")]


async def test_capture_10_over_the_full_stream(client: MiniAmi) -> None:
    """The untrimmed stream: Newexten AppDial2, NewCallerid and NewConnectedLine on
    both halves before the ``;2`` hangs up; no LocalBridge, DialBegin or VarSet."""
    path = FIXTURES / "full" / "10_originate_missing_exten.log"
    skip = frozenset({"DeviceStateChange"})
    frames = await Drive(client, skip=skip).run(read_capture(path))
    assert_same_story(story(_fields(frames), skip=skip), capture_story(path, skip=skip))


async def test_a_dialplan_with_the_extension_lets_the_same_originate_through(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    """The check is the dialplan's, not a list of names: ``Local/12@sip-unused``
    exists under ``_X.``, and once ``[sip-unused]`` has ``_X!`` so does ``/1``."""
    await client.login("rigall", "rigallsecret")
    ok = await client.action("Originate", ("Channel", "Local/12@sip-unused"), ("Application", "Wait"),
                             ("Data", "1"), ("Async", "true"))
    assert ok["Response"] == "Success"
    assert (await client.wait_event("OriginateResponse", within=10))["Response"] == "Success"
    standin.pbx.dialplan.add_text("[sip-unused]\nexten => _X!,1,Hangup()\n")
    ok = await client.action("Originate", ("Channel", "Local/1@sip-unused"), ("Application", "Wait"),
                             ("Data", "1"), ("Async", "true"))
    assert (await client.wait_event("OriginateResponse", within=10))["Response"] == "Success"
    refused = await client.action("Originate", ("Channel", "Local/8001@rig-phone"), ("Context", "hotline"),
                                  ("Exten", "nosuch"), ("Async", "true"))
    assert (refused["Response"], refused["Message"]) == ("Error", "Extension does not exist.")


async def test_capture_12_a_session_gets_only_the_classes_its_read_allows(tmp_path: Path) -> None:
    # The caller hangs up ~0.25 s after Dial's -1 (w3|d1|w3|h against a 1 s ring and 2 s talk):
    # at a slower clock the ASYNCAGI BREAK the capture sent in between reaches it in time.
    async with _rig(tmp_path, speed=4) as standin:
        ro = await MiniAmi.connect(standin.ami_port)
        rigall = await MiniAmi.connect(standin.ami_port)
        await _drive_12(ro, rigall)
    mine = list(ro.frames)
    everything = list(rigall.frames)
    # rigro's story is the capture's rigro story
    path = FIXTURES / "12_read_permissions.txt"
    assert_same_story(story(_fields(mine), skip=SKIP), capture_story(path, skip=SKIP))
    names = [f.event for f in mine if f.event]
    assert not {"Newexten", "VarSet", "SuccessfulAuth", "Cdr"} & set(names)
    assert {"Newexten", "VarSet", "SuccessfulAuth"} <= {f.event for f in everything}
    # and every event of rigall's whose class rigro reads, in the same order
    allowed = parse_classes(RIGRO_READ)
    assert allowed is not None
    theirs = [f.event for f in everything if f.event and f.event != "SuccessfulAuth"
              and EVENT_CLASSES[f.event] in allowed]
    assert names == theirs
    # the stand-in's Privilege headers say the same classes as the table
    for f in everything + mine:
        if f.event:
            assert (f.get("Privilege") or "").split(",")[0] == EVENT_CLASSES[f.event], f.headers


async def _drive_12(ro: MiniAmi, rigall: MiniAmi) -> None:
    """rigro logs in as in the capture; rigall drives the call (its full stream's actions)."""
    try:
        login = next(b for b in read_capture(FIXTURES / "12_read_permissions.txt") if b.sent)
        ro.writer.write(encode_frame(login.fields))
        await ro.wait_for(lambda f: f.get("Response") == "Success")
        await Drive(rigall, skip=SKIP).run(read_capture(FIXTURES / "full" / "12_read_permissions_all.log"))
        await ro.quiet()
    finally:
        await ro.close()
        await rigall.close()


async def test_events_at_login_and_the_events_action_narrow_the_classes(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    """``Events: agent`` at login: only agent events (no FullyBooted, no channel
    events); the ``Events`` action widens it again within ``read=``."""
    await client.login("rigro", "rigrosecret", events="agent")
    standin.add_member("frontdesk", "Local/8001@agents/n", "前台")
    driver = await MiniAmi.connect(standin.ami_port)
    try:
        await driver.login("rigall", "rigallsecret")
        await driver.action("QueuePause", ("Interface", "Local/8001@agents/n"), ("Paused", "true"))
        await driver.action("Originate", ("Channel", "Local/12@sip-unused"), ("Application", "Wait"),
                            ("Data", "1"), ("Async", "true"))
        await driver.wait_event("OriginateResponse", within=10)
        await client.quiet(0.3)
        got = {f.event for f in client.frames if f.event}
        assert got == {"QueueMemberPause"}
        answer = await client.action("Events", ("EventMask", "on"))
        assert answer["Events"] == "On"
        await driver.action("Originate", ("Channel", "Local/12@sip-unused"), ("Application", "Wait"),
                            ("Data", "1"), ("Async", "true"))
        await client.wait_event("OriginateResponse", within=10)
        assert "VarSet" not in {f.event for f in client.frames}
        assert "Newexten" not in {f.event for f in client.frames}
    finally:
        await driver.close()
