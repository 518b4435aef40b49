"""Demo traffic: a few realistic calls flowing through the stand-in.

Owners ring the hotline from their known numbers, press through the menu,
sometimes wait in the queue and sometimes leave a voicemail, then hang up.
``DemoTraffic(standin, owners).start()`` ... ``await traffic.stop()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.simulator import AsteriskStandIn
from callcenter.simulator.scenario import Caller, HangUp, Phone, Press, Say, Step, Wait
from callcenter.simulator.voicemail import write_silence

if TYPE_CHECKING:
    from callcenter.settings import Settings

log = logging.getLogger(__name__)

#: used when no owner numbers are given (not real people)
FALLBACK_CALLERS = (("13800138000", "张三"), ("13912345678", "王小明"), ("13700000000", "李秀英"))


@dataclass(frozen=True, slots=True)
class DemoOwner:
    number: str
    name: str = ""


class DemoTraffic:
    def __init__(
        self,
        standin: AsteriskStandIn,
        owners: Sequence[DemoOwner | tuple[str, str] | str] = (),
        *,
        rng: random.Random | None = None,
        mean_gap: float = 20.0,
        max_concurrent: int = 3,
        voicemail_share: float = 0.2,
        menu_digits: str = "1230",
        voice_wavs: Sequence[Path] = (),
        work_dir: Path | None = None,
        did: str = "4008001234",
    ) -> None:
        self.standin = standin
        self.owners = [self._owner(o) for o in owners] or [DemoOwner(n, m) for n, m in FALLBACK_CALLERS]
        self.rng = rng or random.Random()
        self.mean_gap = mean_gap
        self.max_concurrent = max_concurrent
        self.voicemail_share = voicemail_share
        self.menu_digits = menu_digits
        self.voice_wavs = list(voice_wavs)
        self.work_dir = work_dir
        self.did = did
        self.placed = 0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _owner(o: DemoOwner | tuple[str, str] | str) -> DemoOwner:
        if isinstance(o, DemoOwner):
            return o
        if isinstance(o, str):
            return DemoOwner(o)
        return DemoOwner(o[0], o[1])

    def _voice(self) -> Path | None:
        if self.voice_wavs:
            return self.rng.choice(self.voice_wavs)
        if self.work_dir is None:
            return None
        path = self.work_dir / "demo-caller.wav"
        if not path.exists():
            write_silence(path, 4.0)
        return path

    def next_caller(self) -> Caller:
        """One random but plausible call."""
        owner = self.rng.choice(self.owners)
        rng = self.rng
        if rng.random() < self.voicemail_share:
            script: list[Step] = [Wait(rng.uniform(2, 4)), Say(self._voice(), rng.uniform(4, 10)), HangUp()]
            return Caller(number=owner.number, name=owner.name, did=self.did, context="voicemail-deposit",
                          exten="8000", script=script)
        script = [Wait(rng.uniform(2, 5))]
        for _ in range(rng.randint(1, 2)):
            script += [Press(rng.choice(self.menu_digits)), Wait(rng.uniform(2, 6))]
        if rng.random() < 0.5:
            script.append(Say(self._voice(), rng.uniform(3, 8)))
        script += [Wait(rng.uniform(5, 40)), HangUp()]
        return Caller(number=owner.number, name=owner.name, did=self.did, script=script)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        clock = self.standin.clock
        while True:
            await clock.sleep(self.rng.expovariate(1.0 / self.mean_gap) if self.mean_gap > 0 else 0)
            calls = {c.linkedid for c in self.standin.pbx.channels.values()}
            if len(calls) >= self.max_concurrent:
                continue
            try:
                self.standin.place_call(self.next_caller())
                self.placed += 1
            except Exception:  # a demo must keep going
                log.exception("demo call failed to start")


#: what the demo's callers say when they leave a message (spoken by espeak-ng)
DEMO_MESSAGES = (
    "你好，我是三栋二单元一二零一的业主，厨房的水管一直在漏水，麻烦明天派人来看看。",
    "我家卫生间的下水道堵了，水排不下去，请师傅来疏通一下。",
    "五号楼一单元的楼道灯坏了好几天了，晚上很黑，请尽快修一下。",
    "小区二号电梯有异响，停的时候晃得厉害，请检查一下。",
)


def demo_voices(folder: Path, messages: Sequence[str] = DEMO_MESSAGES) -> list[Path]:
    """The demo callers' messages as telephone WAVs (espeak-ng, voice ``cmn``),
    rendered once into ``folder``; [] when espeak-ng or sox is missing (callers then
    leave silence, and their tickets say 请收听录音)."""
    from ivr.prompts import PromptToolMissing, speak

    voices: list[Path] = []
    for n, text in enumerate(messages):
        target = folder / f"message-{n}.wav"
        if not target.exists():
            try:
                speak(text, target)
            except (PromptToolMissing, OSError, subprocess.SubprocessError) as exc:
                log.warning("demo callers will leave silent messages: %s", exc)
                return []
        voices.append(target)
    return voices


@contextlib.asynccontextmanager
async def demo_standin(settings: Settings, owners: Sequence[DemoOwner | tuple[str, str] | str] = (), *,
                       simulate_calls: bool = True, phones: Sequence[Phone] = (),
                       rng: random.Random | None = None) -> AsyncIterator[AsteriskStandIn]:
    """The stand-in the demo runs beside the server: same port and credentials as
    ``settings.asterisk[0]``, IVR over FastAGI when ``settings.fastagi.enabled``,
    voicemail into ``settings.voicemail.spool_dir``, and (optionally) calls flowing."""
    transport = "fastagi" if settings.fastagi.enabled else "asyncagi"
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport, phones=list(phones),
                                            record_root=settings.data_dir / "standin-recordings")
    await standin.start()
    voices = await asyncio.to_thread(demo_voices, settings.data_dir / "demo-voices")
    traffic = DemoTraffic(standin, owners, rng=rng, work_dir=settings.data_dir, voice_wavs=voices)
    if simulate_calls:
        traffic.start()
    try:
        yield standin
    finally:
        await traffic.stop()
        await standin.stop()
