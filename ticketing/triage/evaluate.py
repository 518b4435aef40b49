"""Score triage on a labelled JSONL set, clean or with ASR noise.

``python -m ticketing.triage.evaluate tests/fixtures/triage/independent.jsonl --noise 0.2 --seed 1``
prints per-category precision/recall, emergency precision/recall (and how
many of the missed ones would reach night duty as "listen" notices), location
accuracy and a confusion table (rows: label, columns: triage).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketing.triage import CATEGORIES, TriageResult, triage
from ticketing.triage.noise import add_noise

LOCATION = ("building", "unit", "room")
SHORT = {"plumbing": "plu", "electrical": "ele", "elevator": "lift", "gas": "gas", "fire": "fire",
         "door_access": "door", "public_facility": "pub", "sanitation": "san", "noise": "noi",
         "security": "sec", "parking": "park", "fees": "fee", "complaint": "cpl", "other": "oth"}


@dataclass
class Scores:
    n: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    fn_listened: int = 0  # missed emergencies that triage was unsure about (a listen notice)
    unsure: int = 0
    correct: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("category", *LOCATION), 0))
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    misses: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def emergency_precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def emergency_recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def recall_with_listen(self) -> float:
        """Emergencies paged or sent to night duty to listen."""
        return (self.tp + self.fn_listened) / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def accuracy(self, key: str) -> float:
        return self.correct[key] / self.n if self.n else 1.0

    def category_pr(self, cat: str) -> tuple[float, float, int]:
        tp = self.confusion.get((cat, cat), 0)
        said = sum(v for (_, g), v in self.confusion.items() if g == cat)
        labelled = sum(v for (w, _), v in self.confusion.items() if w == cat)
        return (tp / said if said else 1.0), (tp / labelled if labelled else 1.0), labelled


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: Iterable[dict[str, Any]], rate: float = 0.0, seed: int = 0,
          fn: Callable[[str], TriageResult] = triage) -> Scores:
    s = Scores()
    for row in rows:
        text = add_noise(row["text"], rate, seed) if rate else row["text"]
        result = fn(text)
        got, want = result.to_dict(), row["expect"]
        s.n += 1
        unsure = result.unsure
        s.unsure += unsure
        if got["emergency"] and want["emergency"]:
            s.tp += 1
        elif got["emergency"]:
            s.fp += 1
        elif want["emergency"]:
            s.fn += 1
            s.fn_listened += unsure
        for key in s.correct:
            s.correct[key] += got[key] == want[key]
        pair = (want["category"], got["category"])
        s.confusion[pair] = s.confusion.get(pair, 0) + 1
        if any(got[k] != want[k] for k in ("category", "emergency", *LOCATION)):
            s.misses.append((row["id"], text, want, got))
    return s


def report(s: Scores, title: str, misses: bool = False) -> str:
    lines = [f"## {title}", "",
             f"emergency: precision {s.emergency_precision:.3f}  recall {s.emergency_recall:.3f}  "
             f"(tp {s.tp}, fp {s.fp}, fn {s.fn}; missed but sent to listen {s.fn_listened}; "
             f"recall incl. listen {s.recall_with_listen:.3f}; unsure {s.unsure})",
             "accuracy: " + "  ".join(f"{k} {s.accuracy(k):.3f}" for k in s.correct), "",
             "| category | n | precision | recall |", "|---|---|---|---|"]
    for cat in CATEGORIES:
        p, r, n = s.category_pr(cat)
        lines.append(f"| {cat} | {n} | {p:.2f} | {r:.2f} |")
    lines += ["", "confusion (rows: label, columns: triage; a dot is 0):", "",
              "| label \\ triage | " + " | ".join(SHORT[c] for c in CATEGORIES) + " |",
              "|---" * (len(CATEGORIES) + 1) + "|"]
    for want in CATEGORIES:
        cells = [str(s.confusion.get((want, got), 0) or ".") for got in CATEGORIES]
        lines.append(f"| {want} | " + " | ".join(cells) + " |")
    if misses:
        lines += ["", "misses:"]
        lines += [f"- {i} {t}\n    want {w}\n    got  {g}" for i, t, w, g in s.misses]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ticketing.triage.evaluate", description=__doc__)
    p.add_argument("file", type=Path, nargs="+", help="labelled JSONL (id, text, expect)")
    p.add_argument("--noise", type=float, default=0.0, help="share of characters replaced (0–1)")
    p.add_argument("--seed", type=int, action="append", help="noise seed (repeatable; default 1)")
    p.add_argument("--misses", action="store_true", help="list every line triage got wrong")
    args = p.parse_args(argv)
    if not 0 <= args.noise <= 1:
        p.error("--noise must be between 0 and 1")
    for path in args.file:
        rows = load_rows(path)
        for seed in (args.seed or [1]) if args.noise else [0]:
            title = f"{path.name}, noise {args.noise:.0%}" + (f", seed {seed}" if args.noise else "")
            print(report(score(rows, args.noise, seed), title, args.misses))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
