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
from ticketing.triage.rules import (
    Lexicon,
    find_emergency,
    load_lexicon,
    old_problem_end,
    score_categories,
)

CATEGORIES = ("plumbing", "electrical", "elevator", "gas", "fire", "door_access",
              "public_facility", "sanitation", "noise", "security", "parking", "fees",
              "complaint", "other")


@dataclass(frozen=True, slots=True)
class TriageResult:
    category: str
    emergency: bool
    building: str | None
    unit: str | None
    room: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=4)
def _lexicon(path: str | None) -> Lexicon:
    return load_lexicon(Path(path) if path else None)


def normalize(text: str) -> str:
    """Full-width to half-width, ASR spaces and punctuation out."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if not c.isspace() and c not in "，。,.!?！？、；;：:\"'“”")


def triage(text: str, lexicon: Lexicon | None = None) -> TriageResult:
    lex = lexicon or _lexicon(None)
    joined = normalize(text)
    cut = old_problem_end(joined, lex)
    problem = joined[cut:]
    emergency = find_emergency(joined, lex, after=cut)
    if emergency is not None:
        category = emergency.category
    else:
        # "昨天 停电 了 现在 来电 了 想 问 原因": no new problem, so the old one decides.
        scores = score_categories(problem, lex) or score_categories(joined, lex)
        category = max(scores, key=lambda c: (scores[c], -CATEGORIES.index(c))) if scores else "other"
    where = extract_location(joined)
    return TriageResult(category, emergency is not None, where.building, where.unit, where.room)


__all__ = ["CATEGORIES", "TriageResult", "load_lexicon", "normalize", "triage"]
