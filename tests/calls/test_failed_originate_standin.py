"""A page attempt that fails is not an owner's abandoned call.

The stand-in (its AMI over a real socket) originates as the paging worker does
(``callcenter-page``, the incident id as the extension) into targets that fail:
a Local channel into a missing extension (capture 10: OriginateResponse
Failure, Reason 0, both halves hung up with cause 0) and a phone nobody
answers (Reason 3). The call tracker, fed what the stand-in sends, must publish
nothing for them: no ``call.started`` row in the call log, no ``call.abandoned``
on the wall. An owner who hangs up while waiting is still abandoned, and a page
the engineer answers is still a call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.bus import DomainEvent
from callcenter.calls.tracker import CallTracker
from callcenter.simulator import Answer, AsteriskStandIn, Caller, HangUp, Phone, ScaledClock, Wait
from tests.simulator.amiclient import MiniAmi

PAGE = (("Context", "callcenter-page"), ("Priority", "1"), ("Async", "true"),
        ("CallerID", '"物业紧急呼叫" <4000>'), ("Variable", "CC_INCIDENT=7"))


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    async with AsteriskStandIn(spool_dir=tmp_path / "vm", clock=ScaledClock(20),
                               phones=[Phone("8009", behaviour=Answer.NO_ANSWER),
                                       Phone("8010", answer_after=1, script=[Wait(2), HangUp()])]) as s:
        yield s


@pytest.fixture
async def client(standin: AsteriskStandIn) -> AsyncIterator[MiniAmi]:
    c = await MiniAmi.connect(standin.ami_port)
    await c.login()
    yield c
    await c.close()


def _track(client: MiniAmi) -> tuple[CallTracker, list[DomainEvent]]:
    published: list[DomainEvent] = []
    tracker = CallTracker("pbx1", published.append)
    for f in client.frames:
        if f.kind == "event":
            tracker.handle(f, datetime.now(UTC))
    return tracker, published


async def _originate(client: MiniAmi, channel: str, exten: str, *extra: tuple[str, str]) -> str:
    answer = await client.action("Originate", ("Channel", channel), ("Exten", exten), *PAGE, *extra)
    assert answer["Response"] == "Success", answer.headers
    outcome = await client.wait_event("OriginateResponse", within=10)
    await client.quiet(0.3)  # the last Hangup may follow the OriginateResponse (capture 10)
    return outcome["Reason"]


async def test_a_page_into_a_missing_extension_leaves_no_call(client: MiniAmi) -> None:
    reason = await _originate(client, "Local/1@sip-unused", "7", ("ChannelId", "page-7-1"))
    assert reason == "0"
    tracker, published = _track(client)
    assert [e.name for e in published] == []
    assert tracker.calls == {} and tracker.ended == []


async def test_a_page_nobody_answers_leaves_no_call(client: MiniAmi) -> None:
    reason = await _originate(client, "PJSIP/8009", "7", ("Timeout", "2000"), ("ChannelId", "page-7-2"))
    assert reason == "3"
    tracker, published = _track(client)
    assert not [e for e in published if e.name in ("call.started", "call.abandoned", "call.ended")]
    assert tracker.calls == {}


async def test_an_owner_who_hangs_up_while_waiting_is_still_abandoned(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.place_call(Caller(number="13800000010", name="王建国", context="queue-entry",
                              script=[Wait(2), HangUp()]))
    await client.wait_event("QueueCallerAbandon", within=10)
    await client.wait_event("Hangup", within=10)
    _, published = _track(client)
    names = [e.name for e in published]
    assert names[0] == "call.started" and "call.abandoned" in names and names[-1] == "call.ended"
    assert published[-1].data["outcome"] == "abandoned"
    assert published[-1].data["caller_number"] == "13800000010"


async def test_an_answered_page_is_still_a_call(client: MiniAmi) -> None:
    """The engineer answers: the page is on the PBX and in the log as it was before."""
    answer = await client.action("Originate", ("Channel", "PJSIP/8010"), ("Exten", "7"), *PAGE)
    assert answer["Response"] == "Success"
    start = await client.wait_event("AsyncAGIStart", within=10)
    await client.action("Hangup", ("Channel", start["Channel"]))
    await client.wait_for(lambda f: f.event == "Hangup" and f.get("Channel") == start["Channel"], within=10)
    _, published = _track(client)
    names = [e.name for e in published]
    assert names[0] == "call.started" and names[-1] == "call.ended"
    assert "call.abandoned" not in names
