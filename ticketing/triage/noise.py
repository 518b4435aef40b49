"""ASR-noise variants of a transcript: homophone and near-homophone substitutions.

Small Mandarin speech models mostly get the sound right and the character
wrong (漏水 → 楼水, 停电 → 停店), or confuse sounds Mandarin speakers merge
(zh/z, ch/c, sh/s, n/l, an/ang, en/eng, in/ing). ``add_noise`` replaces a
given share of the Chinese characters of a transcript with such a character,
drawn from the common characters of pypinyin's phrase dictionary, seeded so
that a score on a noisy set can be reproduced.
"""

from __future__ import annotations

import random

from pypinyin import Style, lazy_pinyin

from ticketing.triage.pinyin import homophones, is_han

# (initial, initial) and (final, final) pairs speakers and small models merge.
_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"), ("iang", "ian"), ("uang", "uan"))
NEAR_SHARE = 0.3  # of substitutions, the rest being exact (toneless) homophones


def near_syllables(syllable: str) -> list[str]:
    """The syllables one common confusion away (``zhang`` → ``zang``, ``zhan``)."""
    out: list[str] = []
    for a, b in _INITIALS:
        for x, y in ((a, b), (b, a)):
            # "z" is not the start of "zh"
            if syllable.startswith(x) and not (len(x) == 1 and syllable.startswith(x + "h")):
                out.append(y + syllable[len(x):])
    for a, b in _FINALS:
        for x, y in ((a, b), (b, a)):
            if syllable.endswith(x) and not (x == "an" and syllable.endswith("ian") and y == "ang"):
                out.append(syllable[: -len(x)] + y)
    table = homophones()
    return [s for s in dict.fromkeys(out) if s in table and s != syllable]


def substitute(c: str, rng: random.Random) -> str:
    """A character that sounds like ``c`` (a near sound with chance NEAR_SHARE)."""
    syllable = lazy_pinyin(c, style=Style.NORMAL)[0]
    table = homophones()
    near = near_syllables(syllable)
    pools = []
    if near and rng.random() < NEAR_SHARE:
        pools.append(table[rng.choice(near)])
    pools.append(tuple(x for x in table.get(syllable, ()) if x != c))
    pools.extend(table[s] for s in near)
    for pool in pools:
        if pool:
            # Common characters are likelier ASR output: draw from the first ones.
            return rng.choice(pool[:12])
    return c


def add_noise(text: str, rate: float, seed: int) -> str:
    """``text`` with ``round(rate × Chinese characters)`` of them replaced by sound-alikes.

    The positions and substitutes depend only on ``text``, ``rate`` and ``seed``.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be between 0 and 1, not {rate}")
    rng = random.Random(f"{seed}:{text}")
    chars = list(text)
    han = [i for i, c in enumerate(chars) if is_han(c)]
    for i in sorted(rng.sample(han, round(rate * len(han)))):
        chars[i] = substitute(chars[i], rng)
    return "".join(chars)


def changed_share(clean: str, noisy: str) -> float:
    """The share of Chinese characters of ``clean`` that differ in ``noisy``."""
    han = [i for i, c in enumerate(clean) if is_han(c)]
    return sum(clean[i] != noisy[i] for i in han) / len(han) if han else 0.0


__all__ = ["add_noise", "changed_share", "homophones", "near_syllables", "substitute"]
