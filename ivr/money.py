"""An amount of money as Mandarin reads it out: 1280.50 → 一千二百八十元五角.

``money_words`` gives the reading; ``money_prompts`` the sound files that
speak it, one per character, which the IVR plays in turn. Asterisk's Chinese
``SAY NUMBER`` cannot help: it says an integer only, with no 元, 角 or 分, and
rounding a balance to the yuan misstates what an owner owes.

The reading is the one of telephone and bank notices: 元, then 角 and 分, with
零 where a place is skipped (1005.05 → 一千零五元零五分, 100.30 → 一百元三角),
nothing said for trailing zeros (1280.00 → 一千二百八十元, no 整), and 十 rather
than 一十 at the head of a number (15 → 十五元, 110 → 一百一十元).

两 or 二: a 2 that counts 千, 万 or 亿 is 两 (两千, 一万两千, 两万, 两亿), and
so is a leading 2 before 百 (两百); every other 2 is 二 (二十, 十二, 三千二百,
二元, 二角, 二分). That is how the amounts are spoken by Mandarin speakers and
prompts alike: nobody says 二万元 aloud, while 二元五角 is the register of a
money notice (两元 would be the colloquial 两块).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

DIGITS = "零一二三四五六七八九"
_GROUP_UNITS = ("", "万", "亿", "万亿")
_PLACE_UNITS = ("千", "百", "十", "")
MAX_AMOUNT = Decimal(10) ** 16  # 一万亿 groups: far beyond any fee

PROMPT_FILES: dict[str, str] = {
    **{d: f"digits/{i}" for i, d in enumerate(DIGITS)},
    "十": "digits/10",
    "百": "digits/hundred",
    "千": "digits/thousand",
    "万": "digits/wan",
    "亿": "digits/yi",
    "负": "digits/minus",
    "两": "money/liang",
    "元": "money/yuan",
    "角": "money/jiao",
    "分": "money/fen",
}
"""Each character of a reading → the sound file that says it. The digits are
the files Asterisk's own Chinese SAY NUMBER plays; the ``money/`` ones are
rendered by ``callcenter prompts build`` (:data:`PROMPT_TEXTS`)."""

PROMPT_TEXTS = {"money/liang": "两", "money/yuan": "元", "money/jiao": "角", "money/fen": "分"}


def _group(value: int, *, leading: bool) -> str:
    """0 < value < 10000 in words; ``leading``: the first group of the number."""
    digits = [int(c) for c in f"{value:04d}"]
    out: list[str] = []
    zero = False
    started = False
    for place, d in enumerate(digits):
        if d == 0:
            zero = started
            continue
        if zero:
            out.append("零")
            zero = False
        unit = _PLACE_UNITS[place]
        if d == 2 and (unit == "千" or (unit == "百" and leading and not started)):
            out.append("两")
        elif d == 1 and unit == "十" and leading and not started:
            pass  # 十五, not 一十五
        else:
            out.append(DIGITS[d])
        out.append(unit)
        started = True
    return "".join(out)


def integer_words(value: int) -> str:
    """A non-negative integer in Chinese: 20000 → 两万, 1005 → 一千零五."""
    if value < 0:
        raise ValueError("negative")
    if value == 0:
        return "零"
    groups: list[int] = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    if len(groups) > len(_GROUP_UNITS):
        raise ValueError("amount too large")
    out: list[str] = []
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        g = groups[index]
        if g == 0:
            pending_zero = bool(out)
            continue
        leading = not out
        if out and (pending_zero or g < 1000):
            out.append("零")
        words = _group(g, leading=leading)
        if index and words == "二":
            words = "两"  # 两万, 两亿
        out.append(words + _GROUP_UNITS[index])
        pending_zero = False
    return "".join(out)


def to_fen(amount: Decimal | int | str | None) -> int:
    """The amount in fen, rounded half up; a clear error for what is not one."""
    if amount is None:
        raise ValueError("没有金额 / no amount")
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"不是金额 / not an amount: {amount!r}") from None
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise ValueError(f"金额超出范围 / amount out of range: {amount!r}")
    return int(value * 100)


def money_words(amount: Decimal | int | str | None) -> str:
    """1280.50 → 一千二百八十元五角; 0.30 → 三角; -5 → 负五元; 0 → 零元.
    None or anything that is no number raises ``ValueError``."""
    fen = to_fen(amount)
    sign = "负" if fen < 0 else ""
    fen = abs(fen)
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    parts: list[str] = []
    if yuan:
        parts.append(integer_words(yuan) + "元")
    if jiao:
        parts.append(DIGITS[jiao] + "角")
    if cents:
        parts.append(("零" if yuan and not jiao else "") + DIGITS[cents] + "分")
    return sign + ("".join(parts) or "零元")


def money_prompts(amount: Decimal | int | str | None) -> list[str]:
    """The sound files that say ``money_words(amount)``, in order."""
    return [PROMPT_FILES[c] for c in money_words(amount)]
