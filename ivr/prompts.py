"""Render prompts without a recording from their text, so a site has working
(if robotic) prompts until it records its own.

espeak-ng (voice ``cmn``) speaks each text; sox turns it into what Asterisk
plays best: 8 kHz, mono, 16-bit WAV, laid out as its sounds directory expects
(``<out>/zh/<name>.wav``, digits under ``<out>/zh/digits/``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.errors import IvrError
from ivr.money import PROMPT_TEXTS as MONEY_TEXTS

CHINESE_DIGITS = "零一二三四五六七八九"


class PromptToolMissing(IvrError):
    error_id = "prompt_tool_missing"


def number_words() -> dict[str, str]:
    """The files Asterisk's Chinese SAY NUMBER / SAY DIGITS play (main/say.c,
    ``ast_say_number_full_zh`` and ``ast_say_digit_str_full``): ``digits/0``-``9``,
    the tens ``digits/10``-``90`` (13 is digits/10 + digits/3), ``hundred``,
    ``thousand``, ``wan`` (万), ``yi`` (亿), ``minus``, and ``star``/``pound`` for
    the keys. ``digits/11``-``19`` are not needed by SAY NUMBER; they are made
    for dialplans that play them directly."""
    words = {f"digits/{i}": CHINESE_DIGITS[i] for i in range(10)}
    words.update({f"digits/{10 + i}": "十" + (CHINESE_DIGITS[i] if i else "") for i in range(10)})
    words.update({f"digits/{t * 10}": CHINESE_DIGITS[t] + "十" for t in range(2, 10)})
    words.update({"digits/hundred": "百", "digits/thousand": "千", "digits/wan": "万",
                  "digits/yi": "亿", "digits/minus": "负", "digits/star": "星号",
                  "digits/pound": "井号"})
    return words


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _tools() -> tuple[str, str]:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        raise PromptToolMissing("需要 espeak-ng 和 sox / espeak-ng and sox are needed "
                                "(Debian: apt-get install espeak-ng sox)")
    return espeak, sox


def speak(text: str, target: Path, *, voice: str = "cmn") -> Path:
    """``text`` spoken by espeak-ng into an 8 kHz 16-bit mono WAV (telephone audio)."""
    espeak, sox = _tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        _render(espeak, sox, voice, text, raw, target)
    return target


def _render(espeak: str, sox: str, voice: str, text: str, raw: Path, target: Path) -> None:
    subprocess.run([espeak, "-v", voice, "-w", str(raw), text], check=True,
                   capture_output=True, timeout=60)
    subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                    str(target)], check=True, capture_output=True, timeout=60)


def build_prompts(texts: Mapping[str, str], out: Path, *, lang: str = "zh",
                  voice: str = "cmn", force: bool = False) -> BuildReport:
    espeak, sox = _tools()
    report = BuildReport()
    base = out / lang
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for name, text in {**texts, **number_words(), **MONEY_TEXTS}.items():
            target = base / f"{name}.wav"
            if not force and any(target.with_suffix(s).exists() for s in (".wav", ".gsm", ".sln", ".ulaw")):
                report.skipped.append(name)  # a real recording (or an earlier build) wins
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _render(espeak, sox, voice, text, raw, target)
            report.rendered.append(name)
    return report
