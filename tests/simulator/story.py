"""A capture's story, and the stand-in's, compared per channel.

Asterisk runs each channel in its own thread, so events of different channels
interleave differently from one run to the next (capture 09's two legs ring in
either order; capture 10's ``OriginateResponse`` comes before or after the
``;1`` Hangup). What must match is each channel's own sequence: event names and
their key fields (dial status, cause, AGI result, dial string, response and
message) in order; an ``OriginateResponse`` counts with the responses. A Dial event belongs to the pair (caller → leg) so each
leg's DialBegin/DialState/DialEnd are ordered too. Responses to actions form
one sequence of their own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

from callcenter.ami.parser import Frame, encode_frame
from callcenter.simulator.captures import TRIMMED, Block, read_capture
from tests.simulator.amiclient import MiniAmi

Fields = Sequence[tuple[str, str]]
#: events the stand-in does not model (device state, RTCP, talk detection)
NOT_MODELLED = frozenset({"DeviceStateChange", "QueueMemberStatus", "RTCPSent", "RTCPReceived",
                          "ChannelTalkingStart", "ChannelTalkingStop"})
KEYS = ("DialStatus", "Cause", "Result", "DialString", "Response", "Message", "Reason", "ChannelState")
_SEQ = re.compile(r"-[0-9a-f]{8}(?=;\d$|$)")
_IN_TEXT = re.compile(r"-[0-9a-f]{8}(?=;\d)")  # a channel named in an AGI result


def norm_channel(name: str) -> str:
    """``Local/8201@rig-phone-00000009;1`` → ``Local/8201@rig-phone;1``."""
    return _SEQ.sub("", name)


def _get(fields: Fields, key: str) -> str | None:
    for k, v in fields:
        if k == key:
            return v
    return None


def story(frames: Iterable[Fields], *, skip: frozenset[str] = TRIMMED | NOT_MODELLED
          ) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for fields in frames:
        if not fields:
            continue
        head, name = fields[0]
        if head == "Event":
            if name in skip:
                continue
            key = norm_channel(_get(fields, "Channel") or "")
            if name == "OriginateResponse":
                key = "responses"  # the answer to an action, racing the channel's own thread
            if name.startswith("Dial") and _get(fields, "DestChannel"):
                key += " -> " + norm_channel(_get(fields, "DestChannel") or "")
        else:
            key = "responses"
        facts = [name]
        for k in KEYS:
            v = _get(fields, k)
            if v is not None and (k, head) != ("Response", "Response"):
                facts.append(f"{k}={_IN_TEXT.sub('', unquote(v).strip()) if k == 'Result' else v}")
        out.setdefault(key, []).append(tuple(facts))
    return out


def _milestone(fields: Fields) -> bool:
    """What the next action of a capture waited for: a response, an Originate's
    outcome or an AGI result."""
    return bool(fields) and (fields[0][0] == "Response"
                             or fields[0] in (("Event", "AsyncAGIExec"), ("Event", "OriginateResponse")))


class Drive:
    """Send a capture's actions to the stand-in in the capture's rhythm: each
    action once the stand-in has answered as many actions and AGI commands as
    Asterisk had by then. Channel names are mapped to the stand-in's."""

    def __init__(self, client: MiniAmi, *, skip: frozenset[str] = TRIMMED | NOT_MODELLED) -> None:
        self.client = client
        self.skip = skip

    def _ours(self, value: str) -> str:
        wanted = norm_channel(value)
        if wanted == value:
            return value
        for f in reversed(self.client.frames):
            for key in ("Channel", "DestChannel"):
                got = f.get(key)
                if got and norm_channel(got) == wanted:
                    return got
        return value

    async def _until(self, count: int, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while sum(_milestone(f.headers) for f in self.client.frames) < count:
            if loop.time() > deadline:
                raise AssertionError(f"the stand-in answered {sum(_milestone(f.headers) for f in self.client.frames)}"
                                     f" of {count} actions/AGI commands")
            try:
                await self.client._read_more(max(0.01, deadline - loop.time()))
            except TimeoutError:
                continue

    async def run(self, blocks: list[Block], *, within: float = 15.0, settle: float = 0.5) -> list[Frame]:
        seen = 0
        expected_events = 0
        for block in blocks:
            if block.sent:
                await self._until(seen, within)
                fields = [(k, self._ours(v) if k == "Channel" else v) for k, v in block.fields]
                self.client.writer.write(encode_frame(fields))
            else:
                seen += _milestone(block.fields)
                expected_events += block.event is not None and block.event not in self.skip
        await self._until(seen, within)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._events() < expected_events and loop.time() < deadline:
            try:
                await self.client._read_more(max(0.01, deadline - loop.time()))
            except TimeoutError:
                break
        # anything more that would come (a stand-in sending too much must fail too)
        end = loop.time() + settle
        while loop.time() < end:
            try:
                await self.client._read_more(max(0.01, end - loop.time()))
            except TimeoutError:
                break
        return list(self.client.frames)

    def _events(self) -> int:
        return sum(1 for f in self.client.frames if f.event is not None and f.event not in self.skip)


def capture_story(path: Path, *, skip: frozenset[str] = TRIMMED | NOT_MODELLED
                  ) -> dict[str, list[tuple[str, ...]]]:
    return story([b.fields for b in read_capture(path) if not b.sent], skip=skip)


def assert_same_story(ours: dict[str, list[tuple[str, ...]]], theirs: dict[str, list[tuple[str, ...]]]) -> None:
    assert sorted(ours) == sorted(theirs), f"channels differ:\n ours   {sorted(ours)}\n theirs {sorted(theirs)}"
    for key in theirs:
        assert ours[key] == theirs[key], f"{key}:\n ours   {ours[key]}\n theirs {theirs[key]}"
