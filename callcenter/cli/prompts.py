"""prompts build: speak every prompt without a recording (espeak-ng)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from callcenter.cli.common import settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("prompts", help="render missing voice prompts from their text",
                       description="Voice prompts for the hotline and for pages.")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    b = psub.add_parser(
        "build", help="render every prompt without a recording (espeak-ng, 8 kHz WAV)",
        description="Render each prompt of the menus and of the page call that has no recording "
                    "yet into <out>/<lang>/<name>.wav, with the digit files SAY NUMBER needs and the "
                    "两/元/角/分 files (money/) the fee balance is read out with, and the "
                    "outage notices' generic prompt and 按1 prompt (docs/OUTAGES.md). "
                    "Copy the folder into Asterisk's sounds directory.")
    b.add_argument("--lang", default="zh")
    b.add_argument("--out", type=Path, help="default: <data_dir>/sounds")
    b.add_argument("--force", action="store_true", help="re-render prompts that exist")
    b.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from callcenter.outbound.fee_call import PROMPT_TEXTS as FEE_TEXTS
    from callcenter.outbound.survey_call import PROMPT_TEXTS as SURVEY_TEXTS
    from callcenter.paging.page_call import PROMPT_TEXTS
    from ivr.menus import MenuStore
    from ivr.outages.prompts import PROMPT_TEXTS as OUTAGE_TEXTS
    from ivr.prompts import PromptToolMissing, build_prompts

    settings = settings_from_args(args)
    store = MenuStore(*settings.ivr_menus)
    texts = {k: v for menus in store.all().values() for k, v in menus.prompts.items()}
    texts.update(PROMPT_TEXTS)
    texts.update(SURVEY_TEXTS)
    texts.update(FEE_TEXTS)
    texts.update(OUTAGE_TEXTS)  # the notices' generic prompt and 按1仍需人工服务
    out = args.out or settings.data_dir / "sounds"
    try:
        report = build_prompts(texts, out, lang=args.lang, force=args.force)
    except PromptToolMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"rendered {len(report.rendered)}, kept {len(report.skipped)} existing, in {out / args.lang}")
    return 0
