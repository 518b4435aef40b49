"""Category and emergency from a transcript, driven by the lexicon files.

``emergencies.toml`` holds, besides the five rules, the word classes their
patterns share (``{person}`` in a pattern stands for any word of
``[classes] person``), how negation is read, and how an old, solved problem
is told from the new one. A company's copy may leave out everything but the
rules; what it leaves out is read from the built-in file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ticketing.triage.pinyin import FUNCTION_CHARS, SoundIndex, by_sound, pattern_words

LEXICON_DIR = Path(__file__).parent / "lexicon"
_CLASS_REF = re.compile(r"\{([a-z_]+)\}")
_TAIL = 16  # characters before a match in which a negation is looked for
_AFTER = 40  # characters after a match in which a retraction is looked for
# "不是 电梯 的 问题 是 ..." / "不是 我 家 漏水 是 ...": what is ruled out does not count.
_RULED_OUT = r"不是.{1,10}?(?:的问题|问题|是)"
# The characters that make a negation, as written (see ``Negation.negates``).
_NEGATORS = "没不无未"
_NOT_ANCHORS = ("person",)


@dataclass(frozen=True)
class EmergencyRule:
    name: str
    category: str
    patterns: tuple[re.Pattern[str], ...]
    # Words of two or more characters that, heard as written inside a match by
    # sound, make it trusted: the literal words of the rule's patterns and of the
    # word classes they use (燃气 of {gas}, 停电 of {power_out}), not {person}.
    anchors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Negation:
    """A negator, then at most two bridge words ("没 闻到", "不 是"), then the match.

    A question ("是不是", "有没有") is not a negation: the caller is unsure,
    and an unsure emergency is still paged. ``inside`` are phrases that
    negate a match they fall in ("电梯 里 没有 人 被困").
    """

    before: re.Pattern[str]
    question: re.Pattern[str]
    inside: tuple[re.Pattern[str], ...]
    after: tuple[re.Pattern[str], ...] = ()
    # The negator characters as written (没, 不, 无, 未 …) and as this lexicon spells
    # them (by sound: 没 stands for 没 / 美 / 煤 …); see ``negates``' ``heard``.
    written: frozenset[str] = frozenset()
    spelled: frozenset[str] = frozenset()
    bridge: re.Pattern[str] | None = None

    def negates(self, text: str, start: int, end: int, heard: str | None = None) -> bool:
        """Whether the match ``text[start:end]`` is negated or taken back.

        ``heard``: when ``text`` is a transcript read by sound (``pinyin.by_sound``,
        same length), the transcript as heard. A negation found by sound that
        rests on a negator's sound then counts only if a negator is heard as
        written, or the negator is a word ("媚由 闻到" is 没有 闻到), or it is
        followed by a bridge that is not a grammatical word ("眉 看到 烟" is 没
        看到 烟): by sound 喂 is 未, 五 is 无, 部 is 不 and 煤气 is 没气, so "喂 电梯
        停 了 有 人 在 里面", "有 煤气 味" and "为 什么 冒烟" are not negated.
        """
        def said(m: re.Match[str] | None, offset: int = 0, trusted: bool = False) -> bool:
            if m is None:
                return False
            if heard is None:
                return True
            at = range(offset + m.start(), offset + m.end())
            sounds = [i for i in at if text[i] in self.spelled]
            return not sounds or trusted or any(heard[i] in self.written for i in sounds)

        lo = max(0, start - _TAIL)
        tail = text[lo:start]
        m = self.before.search(tail)
        if m is None or self.question.search(tail):
            pass
        elif said(m, lo, heard is not None and self._trusted(m, lo, text, start, heard)):
            return True
        if any(said(p.search(text, end, end + _AFTER)) for p in self.after):
            return True
        return any(said(p.search(text, start, end)) for p in self.inside)


    def _trusted(self, m: re.Match[str], lo: int, text: str, start: int, heard: str) -> bool:
        """A negator heard by sound that is still a negation: see ``negates``."""
        if len(m.group("neg")) > 1:
            return True
        if m.end() > m.end("neg"):
            bridge = heard[lo + m.end("neg"):lo + m.end()]
        else:
            b = self.bridge.match(text, start) if self.bridge else None
            bridge = heard[start:b.end()] if b else ""
        return len(bridge) >= 2 and any(c not in FUNCTION_CHARS for c in bridge)


@dataclass(frozen=True)
class Lexicon:
    keywords: dict[str, dict[str, float]]
    emergencies: tuple[EmergencyRule, ...]
    negations: tuple[str, ...]
    negation: Negation
    old_problem: re.Pattern[str]
    ruled_out: re.Pattern[str] = re.compile(_RULED_OUT)
    sounds: SoundIndex | None = None
    # The same rules over sounds instead of characters (``pinyin.by_sound``):
    # exact toneless syllables, and with merged sounds (zh/z, n/l, an/ang …).
    by_sound: Lexicon | None = None
    by_near_sound: Lexicon | None = None


def _alternation(words: list[str]) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


def _expand(pattern: str, classes: dict[str, str], where: str) -> re.Pattern[str]:
    def sub(m: re.Match[str]) -> str:
        try:
            return classes[m.group(1)]
        except KeyError:
            raise ValueError(f"{where}: unknown word class {{{m.group(1)}}}") from None

    return re.compile(_CLASS_REF.sub(sub, pattern))


def _old_problem(spec: dict[str, Any], classes: dict[str, str]) -> re.Pattern[str]:
    """Past marker … resolved (not "没修好") … then, optionally, a pivot to the new problem."""
    past, resolved, pivot = (_alternation([str(w) for w in spec[k]])
                             for k in ("past", "resolved", "pivot"))
    not_before = "".join(f"(?<!{re.escape(str(w))})" for w in spec.get("not_resolved_after", ()))
    return re.compile(rf"{past}.{{0,30}}?{not_before}{resolved}了?(?:.{{0,6}}?{pivot})?")


def load_lexicon(directory: Path | None = None) -> Lexicon:
    """The built-in lexicon, or a company's extended copy of the same two files."""
    return replace(
        _load(directory, str),
        by_sound=_load(directory, by_sound),
        by_near_sound=_load(directory, lambda s: by_sound(s, near=True)),
    )


