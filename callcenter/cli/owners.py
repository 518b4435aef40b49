"""owners lookup."""

from __future__ import annotations

import argparse
import json
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("owners", help="look up owners in the directory",
                       description="Look up owners, tenants and family members in the directory.")
    osub = p.add_subparsers(dest="owners_command", metavar="ACTION", required=True)
    lk = osub.add_parser("lookup", help="who does this phone number find?",
                         description="Print the people a phone number finds (any form: "
                                     "13812345678, +86..., 0755-...). Exit 1 when nobody is found.")
    lk.add_argument("number")
    lk.add_argument("--json", action="store_true", help="print a JSON list")
    lk.set_defaults(func=cmd_lookup)


def cmd_lookup(args: argparse.Namespace) -> int:
    from callcenter.directory.services import lookup_by_number

    settings = settings_from_args(args)

    async def go(sm: Any) -> list[Any]:
        async with sm() as session:
            return await lookup_by_number(session, args.number)

    people = run_with_db(settings, go)
    if args.json:
        print(json.dumps([p.to_json() for p in people], ensure_ascii=False, indent=2))
    else:
        for p in people:
            tags = f" [{', '.join(p.tags)}]" if p.tags else ""
            print(f"{p.name} ({p.role}){tags}")
            for u in p.units:
                print(f"  {u.label}  欠费 {u.arrears} 元")
        if not people:
            print("未找到 / nobody found")
    return 0 if people else 1
