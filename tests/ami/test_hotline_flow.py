"""The recorded AsyncAGI hotline call end to end over a real socket:
Originate → (AsyncAGIStart before OriginateResponse) → IVR session through
AmiLinks → tracker → call.* events with the IVR path."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from callcenter.ami.asyncagi import AsyncAgiChannel
from callcenter.ami.captures import server_bytes
from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.ami.parser import Frame, FrameParser, encode_frame
from callcenter.bus import DomainEvent
from tests.ami.fakeami import FakeAmi, FakeSettings
from tests.ami.test_asyncagi import Script
from tests.ami.test_client import until
from tests.ami.test_links import NO_CHANNELS, script

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
FRAMES = [f for f in FrameParser().feed(
    server_bytes((FIXTURES / "02_asyncagi_hotline.txt").read_bytes())) if isinstance(f, Frame)]
ORIG_AT = next(i for i, f in enumerate(FRAMES) if f.event == "OriginateResponse")
END_AT = next(i for i, f in enumerate(FRAMES) if f.event == "AsyncAGIEnd")
BEFORE = [f for f in FRAMES[1:ORIG_AT] if f.kind == "event"]  # FRAMES[0]: "queued"
AFTER = [f for f in FRAMES[END_AT:] if f.kind == "event"]


def factory(cfg: LinkConfig) -> AmiLink:
    return AmiLink(cfg, rng=random.Random(3), reconnect_base_s=0.01)


async def test_originated_hotline_call_runs_the_ivr_and_is_tracked() -> None:
    ami = FakeAmi()
    await ami.start()
    script(ami, channels=NO_CHANNELS, new_messages=0)
    agi = Script(ami)
    plain_agi = agi.agi

    def agi_then_hangup(f: Frame) -> list[bytes]:
        out = plain_agi(f)
        if f["Command"] == "ASYNCAGI BREAK":
            out += [encode_frame(e.headers) for e in AFTER]
        return out

    ami.handlers["agi"] = agi_then_hangup

    def originate(f: Frame) -> list[bytes]:
        aid = f["ActionID"]
        orig = FRAMES[ORIG_AT]
        return [encode_frame([("Response", "Success"), ("ActionID", aid),
                              ("Message", "Originate successfully queued")])] + [
            encode_frame(e.headers) for e in BEFORE] + [
            encode_frame([(k, aid if k == "ActionID" else v) for k, v in orig.headers])]

    ami.handlers["originate"] = originate
    events: list[DomainEvent] = []
    links = AmiLinks([FakeSettings(port=ami.port)], publish=events.append, link_factory=factory)
    digits: list[str] = []
    session_started = asyncio.Event()

    async def ivr(chan: AsyncAgiChannel) -> None:
        session_started.set()
        await chan.answer()
        digit = await chan.get_data("beep", 6000, 1)
        digits.append(digit)
        links.record_ivr_choice(chan.linkedid, f"menu:main={digit}")

    links.set_agi_handler(ivr)
    links.start()
    try:
        link = links.get("pbx-test")
        await link.wait_connected(2)
        resp = await link.originate(channel="Local/s@caller-sim", context="hotline", exten="s",
                                    caller_id='"张三 客服测试" <13800138000>',
                                    channel_id="probe-agi-1")
        # AsyncAGIStart came before OriginateResponse: the session is already on.
        assert session_started.is_set()
        assert resp.events[0].get("Uniqueid") == "probe-agi-1"
        await until(lambda: any(e.name == "call.ended" for e in events))
        assert digits == ["5"]
        names = [e.name for e in events]
        assert names == ["call.started", "call.ivr_choice", "call.ended"]
        ended = events[-1].data
        assert ended["ivr_path"] == ["menu:main=5"] and ended["outcome"] == "ivr_only"
        assert ended["caller_name"] == "张三 客服测试"
        assert [f["Command"] for f in ami.actions("AGI")] == [
            "ANSWER", "GET DATA beep 6000 1", "ASYNCAGI BREAK"]
        assert len(ami.actions("Originate")) == 1
    finally:
        await links.stop()
        await ami.close()