def _respell(spec: Any, spell: Callable[[str], str]) -> Any:
    if isinstance(spec, str):
        return spell(spec)
    if isinstance(spec, dict):
        return {spell(k): _respell(v, spell) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_respell(v, spell) for v in spec]
    return spec


def _load(directory: Path | None, spell: Callable[[str], str]) -> Lexicon:
    base = directory or LEXICON_DIR
    with open(base / "categories.toml", "rb") as fh:
        categories = tomllib.load(fh)
    with open(base / "emergencies.toml", "rb") as fh:
        emergencies = tomllib.load(fh)
    if base != LEXICON_DIR:
        with open(LEXICON_DIR / "emergencies.toml", "rb") as fh:
            builtin = tomllib.load(fh)
        for key in ("negations", "negation_bridges", "questions", "negated_inside",
                    "retractions", "classes", "old_problem"):
            emergencies.setdefault(key, builtin[key])
    if spell is not str:  # only Chinese characters change: keys and categories stay
        categories, emergencies = _respell(categories, spell), _respell(emergencies, spell)
    sounds = SoundIndex([*(w for words in categories.values() for w in words),
                         *_words(emergencies)])
    where = str(base / "emergencies.toml")
    class_words = emergencies.pop("classes")
    classes = {name: _alternation([str(w) for w in words]) for name, words in class_words.items()}
    negations = tuple(str(n) for n in emergencies.pop("negations"))
    bridges = _alternation([str(b) for b in emergencies.pop("negation_bridges")])
    questions = _alternation([str(q) for q in emergencies.pop("questions")])
    negation = Negation(
        before=re.compile(rf"(?P<neg>{_alternation(list(negations))}){bridges}{{0,2}}$"),
        question=re.compile(rf"{questions}{bridges}{{0,2}}$"),
        inside=tuple(_expand(p, classes, where) for p in emergencies.pop("negated_inside")),
        after=tuple(_expand(p, classes, where) for p in emergencies.pop("retractions", ())),
        written=frozenset(_NEGATORS),
        spelled=frozenset(spell(c) for c in _NEGATORS),
        bridge=re.compile(bridges),
    )
    old_problem = _old_problem(emergencies.pop("old_problem"), classes)
    rules = tuple(
        EmergencyRule(name, str(spec["category"]),
                      tuple(_expand(p, classes, f"{where} [{name}]") for p in spec["patterns"]),
                      _anchors([str(p) for p in spec["patterns"]], class_words))
        for name, spec in emergencies.items()
    )
    keywords = {cat: {str(k): float(v) for k, v in words.items()} for cat, words in categories.items()}
    return Lexicon(keywords, rules, negations, negation, old_problem,
                   re.compile(spell(_RULED_OUT)), sounds)


