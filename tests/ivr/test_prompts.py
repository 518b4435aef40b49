"""Prompts without a recording are rendered as 8 kHz mono WAV; recordings are kept."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.prompts import build_prompts

needs_espeak = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are installed by scripts/test.sh")


@needs_espeak
def test_build_renders_missing_prompts_and_keeps_recordings(tmp_path: Path) -> None:
    recorded = tmp_path / "zh" / "welcome.wav"
    recorded.parent.mkdir(parents=True)
    recorded.write_bytes(b"a real recording")
    report = build_prompts({"welcome": "您好", "goodbye": "再见"}, tmp_path)
    assert "welcome" in report.skipped and "goodbye" in report.rendered
    assert recorded.read_bytes() == b"a real recording"
    for name in ("goodbye", "digits/7", "digits/hundred", "digits/wan", "digits/yi", "digits/90"):
        with wave.open(str(tmp_path / "zh" / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert w.getnframes() > 800  # some real speech, not an empty file


def test_the_number_files_are_the_ones_asterisks_chinese_say_number_plays() -> None:
    from ivr.prompts import number_words

    words = number_words()
    # ast_say_number_full_zh: 1,2030,0405 → 一 亿 二 千 零 三 十 万 零 四 百 零 五
    needed = {f"digits/{i}" for i in range(10)} | {f"digits/{t * 10}" for t in range(1, 10)} | {
        "digits/hundred", "digits/thousand", "digits/wan", "digits/yi", "digits/minus"}
    assert needed <= set(words)
    assert words["digits/wan"] == "万" and words["digits/30"] == "三十" and words["digits/0"] == "零"
    assert "digits/ten-thousand" not in words


@needs_espeak
def test_callcenter_prompts_build_renders_the_outage_notices_prompts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generic notice (played when a notice's text cannot be spoken) and 按1仍需人工服务
    are built with the menus' prompts: a notice never plays silence."""
    from callcenter.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["prompts", "build", "--out", str(tmp_path / "sounds")]) == 0
    for name in ("outage-generic", "outage-press-1", "welcome"):
        with wave.open(str(tmp_path / "sounds" / "zh" / f"{name}.wav")) as w:
            assert w.getframerate() == 8000 and w.getnframes() > 8000
