"""Fee balances are read out to the fen as Chinese speaks money."""

from __future__ import annotations

import shutil
import wave
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.money import PROMPT_FILES, money_prompts, money_words
from tests.ivr.scripted import ScriptedChannel
from tests.ivr.test_engine import OFFICE, OWNER, Services, _engine

READINGS = [
    ("1280.50", "一千二百八十元五角"),
    ("1280.40", "一千二百八十元四角"),
    ("1005.05", "一千零五元零五分"),
    ("0.30", "三角"),
    ("0.05", "五分"),
    ("0.35", "三角五分"),
    ("1.05", "一元零五分"),
    ("100.30", "一百元三角"),
    ("100.05", "一百元零五分"),
    ("1280.00", "一千二百八十元"),     # no 整, nothing for trailing zeros
    ("10", "十元"),                   # 十, not 一十, at the head
    ("15.5", "十五元五角"),
    ("110", "一百一十元"),            # 一十 inside a number
    ("1050", "一千零五十元"),
    ("10005", "一万零五元"),
    ("100010", "十万零一十元"),
    ("150000", "十五万元"),
    ("1000000", "一百万元"),
    ("10001000", "一千万一千元"),
    ("100001000", "一亿零一千元"),
    ("100000005", "一亿零五元"),
    # 两 counts 千, 万, 亿 and a leading 百; every other 2 is 二
    ("20000", "两万元"),
    ("2000", "两千元"),
    ("200", "两百元"),
    ("12000", "一万两千元"),
    ("32000", "三万两千元"),
    ("3200", "三千二百元"),
    ("220000", "二十二万元"),
    ("200000000", "两亿元"),
    ("22", "二十二元"),
    ("12", "十二元"),
    ("2", "二元"),
    ("0.2", "二角"),
    ("0.02", "二分"),
    # rounding to the fen, half up; zero and credit
    ("0.005", "一分"),
    ("0.004", "零元"),
    ("0", "零元"),
    ("-5", "负五元"),
    ("-0.5", "负五角"),
]


@pytest.mark.parametrize(("amount", "words"), READINGS)
def test_an_amount_is_read_as_chinese_money(amount: str, words: str) -> None:
    assert money_words(Decimal(amount)) == words


def test_ints_and_strings_read_the_same_as_decimals() -> None:
    assert money_words(1280) == money_words("1280") == money_words(Decimal("1280.00")) == "一千二百八十元"


@pytest.mark.parametrize("bad", [None, "", "abc", "NaN", "Infinity", Decimal("1e16")])
def test_what_is_no_amount_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="金额"):
        money_words(bad)  # type: ignore[arg-type]


def test_the_prompts_say_the_reading_one_file_per_character() -> None:
    assert money_prompts(Decimal("1280.50")) == [
        "digits/1", "digits/thousand", "digits/2", "digits/hundred", "digits/8", "digits/10",
        "money/yuan", "digits/5", "money/jiao"]
    assert money_prompts(Decimal("20000.02")) == [
        "money/liang", "digits/wan", "money/yuan", "digits/0", "digits/2", "money/fen"]
    spoken = {v: k for k, v in PROMPT_FILES.items()}
    for amount, words in READINGS:
        assert "".join(spoken[f] for f in money_prompts(amount)) == words


def test_prompts_build_makes_every_file_a_reading_plays() -> None:
    """Each file is one ``callcenter prompts build`` renders: Asterisk's digit
    files SAY NUMBER uses, and the money/ ones."""
    from ivr.money import PROMPT_TEXTS
    from ivr.prompts import number_words

    built = {**number_words(), **PROMPT_TEXTS}
    assert set(PROMPT_FILES.values()) <= set(built)
    for char, name in PROMPT_FILES.items():
        assert built[name] == char, name


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                    reason="espeak-ng and sox are installed by scripts/test.sh")
def test_prompts_build_renders_the_money_files(tmp_path: Path) -> None:
    from ivr.prompts import build_prompts

    report = build_prompts({}, tmp_path)
    for name in ("money/yuan", "money/jiao", "money/fen", "money/liang"):
        assert name in report.rendered
        with wave.open(str(tmp_path / "zh" / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels()) == (8000, 1) and w.getnframes() > 400


async def test_the_fee_menu_reads_the_arrears_to_the_fen() -> None:
    s = Services(caller=OWNER, arrears=Decimal("1280.50"))
    ch = ScriptedChannel(["3"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    played = ch.played()
    start = played.index("fee-arrears") + 1
    assert played[start:start + 9] == money_prompts(Decimal("1280.50"))
    assert played[start + 9] == "goodbye"
    assert not any(c.startswith("SAY NUMBER") for c in ch.commands)
    assert "fee-yuan" not in played  # 元 is part of the reading now


@pytest.mark.parametrize("arrears", [None, Decimal("0"), Decimal("-12.5"), Decimal("0.004")])
async def test_nothing_owed_is_said_as_no_arrears(arrears: Decimal | None) -> None:
    s = Services(caller=OWNER, arrears=arrears)
    ch = ScriptedChannel(["3"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert "fee-none" in ch.played() and "fee-arrears" not in ch.played()


async def test_a_missing_money_sound_does_not_cut_the_caller_off() -> None:
    """A site that has not built the money/ files yet: Asterisk answers each
    missing file with result=-1 endpos=0; the caller still hears the rest."""
    s = Services(caller=OWNER, arrears=Decimal("5.5"))
    ch = ScriptedChannel(["3"], missing={"money/yuan", "money/jiao"})
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ch.played()[-1] == "goodbye" and any(c == "HANGUP" for c in ch.commands)
