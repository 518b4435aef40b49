"""Lexicon words found by their sound: 楼水 is 漏水, 停店 is 停电, 电题 is 电梯.

Speech recognition mostly gets the sound right and the character wrong.
``SoundIndex`` holds the toneless pinyin of every lexicon word of two or more
characters (category keywords, word classes, and the literal words of the
emergency patterns); ``repair`` rewrites a transcript so that a stretch that
sounds like a lexicon word is spelled as that word, and the ordinary rules
then read it. Two safeguards keep short words from matching too much: a
stretch must share at least one character with the word (a two-character
homophone of a whole word, e.g. 电题 → 电梯 yes, 店提 no), and single
characters are never matched by sound.

``near=True`` also folds the sounds small models and speakers merge
(zh/z, ch/c, sh/s, n/l, an/ang, en/eng, in/ing): such a match is weaker, and
triage treats an emergency found only through it as unsure.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PHRASES_DICT

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_CHAR_CLASS = re.compile(r"\[[^\]]*\]|\(\?<?[!=][^)]*\)")
# Grammatical words are heard right far more often than they are misheard for a
# lexicon word: 一下 is not 以下, 的水 is not 滴水, 可以 is not 可疑.
FUNCTION_CHARS = frozenset("的地得了着过是在有一以不没也都就还又才很太这那哪谁什么个们我你他她它吗呢吧啊呀哦嗯喂和跟")
_FOLD_INITIAL = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FOLD_FINAL = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))


def fold(syllable: str) -> str:
    """The syllable with merged sounds made one: ``zhang`` and ``zan`` both → ``zan``."""
    for a, b in _FOLD_INITIAL:
        if syllable.startswith(a):
            syllable = b + syllable[len(a):]
            break
    for a, b in _FOLD_FINAL:
        if syllable.endswith(a):
            return syllable[: -len(a)] + b
    return syllable


@lru_cache(maxsize=8192)
def readings(c: str) -> frozenset[str]:
    """Every toneless reading of a character (着 → zhe, zhao, zhuo); itself if not Chinese."""
    if not "\u4e00" <= c <= "\u9fff":
        return frozenset({c})
    return frozenset(pinyin(c, style=Style.NORMAL, heteronym=True)[0])


MIN_PHRASES = 8  # a character in fewer phrases of the dictionary is too rare to be ASR output


def is_han(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


@lru_cache(maxsize=1)
def homophones() -> dict[str, tuple[str, ...]]:
    """Toneless syllable → the common characters read that way (most common first),
    "common" meaning found in at least MIN_PHRASES phrases of pypinyin's dictionary."""
    counts: dict[str, int] = defaultdict(int)
    for phrase in PHRASES_DICT:
        for c in phrase:
            if is_han(c):
                counts[c] += 1
    by_sound: dict[str, list[str]] = defaultdict(list)
    for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= MIN_PHRASES:
            by_sound[lazy_pinyin(c, style=Style.NORMAL)[0]].append(c)
    return {s: tuple(cs) for s, cs in by_sound.items()}


@lru_cache(maxsize=1)
def _folded_representatives() -> dict[str, str]:
    out: dict[str, str] = {}
    for syllable, chars in sorted(homophones().items()):
        out.setdefault(fold(syllable), chars[0])
    return out


@lru_cache(maxsize=16384)
def sound_of(c: str, near: bool = False) -> str:
    """One character standing for every character read like ``c`` (with ``near``:
    or with a merged sound), so that 楼 and 漏 (lou), or 停 and 亭 (ting), are one."""
    if not is_han(c):
        return c
    syllable = lazy_pinyin(c, style=Style.NORMAL)[0]
    if near:
        return _folded_representatives().get(fold(syllable), c)
    chars = homophones().get(syllable)
    return chars[0] if chars else c


def by_sound(text: str, near: bool = False) -> str:
    """``text`` with every Chinese character replaced by its sound's representative;
    the length (and every regular-expression construct) is unchanged."""
    return "".join(sound_of(c, near) for c in text)


