"""The demo driver keeps calls flowing through the stand-in and stops cleanly."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from callcenter.simulator import AsteriskStandIn, ScaledClock
from callcenter.simulator.demo import DemoOwner, DemoTraffic


async def test_demo_traffic_places_calls_from_known_owners_and_stops(tmp_path: Path) -> None:
    s = AsteriskStandIn(spool_dir=tmp_path / "vm", clock=ScaledClock(200.0))
    await s.start()
    traffic = DemoTraffic(s, [DemoOwner("13811112222", "赵四"), ("13933334444", "钱五")],
                          rng=random.Random(7), mean_gap=2.0, max_concurrent=5, voicemail_share=0.5,
                          work_dir=tmp_path)
    try:
        traffic.start()
        for _ in range(300):
            if traffic.placed >= 4 and any(e[0][1] == "MessageWaiting" for e in s.events):
                break
            await asyncio.sleep(0.01)
        await traffic.stop()
        assert not traffic.running
        placed = traffic.placed
        numbers = {dict(e).get("CallerIDNum") for e in s.events if e[0][1] == "Newchannel"}
        assert numbers <= {"13811112222", "13933334444"} and numbers
        assert any(e[0][1] == "AsyncAGIStart" for e in s.events)
        assert list((tmp_path / "vm" / "default" / "8000" / "INBOX").glob("msg*.txt"))
        await asyncio.sleep(0.05)
        assert traffic.placed == placed  # stopped means stopped
    finally:
        await traffic.stop()
        await s.stop()


def test_demo_scripts_are_plausible(tmp_path: Path) -> None:
    traffic = DemoTraffic(AsteriskStandIn(spool_dir=tmp_path), rng=random.Random(1), voicemail_share=0.0)
    caller = traffic.next_caller()
    assert caller.context is None  # the stand-in's hotline
    assert caller.number in {"13800138000", "13912345678", "13700000000"}
    assert type(caller.script[-1]).__name__ == "HangUp"


async def test_demo_standin_runs_beside_the_servers_settings(tmp_path: Path) -> None:
    from callcenter.demo import demo_settings
    from callcenter.simulator.demo import demo_standin
    from tests.simulator.amiclient import MiniAmi

    settings = demo_settings(tmp_path, 0)
    a = settings.asterisk[0]
    async with demo_standin(settings, [("13811112222", "赵四")], simulate_calls=False) as s:
        assert s.pbx.ivr_transport == ("fastagi" if settings.fastagi.enabled else "asyncagi")
        c = await MiniAmi.connect(a.port)
        assert (await c.login(a.username, a.secret.reveal()))["Response"] == "Success"
        await c.close()
    import pytest

    with pytest.raises(OSError):
        await MiniAmi.connect(a.port)


def test_demo_voices_are_chinese_speech_as_telephones_send_it(tmp_path: Path) -> None:
    import wave

    from callcenter.simulator.demo import DEMO_MESSAGES, demo_voices

    voices = demo_voices(tmp_path / "voices")
    assert len(voices) == len(DEMO_MESSAGES)
    for path in voices:
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() / 8000 > 2.0  # a sentence, not a blip
    stamp = voices[0].stat().st_mtime_ns
    assert demo_voices(tmp_path / "voices")[0].stat().st_mtime_ns == stamp  # rendered once
