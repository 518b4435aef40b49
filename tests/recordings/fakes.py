"""Small Protocol-conforming stand-ins for the vosk pool and triage, and spool builders.

The real transcriber is tested by its own suite; here the ingest's behaviour is
what matters: the fake reads the WAV for real (so a corrupt file fails the way
a real decoder does) and returns the text registered for that audio."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import struct
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AudioUnreadable(Exception):
    error_id = "audio_unreadable"


@dataclass(frozen=True)
class FakeTranscript:
    text: str
    words: list[dict[str, Any]]
    duration_s: float


class FakeTranscriber:
    def __init__(self, default_text: str = "") -> None:
        self.default_text = default_text
        self.texts: dict[str, str] = {}
        self.calls: list[Path] = []
        self.hang = False

    def say(self, wav: Path, text: str) -> None:
        self.texts[hashlib.sha256(wav.read_bytes()).hexdigest()] = text

    async def transcribe(self, path: Path, *,
                         on_start: Callable[[], Awaitable[None]] | None = None
                         ) -> FakeTranscript:
        if on_start is not None:  # as the pool does once a worker takes the job
            await on_start()
        self.calls.append(path)
        if self.hang:
            await asyncio.Event().wait()
        return await asyncio.to_thread(self._decode, path)

    def _decode(self, path: Path) -> FakeTranscript:
        try:
            with wave.open(str(path), "rb") as w:
                frames = w.readframes(w.getnframes())
                duration = w.getnframes() / w.getframerate()
        except (wave.Error, EOFError) as exc:
            raise AudioUnreadable(f"not a WAV file: {exc}") from exc
        if not any(frames):
            return FakeTranscript("", [], duration)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        text = self.texts.get(sha, self.default_text)
        words = []
        for i, word in enumerate(text.split()):
            words.append({"word": word, "start": i * 0.3, "end": i * 0.3 + 0.25,
                          "conf": 0.4 if i == 1 else 0.95})
        return FakeTranscript(text, words, duration)


_NUM = {"零": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5",
        "六": "6", "七": "7", "八": "8", "九": "9"}


@dataclass(frozen=True)
class SimpleTriage:
    category: str
    emergency: bool
    building: str | None
    unit: str | None
    room: str | None


def simple_triage(text: str) -> SimpleTriage:
    """Enough triage for ingest tests (the real rules are the triage branch's)."""
    t = text.replace(" ", "")
    digits = "".join(_NUM.get(c, c) for c in t)
    b = re.search(r"(\d+)(?:栋|号楼)", digits)
    u = re.search(r"(\d+)单元", digits)
    r = re.search(r"单元(\d{3,4})", digits) or re.search(r"(?:栋|号楼)(\d{3,4})", digits)
    if "燃气" in t or "煤气" in t:
        cat = "gas"
    elif "电梯" in t:
        cat = "elevator"
    elif "水" in t:
        cat = "plumbing"
    elif "噪音" in t:
        cat = "noise"
    else:
        cat = "other"
    emergency = any(k in t for k in ("爆了", "被困", "煤气味", "着火"))
    return SimpleTriage(cat, emergency, b.group(1) if b else None, u.group(1) if u else None,
                        r.group(1) if r else None)


def write_wav(path: Path, *, seconds: float = 1.0, freq: float = 440.0, silent: bool = False,
              rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    samples = (0 if silent else int(8000 * math.sin(2 * math.pi * freq * i / rate))
               for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def write_txt(path: Path, *, caller: str = '"王小明" <13912345678>', origtime: int = 1795343499,
              msg_id: str | None = None, duration: int = 8, mailbox: str = "8000",
              category: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        ";\n; Message Information file\n;\n[message]\n"
        f"origmailbox={mailbox}\ncontext=voicemail-deposit\nmacrocontext=\nexten={mailbox}\n"
        "rdnis=unknown\npriority=1\ncallerchan=Local/vm@caller-sim-00000002;1\n"
        f"callerid={caller}\norigdate=Sun Nov 22 10:31:39 AM UTC 2026\norigtime={origtime}\n"
        f"category={category}\nmsg_id={msg_id or f'{origtime}-00000000'}\nflag=\nduration={duration}\n",
        encoding="utf-8")
    return path


@dataclass
class Spool:
    root: Path
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, *, context: str = "default", mailbox: str = "8000", wav: Path | None = None,
            freq: float = 440.0, silent: bool = False, raw: bytes | None = None,
            **txt: Any) -> Path:
        n = self.counters.get((context, mailbox), 0)
        inbox = self.root / context / mailbox / "INBOX"
        while (inbox / f"msg{n:04d}.txt").exists():
            n += 1
        self.counters[(context, mailbox)] = n + 1
        target = inbox / f"msg{n:04d}.wav"
        inbox.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            target.write_bytes(raw)
        elif wav is not None:
            target.write_bytes(wav.read_bytes())
        else:
            write_wav(target, freq=freq, silent=silent)
        txt.setdefault("mailbox", mailbox)
        txt.setdefault("origtime", 1795343499 + 100 * (n + 1) + int(freq))
        write_txt(target.with_suffix(".txt"), **txt)
        return target
