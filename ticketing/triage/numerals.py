"""Chinese numerals as ASR writes them, read both ways.

Digit by digit ("一二零一" → "1201", "幺" = 1, "两" = 2) when there is no
place word, positional otherwise ("十五" → "15", "二十一" → "21", "一百零二" → "102").
"""

from __future__ import annotations

DIGIT = {"零": 0, "〇": 0, "洞": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
         "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
PLACE = {"十": 10, "百": 100, "千": 1000}
NUMERAL_CHARS = "".join(DIGIT) + "".join(PLACE) + "0123456789"


def to_number(text: str) -> str | None:
    """``"一二零一"`` → ``"1201"``; ``"二十一"`` → ``"21"``; Arabic digits pass through."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return str(int(text)) if len(text) < 3 else text
    if all(c in DIGIT or c.isdigit() for c in text):
        return "".join(str(DIGIT[c]) if c in DIGIT else c for c in text)
    if not all(c in DIGIT or c in PLACE for c in text):
        return None
    total, current = 0, 0
    for c in text:
        if c in DIGIT:
            current = DIGIT[c]
        else:
            total += (current or 1) * PLACE[c]
            current = 0
    return str(total + current)
