"""Replay the recorded Asterisk sessions through parser → tracker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.ami.captures import server_bytes
from callcenter.ami.parser import Frame, FrameParser
from callcenter.bus import DomainEvent
from callcenter.calls.tracker import CallState, CallTracker, Snapshot, target_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
T0 = datetime(2026, 11, 22, 10, 31, tzinfo=UTC)


def frames_of(name: str) -> list[Frame]:
    data = server_bytes((FIXTURES / name).read_bytes())
    return [f for f in FrameParser().feed(data) if isinstance(f, Frame)]


class Replay:
    def __init__(self, community: str | None = "sunrise") -> None:
        self.events: list[DomainEvent] = []
        self.tracker = CallTracker("pbx1", self.events.append, community=community)
        self.now = T0
        self.states: list[tuple[str, str]] = []

    def feed(self, frames: list[Frame]) -> None:
        for f in frames:
            if f.kind != "event":
                continue
            self.tracker.handle(f, self.now)
            for c in self.tracker.calls.values():
                if not self.states or self.states[-1] != (c.linkedid, c.state.value):
                    self.states.append((c.linkedid, c.state.value))
            self.now += timedelta(seconds=1)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def one(self, name: str) -> DomainEvent:
        found = [e for e in self.events if e.name == name]
        assert len(found) == 1, (name, self.names())
        return found[0]


@pytest.mark.parametrize("name", ["05_queue.txt", "full/05_queue.log"])
def test_queue_call_replays_to_answered_by_agent(name: str) -> None:
    r = Replay()
    r.feed(frames_of(name))
    assert r.names() == ["call.started", "call.ringing", "call.answered", "call.ended"]
    assert [s for _, s in r.states] == ["ringing", "queued", "ringing_agent", "answered"]
    started = r.one("call.started")
    assert started.data["caller_number"] == "13700000000"
    assert started.data["caller_name"] == "张三 客服测试"  # not <unknown>
    assert started.data["linkedid"] == "probe-q-1" and started.data["asterisk"] == "pbx1"
    assert started.data["community"] == "sunrise"
    ringing = r.one("call.ringing").data
    assert ringing["target"] == "1001" and ringing["kind"] == "agent"
    assert ringing["queue"] == "frontdesk" and ringing["member_name"] == "Agent 1001"
    assert ringing["interface"] == "Local/1001@agents/n"
    answered = r.one("call.answered")
    assert answered.data["answered_by"] == "Agent 1001"
    ended = r.one("call.ended")
    assert ended.data["outcome"] == "answered"
    assert ended.data["wait_s"] == (answered.at - started.data["started_at"]).total_seconds()
    assert ended.data["talk_s"] == (ended.at - answered.at).total_seconds()
    assert [x["target"] for x in ended.data["rung"]] == ["1001"]
    assert r.tracker.calls == {}
    assert r.tracker.ended[-1].state is CallState.ENDED


@pytest.mark.parametrize(("name", "linkedid", "cause"), [
    ("02_asyncagi_hotline.txt", "probe-agi-1", "Normal Clearing"),
    ("full/02_asyncagi_hotline.log", "probe-agi-1", "Normal Clearing"),
    ("full/03_fastagi_ami.log", "probe-fagi-1", "Unknown"),
])
def test_ivr_call_replays_to_ivr_only(name: str, linkedid: str, cause: str) -> None:
    r = Replay()
    r.feed(frames_of(name))
    assert r.names() == ["call.started", "call.ended"]
    assert r.one("call.started").data["linkedid"] == linkedid
    assert "ivr" in [s for _, s in r.states]
    ended = r.one("call.ended").data
    assert ended["outcome"] == "ivr_only"
    assert ended["caller_name"] == "张三 客服测试" and ended["caller_number"] == "13800138000"
    assert ended["hangup_cause"] == cause


@pytest.mark.parametrize("name", ["04_voicemail.txt", "full/04_voicemail.log"])
def test_voicemail_call_publishes_voicemail_left(name: str) -> None:
    r = Replay()
    r.feed(frames_of(name))
    assert r.names() == ["call.started", "voicemail.left", "call.ended"]
    vm = r.one("voicemail.left").data
    assert vm["mailbox"] == "8000@default" and vm["count"] == 1 and vm["new"] == 1
    assert vm["linkedid"] == "probe-vm-1" and vm["caller_name"] == "王小明"
    assert r.one("call.ended").data["outcome"] == "voicemail"
    assert r.tracker.mailboxes["8000@default"] == (1, 0)


def test_ivr_choice_recorded_by_the_ivr_is_published_and_logged() -> None:
    r = Replay()
    frames = frames_of("02_asyncagi_hotline.txt")
    start = next(i for i, f in enumerate(frames) if f.event == "AsyncAGIStart")
    r.feed(frames[: start + 1])
    r.tracker.record_ivr_choice("probe-agi-1", "menu:main=5", r.now)
    r.tracker.record_ivr_choice("probe-agi-1", "repair", r.now)
    r.feed(frames[start + 1:])
    choices = [e for e in r.events if e.name == "call.ivr_choice"]
    assert [c.data["step"] for c in choices] == ["menu:main=5", "repair"]
    assert choices[-1].data["ivr_path"] == ["menu:main=5", "repair"]
    assert r.one("call.ended").data["ivr_path"] == ["menu:main=5", "repair"]


def test_emergency_marked_by_the_ivr_is_the_outcome() -> None:
    r = Replay()
    frames = frames_of("02_asyncagi_hotline.txt")
    r.feed(frames[:10])
    r.tracker.mark_emergency("probe-agi-1")
    r.feed(frames[10:])
    assert r.one("call.ended").data["outcome"] == "emergency"


def hangups_for(frames: list[Frame], linkedid: str) -> list[Frame]:
    return [f for f in frames if f.event == "Hangup" and f.get("Linkedid") == linkedid]


def test_caller_hanging_up_in_queue_is_abandoned() -> None:
    frames = frames_of("05_queue.txt")
    join = next(i for i, f in enumerate(frames) if f.event == "QueueCallerJoin")
    r = Replay()
    r.feed(frames[: join + 1])
    abandon = Frame([("Event", "QueueCallerAbandon"), ("Uniqueid", "probe-q-1"),
                     ("Linkedid", "probe-q-1"), ("Queue", "frontdesk"), ("Position", "1"),
                     ("OriginalPosition", "1"), ("HoldTime", "12")])
    r.feed([abandon])
    r.feed([Frame([("Event", "Hangup"), ("Uniqueid", u), ("Linkedid", "probe-q-1"),
                   ("Cause", "16")]) for u in ("probe-q-1;2", "probe-q-1")])
    assert r.names() == ["call.started", "call.abandoned", "call.ended"]
    assert r.one("call.abandoned").data["queue"] == "frontdesk"
    assert r.one("call.ended").data["outcome"] == "abandoned"


def test_hangup_while_agent_rings_without_queue_abandon_event_is_abandoned() -> None:
    frames = frames_of("05_queue.txt")
    called = next(i for i, f in enumerate(frames) if f.event == "AgentCalled")
    r = Replay()
    r.feed(frames[: called + 1])
    assert r.tracker.get("probe-q-1").state is CallState.RINGING_AGENT  # type: ignore[union-attr]
    r.feed([Frame([("Event", "Hangup"), ("Uniqueid", u), ("Linkedid", "probe-q-1")])
            for u in ("probe-q-1;2", "probe-q-1", "1795343512.8", "1795343512.9")])
    assert r.names() == ["call.started", "call.ringing", "call.abandoned", "call.ended"]
    assert r.one("call.abandoned").data["previous_state"] == "ringing_agent"


def test_blind_transfer_is_published() -> None:
    frames = frames_of("05_queue.txt")
    connect = next(i for i, f in enumerate(frames) if f.event == "AgentConnect")
    r = Replay()
    r.feed(frames[: connect + 1])
    r.feed([Frame([("Event", "BlindTransfer"), ("Result", "Success"),
                   ("TransfererUniqueid", "1795343512.8"), ("TransfererCallerIDNum", "1001"),
                   ("TransfereeUniqueid", "probe-q-1"), ("Extension", "1002"),
                   ("Context", "agents")])])
    t = r.one("call.transferred").data
    assert t["transferred_to"] == "1002" and t["transfer_kind"] == "blind"
    assert t["linkedid"] == "probe-q-1"


def test_plain_dial_rings_extension_then_mobile() -> None:
    r = Replay()
    r.feed([
        Frame([("Event", "Newchannel"), ("Channel", "PJSIP/trunk-00000001"),
               ("ChannelState", "4"), ("CallerIDNum", "+8613912345678"),
               ("CallerIDName", "<unknown>"), ("Exten", "075512345678"),
               ("Context", "from-trunk"), ("Uniqueid", "1.1"), ("Linkedid", "1.1")]),
        Frame([("Event", "DialBegin"), ("Channel", "PJSIP/trunk-00000001"), ("Uniqueid", "1.1"),
               ("Linkedid", "1.1"), ("DestChannel", "PJSIP/8001-00000002"),
               ("DestUniqueid", "1.2"), ("DialString", "PJSIP/8001")]),
        Frame([("Event", "DialEnd"), ("Uniqueid", "1.1"), ("Linkedid", "1.1"),
               ("DestUniqueid", "1.2"), ("DialStatus", "NOANSWER")]),
        Frame([("Event", "DialBegin"), ("Uniqueid", "1.1"), ("Linkedid", "1.1"),
               ("DestChannel", "PJSIP/trunk-00000003"), ("DestUniqueid", "1.3"),
               ("DialString", "PJSIP/13800138000@trunk")]),
        Frame([("Event", "DialEnd"), ("Uniqueid", "1.1"), ("Linkedid", "1.1"),
               ("DestUniqueid", "1.3"), ("DialStatus", "ANSWER")]),
    ])
    ring = [e.data for e in r.events if e.name == "call.ringing"]
    assert [(x["target"], x["kind"]) for x in ring] == [("8001", "extension"),
                                                        ("13800138000", "mobile")]
    call = r.tracker.get("1.1")
    assert call is not None and call.did == "075512345678"
    assert call.caller_name is None and call.caller_number == "+8613912345678"
    assert call.state is CallState.ANSWERED and call.answered_by == "13800138000"


def test_malformed_and_unknown_events_are_skipped() -> None:
    r = Replay()
    r.feed([Frame([("Event", "Newchannel"), ("Channel", "x")]),  # no Uniqueid
            Frame([("Event", "TotallyNew"), ("Uniqueid", "9")]),
            Frame([("Event", "Hangup"), ("Uniqueid", "nobody")]),
            Frame([("Event", "MessageWaiting"), ("Mailbox", "8000@default"), ("New", "x")])])
    assert r.tracker.skipped == 1
    assert r.tracker.calls == {} and r.events == []
    r.feed(frames_of("05_queue.txt"))
    assert r.names()[-1] == "call.ended"


def test_resync_closes_calls_that_ended_while_away_and_picks_up_new_ones() -> None:
    queue = frames_of("05_queue.txt")
    connect = next(i for i, f in enumerate(queue) if f.event == "AgentConnect")
    r = Replay()
    r.feed(queue[: connect + 1])
    r.tracker.mailboxes["8000@default"] = (1, 0)
    assert r.tracker.get("probe-q-1") is not None
    resync = frames_of("07_resync.txt")
    snap = Snapshot(
        channels=tuple(f for f in resync if f.event == "CoreShowChannel"),
        queue_entries=tuple(f for f in resync if f.event == "QueueEntry"),
        mailboxes={"8000@default": (2, 0)},
    )
    before = len(r.events)
    r.tracker.apply_snapshot(snap, r.now)
    new = r.events[before:]
    assert [e.name for e in new] == ["call.ended", "call.started", "voicemail.left"]
    assert new[0].data["linkedid"] == "probe-q-1" and new[0].data["resynced"] is True
    assert new[0].data["outcome"] == "answered"
    picked = r.tracker.get("resync-1")
    assert picked is not None
    assert picked.caller_name == "李秀英" and picked.caller_number == "13987654321"
    assert picked.queue == "frontdesk" and picked.state is CallState.ANSWERED
    assert picked.answered_by == "1001"
    assert picked.started_at == r.now - timedelta(seconds=3)
    assert len(picked.channels) == 4
    assert new[2].data["count"] == 2 and new[2].data["resynced"] is True
    # The same snapshot again changes nothing.
    r.tracker.apply_snapshot(snap, r.now)
    assert len(r.events) == before + 3
    # Live events keep flowing into the picked-up call.
    r.feed([Frame([("Event", "Hangup"), ("Uniqueid", u), ("Linkedid", "resync-1")])
            for u in ("resync-1-sim", "1795343693.12", "1795343693.13", "resync-1")])
    assert r.events[-1].name == "call.ended" and r.events[-1].data["linkedid"] == "resync-1"


@pytest.mark.parametrize(("interface", "expected"), [
    ("PJSIP/1001-0000002a", ("1001", "extension")),
    ("Local/1001@agents/n", ("1001", "extension")),
    ("Local/1001@agents-00000004;1", ("1001", "extension")),
    ("PJSIP/13800138000@trunk", ("13800138000", "mobile")),
    ("SIP/frontdesk", ("frontdesk", "other")),
])
def test_target_of_interfaces(interface: str, expected: tuple[str, str]) -> None:
    assert target_of(interface) == expected


def test_queue_member_dialling_its_phone_is_one_ring() -> None:
    frames = frames_of("05_queue.txt")
    called = next(i for i, f in enumerate(frames) if f.event == "AgentCalled")
    r = Replay()
    r.feed(frames[: called + 1])
    r.feed([Frame([("Event", "DialBegin"), ("Uniqueid", "1795343512.9"),
                   ("Linkedid", "probe-q-1"), ("DestChannel", "PJSIP/1001-00000009"),
                   ("DestUniqueid", "1795343512.10"), ("DialString", "PJSIP/1001")])])
    assert [e.name for e in r.events].count("call.ringing") == 1
    r.feed([Frame([("Event", "DialEnd"), ("Uniqueid", "1795343512.9"), ("Linkedid", "probe-q-1"),
                   ("DestUniqueid", "1795343512.10"), ("DialStatus", "ANSWER")])])
    assert r.one("call.answered").data["answered_by"] == "Agent 1001"
