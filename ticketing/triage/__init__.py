"""Voicemail triage: a transcript in, category / emergency / building / unit / room out.

Rules, not a model: keyword weights and emergency patterns live in
``lexicon/*.toml`` so a property company can extend them; numbers are read
the way Chinese speech recognition writes them (see ``numerals``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ticketing.triage.location import extract_location
from ticketing.triage.pinyin import FUNCTION_CHARS, by_sound, fold, heard_as, is_han, readings
from ticketing.triage.rules import (
    EmergencyRule,
    Lexicon,
    emergency_matches,
    find_emergency,
    load_lexicon,
    negated_spans,
    old_problem_end,
    score_categories,
)

CATEGORIES = ("plumbing", "electrical", "elevator", "gas", "fire", "door_access",
              "public_facility", "sanitation", "noise", "security", "parking", "fees",
              "complaint", "other")


# Said just before a match by sound (within _WITNESS_BEFORE characters), a word the
# caller uses for what they smelt or saw makes the match trusted (see ``_paged``).
WITNESSED = ("闻到", "闻见", "看到", "看见", "发现")
_WITNESS_BEFORE = 4

CATEGORY_LABELS = {"plumbing": "漏水", "electrical": "整栋停电", "elevator": "电梯困人",
                   "gas": "燃气泄漏", "fire": "火情"}


@dataclass(frozen=True, slots=True)
class TriageResult:
    category: str
    emergency: bool
    building: str | None
    unit: str | None
    room: str | None
    unsure: bool = False
    """Maybe an emergency: a person should listen (see ``unsure_reason``)."""
    unsure_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.unsure:
            del d["unsure"], d["unsure_reason"]
        return d


@lru_cache(maxsize=4)
def _lexicon(path: str | None) -> Lexicon:
    return load_lexicon(Path(path) if path else None)


def normalize(text: str) -> str:
    """Full-width to half-width, ASR spaces and punctuation out."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if not c.isspace() and c not in "，。,.!?！？、；;：:\"'“”")


def triage(text: str, lexicon: Lexicon | None = None) -> TriageResult:
    """Category and emergency from the transcript as heard, then by sound.

    Lexicon words heard as sound-alikes are respelled first (楼水 → 漏水: same
    toneless pinyin, a character in common). When that finds no emergency, the
    rules are read over sounds (``pinyin.by_sound``: every character stands for
    its syllable), then with merged sounds (zh/z, n/l, an/ang …); an emergency
    found only that way is ``unsure``: not paged, but someone listens (night
    duty at night). The location is read from the transcript as heard.
    """
    lex = lexicon or _lexicon(None)
    joined = normalize(text)
    where = extract_location(joined)
    heard = lex.sounds.repair(joined) if lex.sounds is not None else None
    category, emergency = _classify(heard.text if heard else joined, lex)
    unsure, reason = False, ""
    if not emergency:
        text = heard.text if heard else joined
        cues: list[tuple[EmergencyRule, int, int, bool]] = []
        twins = [t for t in (lex.by_sound, lex.by_near_sound) if t is not None]
        spelled_by = {id(t): by_sound(text, t is lex.by_near_sound) for t in twins}
        # What is negated as heard or by sound ("没有 着火", "没幽 辙火") is no cue:
        # 火四 is not 火势 when it is the 火 of 没有 着火 四 栋.
        ruled_out = negated_spans(text, lex)
        for twin in twins:
            ruled_out += negated_spans(spelled_by[id(twin)], twin, text)
        for twin in twins:
            spelled = spelled_by[id(twin)]
            for rule, m in emergency_matches(spelled, twin, old_problem_end(spelled, twin), text):
                if not any(a < m.end() and m.start() < b for a, b in ruled_out):
                    cues.append((rule, m.start(), m.end(), twin is lex.by_near_sound))
        if cues:
            rule = cues[0][0]
            if category == "other":
                category = rule.category
            paged = _paged(cues, text, lex)
            if paged is not None:
                return TriageResult(paged.category, True, where.building, where.unit, where.room)
            unsure = True
            how = "读音相近" if cues[0][3] else "读音相同"
            reason = (f"留言中有与“{CATEGORY_LABELS.get(rule.category, rule.category)}”"
                      f"紧急情况{how}的说法，可能是识别错误")
    return TriageResult(category, emergency, where.building, where.unit, where.room,
                        unsure, reason)


