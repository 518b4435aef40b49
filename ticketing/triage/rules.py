"""Category and emergency from a transcript, driven by the lexicon files."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

LEXICON_DIR = Path(__file__).parent / "lexicon"
_OLD_PROBLEM = re.compile(r"(上次|之前|以前|原来).{0,30}(修好|解决|处理好|弄好)了?.{0,6}?(这次|现在|今天|另外)")


@dataclass(frozen=True)
class EmergencyRule:
    name: str
    category: str
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class Lexicon:
    keywords: dict[str, dict[str, float]]
    emergencies: tuple[EmergencyRule, ...]
    negations: tuple[str, ...]


def load_lexicon(directory: Path | None = None) -> Lexicon:
    """The built-in lexicon, or a company's extended copy of the same two files."""
    base = directory or LEXICON_DIR
    with open(base / "categories.toml", "rb") as fh:
        categories = tomllib.load(fh)
    with open(base / "emergencies.toml", "rb") as fh:
        emergencies = tomllib.load(fh)
    negations = tuple(emergencies.pop("negations", ()))
    rules = tuple(
        EmergencyRule(name, str(spec["category"]), tuple(re.compile(p) for p in spec["patterns"]))
        for name, spec in emergencies.items()
    )
    keywords = {cat: {str(k): float(v) for k, v in words.items()} for cat, words in categories.items()}
    return Lexicon(keywords, rules, negations)


def current_problem(text: str) -> str:
    """When an old, solved problem is mentioned first, only the new one counts."""
    m = _OLD_PROBLEM.search(text)
    return text[m.end():] if m else text


def _negated(text: str, start: int, negations: tuple[str, ...]) -> bool:
    window = text[max(0, start - 4):start]
    return any(n in window for n in negations)


def find_emergency(text: str, lex: Lexicon) -> EmergencyRule | None:
    for rule in lex.emergencies:
        for pattern in rule.patterns:
            for m in pattern.finditer(text):
                if not _negated(text, m.start(), lex.negations):
                    return rule
    return None


def score_categories(text: str, lex: Lexicon) -> dict[str, float]:
    """Longest keywords first; a shorter keyword inside a longer match does not count again."""
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