def pattern_words(pattern: str) -> list[str]:
    """The literal words (two or more Chinese characters) of a regular expression."""
    return _HAN_RUN.findall(_CHAR_CLASS.sub("|", pattern))


def heard_as(heard: str, word: str, near: bool = False) -> bool:
    """Whether ``heard`` is ``word`` with at most half of its characters (none of them
    grammatical) heard by sound, same or (``near``) merged: 漏起 is 漏气, 污髓 is 污水
    with ``near``; 毛促 is not 冒出 (no character as written)."""
    if len(heard) != len(word) or len(word) < 2:
        return False
    differ = [(a, b) for a, b in zip(heard, word, strict=True) if a != b]
    if 2 * len(differ) > len(word):
        return False
    for a, b in differ:
        if a in FUNCTION_CHARS or not is_han(a):
            return False
        ra, rb = readings(a), readings(b)
        if not ra & rb and not (near and {fold(x) for x in ra} & {fold(x) for x in rb}):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Repair:
    text: str
    exact: tuple[tuple[str, str], ...] = ()  # (heard, word) by same sound
    near: tuple[tuple[str, str], ...] = ()  # (heard, word) by a merged sound


class SoundIndex:
    def __init__(self, words: list[str]) -> None:
        self._by_first: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._words = frozenset(words)
        for w in sorted(set(words), key=lambda w: (-len(w), w)):  # not set order: one result per run
            if len(w) < 2 or not all("\u4e00" <= c <= "\u9fff" for c in w):
                continue
            syllables = tuple(lazy_pinyin(w, style=Style.NORMAL))
            self._by_first.setdefault(fold(syllables[0]), []).append((w, syllables))

    def _plausible(self, heard: str, word: str) -> bool:
        """Worth comparing by sound: no misheard grammatical word, a shared character
        in a two-character word, and no exact lexicon word inside (电梯停 is not 电梯厅)."""
        if len(heard) < len(word):
            return False
        differ = [a for a, b in zip(heard, word, strict=True) if a != b]
        if any(c in FUNCTION_CHARS for c in differ):
            return False
        if len(word) == 2 and len(differ) == 2:
            return False
        return not any(heard[i:j] in self._words for i in range(len(heard))
                       for j in range(i + 2, len(heard) + 1))

    def _match(self, text: str, i: int, word: str, syllables: tuple[str, ...], near: bool) -> str:
        """"exact", "near" or "" for ``word`` at ``text[i:]``."""
        if i + len(word) > len(text):
            return ""
        kind = "exact"
        for k, s in enumerate(syllables):
            r = readings(text[i + k])
            if s in r:
                continue
            if near and fold(s) in {fold(x) for x in r}:
                kind = "near"
                continue
            return ""
        return kind

    def repair(self, text: str, near: bool = False) -> Repair:
        out: list[str] = []
        exact: list[tuple[str, str]] = []
        close: list[tuple[str, str]] = []
        i = 0
        while i < len(text):
            found = None
            for r in sorted(readings(text[i])):
                for word, syllables in self._by_first.get(fold(r), ()):
                    heard = text[i:i + len(word)]
                    if heard == word:
                        if found is None or len(word) >= len(found[0]):
                            found = (word, heard, "same")
                        continue
                    if not self._plausible(heard, word):
                        continue
                    kind = self._match(text, i, word, syllables, near)
                    if kind and (found is None or len(word) > len(found[0])):
                        found = (word, heard, kind)
            if found is None:
                out.append(text[i])
                i += 1
                continue
            word, heard, kind = found
            out.append(word)
            if kind == "exact":
                exact.append((heard, word))
            elif kind == "near":
                close.append((heard, word))
            i += len(word)
        return Repair("".join(out), tuple(exact), tuple(close))


__all__ = ["Repair", "SoundIndex", "fold", "heard_as", "pattern_words", "readings"]