def _anchors(patterns: list[str], class_words: dict[str, Any]) -> frozenset[str]:
    """See ``EmergencyRule.anchors``: who is in a lift (我们, 孩子) is said in every
    kind of message and anchors nothing."""
    used = [class_words[c] for p in patterns for c in _CLASS_REF.findall(p)
            if c not in _NOT_ANCHORS and c in class_words]
    return frozenset(w for w in _words([patterns, used]) if len(w) >= 2)


def _words(spec: Any) -> list[str]:
    """Every literal word of the emergency file (patterns, classes, negation, old problems)."""
    if isinstance(spec, str):
        return pattern_words(spec)
    if isinstance(spec, dict):
        return [w for v in spec.values() for w in _words(v)]
    if isinstance(spec, list):
        return [w for v in spec for w in _words(v)]
    return []


def old_problem_end(text: str, lex: Lexicon) -> int:
    """Where the new problem starts when an old, solved one is mentioned first (else 0)."""
    m = lex.old_problem.search(text)
    return m.end() if m else 0


def current_problem(text: str, lex: Lexicon) -> str:
    """When an old, solved problem is mentioned first, only the new one counts."""
    return text[old_problem_end(text, lex):]


def find_emergency(text: str, lex: Lexicon, after: int = 0) -> EmergencyRule | None:
    """The first rule with a match that is not negated and reaches past ``after``.

    ``after`` is the end of an old, solved problem: a match wholly inside it
    is history, but one that only starts there ("之前 电梯 修好 了 今天 又 困 人")
    is not.
    """
    found = find_emergency_match(text, lex, after)
    return found[0] if found else None


def find_emergency_match(text: str, lex: Lexicon, after: int = 0, heard: str | None = None
                         ) -> tuple[EmergencyRule, re.Match[str]] | None:
    """:func:`find_emergency`, with the match; ``heard`` as in :meth:`Negation.negates`."""
    return next(emergency_matches(text, lex, after, heard), None)


def negated_spans(text: str, lex: Lexicon, heard: str | None = None) -> list[tuple[int, int]]:
    """Where a match of an emergency rule is negated or taken back ("没有 着火");
    ``heard`` as in :meth:`Negation.negates`."""
    return [(m.start(), m.end()) for rule in lex.emergencies for pattern in rule.patterns
            for m in pattern.finditer(text)
            if lex.negation.negates(text, m.start(), m.end(), heard)]


def emergency_matches(text: str, lex: Lexicon, after: int = 0, heard: str | None = None
                      ) -> Iterator[tuple[EmergencyRule, re.Match[str]]]:
    """Every match of :func:`find_emergency_match`, rule by rule."""
    # As heard, a negation may itself be misheard: "不 丝 着火" is 不是 着火, "昧友
    # 着火" is 没有 着火. Read it by sound too (``Negation.negates``' ``heard``).
    checks: list[tuple[Negation, str, str | None]] = [(lex.negation, text, heard)]
    if heard is None:
        for twin in (lex.by_sound, lex.by_near_sound):
            if twin is not None:
                checks.append((twin.negation, by_sound(text, twin is lex.by_near_sound), text))
    for rule in lex.emergencies:
        for pattern in rule.patterns:
            for m in pattern.finditer(text):
                if m.end() > after and not any(n.negates(t, m.start(), m.end(), h)
                                               for n, t, h in checks):
                    yield rule, m


def score_categories(text: str, lex: Lexicon) -> dict[str, float]:
    """Longest keywords first; a shorter keyword inside a longer match does not count again."""
    text = lex.ruled_out.sub(lambda m: "_" * len(m.group(0)), text)
    found: list[tuple[int, int, str, float]] = []
    for cat, words in lex.keywords.items():
        for word, weight in words.items():
            for m in re.finditer(re.escape(word), text):
                found.append((m.start(), m.end(), cat, weight))
    found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
    taken: list[tuple[int, int]] = []
    scores: dict[str, float] = {}
    for start, end, cat, weight in found:
        if any(start < b and a < end for a, b in taken):
            continue
        taken.append((start, end))
        scores[cat] = scores.get(cat, 0.0) + weight
    return scores
