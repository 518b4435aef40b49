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
from ticketing.triage.pinyin import by_sound
from ticketing.triage.rules import (
    Lexicon,
    find_emergency,
    find_emergency_match,
    load_lexicon,
    old_problem_end,
    score_categories,
)

CATEGORIES = ("plumbing", "electrical", "elevator", "gas", "fire", "door_access",
              "public_facility", "sanitation", "noise", "security", "parking", "fees",
              "complaint", "other")


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
        for twin, how in ((lex.by_sound, "读音相同"), (lex.by_near_sound, "读音相近")):
            if twin is None:
                continue
            spelled = by_sound(text, twin is lex.by_near_sound)
            found = find_emergency_match(spelled, twin, after=old_problem_end(spelled, twin),
                                         heard=text)
            if found is None:
                continue
            rule, m = found
            if category == "other":
                category = rule.category
            if twin is lex.by_sound and _anchored(text[m.start():m.end()], lex, rule.name):
                # Same sounds, and a word of the rule heard as written: "燃气 违" is 燃气味.
                return TriageResult(rule.category, True, where.building, where.unit, where.room)
            unsure = True
            reason = (f"留言中有与“{CATEGORY_LABELS.get(rule.category, rule.category)}”"
                      f"紧急情况{how}的说法，可能是识别错误")
            break
    return TriageResult(category, emergency, where.building, where.unit, where.room,
                        unsure, reason)


def _anchored(span: str, lex: Lexicon, rule: str) -> bool:
    """Whether a word of ``rule`` (``EmergencyRule.anchors``) is spelled out in ``span``."""
    anchors = next(r.anchors for r in lex.emergencies if r.name == rule)
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
