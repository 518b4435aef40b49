"""Prompts without a recording are rendered as 8 kHz mono WAV; recordings are kept."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.prompts import build_prompts

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are installed by scripts/test.sh")


def test_build_renders_missing_prompts_and_keeps_recordings(tmp_path: Path) -> None:
    recorded = tmp_path / "zh" / "welcome.wav"
    recorded.parent.mkdir(parents=True)
    recorded.write_bytes(b"a real recording")
    report = build_prompts({"welcome": "您好", "goodbye": "再见"}, tmp_path)
    assert "welcome" in report.skipped and "goodbye" in report.rendered
    assert recorded.read_bytes() == b"a real recording"
    for name in ("goodbye", "digits/7", "digits/hundred"):
        with wave.open(str(tmp_path / "zh" / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() > 800  # some real speech, not an empty file