def _paged(cues: list[tuple[EmergencyRule, int, int, bool]], text: str, lex: Lexicon
           ) -> EmergencyRule | None:
    """The rule of a match by sound that is trusted enough to page: one with a word of
    its rule heard as written in it ("燃气 违" is 燃气味, "水管 脱诺" is 水管脱落), else
    one with a word of its rule heard with at most half of its characters by sound
    and the rest as written ("在 漏 起" is 漏气, "污髓 从 井 里 冒" is 污水 …), else one
    the caller says they smelt or saw, heard as written just before it ("闻到 一 股
    稍 塑料 的 味道": 烧 heard as 稍), else one the rule reads as written once the
    particles heard by sound are read back ("屋里 都 肆 烟": 是 heard as 肆)."""
    for rule, a, b, _ in cues:
        if _anchored(text[a:b], lex, rule.name):
            return rule
    for rule, a, b, near in cues:
        if _anchored(text[a:b], lex, rule.name, near):
            return rule
    for rule, a, _, _ in cues:
        if any(w in text[max(0, a - _WITNESS_BEFORE):a + 2] for w in WITNESSED):
            return rule
    for rule, a, b, near in cues:
        if _heard_but_particles(text, a, b, near, lex, rule.name):
            return rule
    return None


# Particles heard by sound (是 as 肆 / 斯, 了 as 乐): reading them back is how
# "都 肆 烟" is 都是烟 (see ``_paged``).
_PARTICLES = "是了的在着过"


def _heard_but_particles(text: str, a: int, b: int, near: bool, lex: Lexicon, rule: str) -> bool:
    """Whether ``rule`` matches as written in ``text[a:b]`` once the characters that
    sound like a particle (``_PARTICLES``) are read as that particle."""
    fixed = text[:a] + "".join(_particle(c, near) for c in text[a:b]) + text[b:]
    if fixed == text:
        return False
    return any(found.name == rule and m.start() < b and a < m.end()
               for found, m in emergency_matches(fixed, lex))


def _particle(c: str, near: bool) -> str:
    if c in FUNCTION_CHARS or not is_han(c):
        return c
    heard = readings(c)
    for f in _PARTICLES:
        said = readings(f)
        if heard & said or (near and {fold(x) for x in heard} & {fold(x) for x in said}):
            return f
    return c


def _anchored(span: str, lex: Lexicon, rule: str, near: bool | None = None) -> bool:
    """Whether a word of ``rule`` (``EmergencyRule.anchors``) is spelled out in ``span``;
    with ``near`` given, heard as that word (``pinyin.heard_as``)."""
    anchors = next(r.anchors for r in lex.emergencies if r.name == rule)
    if near is not None:
        return any(heard_as(span[i:i + len(w)], w, near) for w in anchors for i in range(len(span)))
    return any(span[i:j] in anchors
               for i in range(len(span)) for j in range(i + 2, min(len(span), i + 6) + 1))


def _classify(joined: str, lex: Lexicon) -> tuple[str, bool]:
    cut = old_problem_end(joined, lex)
    problem = joined[cut:]
    emergency = find_emergency(joined, lex, after=cut)
    if emergency is not None:
        category = emergency.category
    else:
        # "昨天 停电 了 现在 来电 了 想 问 原因": no new problem, so the old one decides.
        scores = score_categories(problem, lex) or score_categories(joined, lex)
        category = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c))) if scores else "other"
    return category, emergency is not None


__all__ = ["CATEGORIES", "TriageResult", "load_lexicon", "normalize", "triage"]
