"""triage: a transcript (or a JSONL file of them) in, the ticket fields out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from callcenter.cli.common import settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser(
        "triage", help="triage a voicemail transcript: category, emergency, building, unit, room",
        description=("Print the triage of TEXT as JSON, or with --jsonl FILE ('-' for stdin) read "
                     'lines of {"id", "text"} and write one JSON line per input, in order.'))
    p.add_argument("text", nargs="?", help="a transcript (ASR output, words may be space-split)")
    p.add_argument("--jsonl", metavar="FILE", help="a file of JSON lines with id and text")
    p.add_argument("--lexicon", type=Path,
                   help="a folder with your own categories.toml and emergencies.toml "
                        "(default: the settings' [triage] lexicon, as the server triages)")
    p.set_defaults(func=cmd_triage)


def cmd_triage(args: argparse.Namespace) -> int:
    from ticketing.triage import load_lexicon, triage

    folder = args.lexicon if args.lexicon else settings_from_args(args).triage.lexicon
    lexicon = load_lexicon(folder) if folder else None
    if args.jsonl is None:
        if not args.text:
            print("给出 TEXT 或 --jsonl FILE / give TEXT or --jsonl FILE", file=sys.stderr)
            return 2
        print(json.dumps(triage(args.text, lexicon).to_dict(), ensure_ascii=False))
        return 0
    try:
        source: TextIO = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8-sig")  # noqa: SIM115
    except OSError as exc:
        print(f"{args.jsonl}: {exc.strerror}", file=sys.stderr)
        return 2
    bad = 0
    with source:
        for line_no, line in enumerate(source, start=1):
            if not line.strip():
                continue
            item_id: Any = None
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not a JSON object")
                item_id = item.get("id")
                text = item.get("text")
                if not isinstance(text, str):
                    raise ValueError("no text")
                out = {"id": item_id, **triage(text, lexicon).to_dict()}
            except ValueError as exc:
                bad += 1
                print(f"line {line_no}: {exc}", file=sys.stderr)
                out = {"id": item_id, "error": str(exc)}
            print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if bad else 0
