"""Captures 08, 09, 10 and 12 through the real parser and call tracker.

The parser must read every frame of each stream cleanly (the ``*.txt`` and the
complete ``full/*.log``), and the tracker must tell each call's story as it
happened: an answered Dial whose callee hung up first is ``answered`` by that
callee (Asterisk's ``result=-1`` is not in the AMI stream's story); every leg of
a parallel Dial is a ring; a failed Originate is no call at all; a read-restricted user's stream tells the same story
as the ``read=all`` one."""

from __future__ import annotations

import pytest

from callcenter.ami.parser import Frame
from tests.calls.test_tracker import Replay, frames_of


def _ended(r: Replay) -> list[dict[str, object]]:
    return [e.data for e in r.events if e.name == "call.ended"]


@pytest.mark.parametrize("name", ["08_agi_dial_answered_hangup.txt", "full/08_agi_dial_answered_hangup.log",
                                  "08_agi_dial_answered_hangup_fastagi_ami.txt",
                                  "full/08_agi_dial_answered_hangup_fastagi_ami.log"])
def test_capture_08_a_callee_who_hangs_up_first_answered_the_call(name: str) -> None:
    frames = frames_of(name)
    assert frames and not [f for f in frames if f.errors]
    r = Replay()
    r.feed(frames)
    assert r.names() == ["call.started", "call.ringing", "call.answered", "call.ended"]
    assert r.one("call.ringing").data["target"] == "8101"
    [ended] = _ended(r)
    assert ended["outcome"] == "answered" and ended["answered_by"] == "8101"
    assert ended["caller_number"] in ("13800000008", "13800000018")
    assert r.tracker.calls == {}


@pytest.mark.parametrize("name", ["09_dial_parallel.txt", "full/09_dial_parallel.log"])
def test_capture_09_every_leg_of_a_parallel_dial_rings(name: str) -> None:
    frames = frames_of(name)
    assert not [f for f in frames if f.errors]
    begins = [f for f in frames if f.event == "DialBegin" and f.get("Channel")]
    assert [f["DialString"] for f in begins] == ["8201@rig-phone", "8202@rig-phone", "8203@rig-phone",
                                                 "8204@rig-phone"]
    assert len({f["Channel"] for f in begins}) == 1 and len({f["DestChannel"] for f in begins}) == 4
    r = Replay()
    r.feed(frames)
    [ended] = _ended(r)
    assert [x["target"] for x in ended["rung"]] == ["8201", "8202", "8203", "8204"]  # type: ignore[attr-defined]
    assert ended["outcome"] == "answered" and ended["answered_by"] == "8203"


@pytest.mark.parametrize("name", ["10_originate_missing_exten.txt", "full/10_originate_missing_exten.log"])
def test_capture_10_failed_originates_leave_no_call_behind(name: str) -> None:
    frames = frames_of(name)
    assert not [f for f in frames if f.errors]
    responses = [(f.get("ActionID"), f.get("Response"), f.get("Message")) for f in frames
                 if f.kind == "response" and (f.get("ActionID") or "").startswith("c10-") and f.get("ActionID") != "c10-1"]
    assert responses == [("c10-2", "Success", "Originate successfully queued"),
                         ("c10-3", "Success", "Originate successfully queued"),
                         ("c10-4", "Error", "Extension does not exist."),
                         ("c10-5", "Error", "Originate failed"),
                         ("c10-6", "Success", "Originate successfully queued")]
    failures = [(f["ActionID"], f["Reason"]) for f in frames if f.event == "OriginateResponse"]
    assert failures == [("c10-2", "0"), ("c10-3", "0"), ("c10-6", "0")]
    r = Replay()
    r.feed(frames)
    assert r.tracker.calls == {}  # every half of every Local pair hung up: nothing stays live
    # a failed Originate is no owner's call: nothing for the call log or the wall
    assert r.names() == [] and r.tracker.failed_originates == 4


def _story(frames: list[Frame]) -> list[str]:
    return [f.event or "" for f in frames if f.kind == "event"]


def test_capture_12_a_read_restricted_user_sees_the_same_call_without_dialplan_events() -> None:
    ro = frames_of("full/12_read_permissions.log")
    everything = frames_of("full/12_read_permissions_all.log")
    assert not [f for f in ro + everything if f.errors]
    dialplan = {"Newexten", "VarSet"}
    security = {"SuccessfulAuth"}
    assert not {f.event for f in ro} & (dialplan | security)
    skipped = [f.event for f in everything if f.event in dialplan]
    assert skipped.count("Newexten") == 53 and skipped.count("VarSet") == 48
    # the call's events are the same, in the same order, once dialplan and security are left out
    call = [n for n in _story(everything) if n not in dialplan | security | {"FullyBooted"}]
    assert [n for n in _story(ro) if n != "FullyBooted"] == call
    tales = []
    for stream in (ro, everything):
        r = Replay()
        r.feed(stream)
        tales.append((r.names(), [(e["outcome"], e["answered_by"]) for e in _ended(r)]))
    assert tales[0] == tales[1] == (["call.started", "call.ringing", "call.answered", "call.ended"],
                                    [("answered", "8401")])
