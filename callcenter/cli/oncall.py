"""oncall now: who is on call for a role, right now (or at --at)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.cli.common import run_with_db, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("oncall", help="on-call schedules",
                       description="On-call schedules (值班表): who answers for a role.")
    osub = p.add_subparsers(dest="oncall_command", metavar="ACTION", required=True)
    now = osub.add_parser("now", help="who is on call now?",
                          description="Print the people on call for ROLE in chain order "
                                      "(primary, backup, supervisor) and until when. "
                                      "Exit 1 when nobody is on call.")
    now.add_argument("--role", required=True, help="staff role, e.g. night_duty, engineer")
    now.add_argument("--community", help="community code (needed when there are several)")
    now.add_argument("--at", help="ISO time instead of now, e.g. 2026-11-23T22:00+08:00")
    now.add_argument("--json", action="store_true", help="print JSON")
    now.set_defaults(func=cmd_now)


def cmd_now(args: argparse.Namespace) -> int:
    from callcenter.errors import DomainError
    from callcenter.oncall.services import find_community, who_is_on_call

    settings = settings_from_args(args)
    tz = ZoneInfo(settings.timezone)
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"--at: not an ISO time: {args.at!r}")
            return 2
        if at.tzinfo is None:
            at = at.replace(tzinfo=tz)
    else:
        at = datetime.now(UTC)

    async def go(sm: Any) -> Any:
        async with sm() as session:
            comm = await find_community(session, args.community)
            return await who_is_on_call(session, comm, args.role, at), ZoneInfo(comm.timezone)

    try:
        answer, ctz = run_with_db(settings, go)
    except DomainError as exc:
        print(f"错误 / error: {exc.message}")
        return 2
    if args.json:
        print(json.dumps(answer.to_json(ctz), ensure_ascii=False, indent=2))
    else:
        until = answer.until.astimezone(ctz).strftime("%Y-%m-%d %H:%M") if answer.until else "—"
        if not answer.people:
            print(f"无人值班 / nobody on call (next cover from {until})")
        else:
            print(f"{answer.shift}  至 {until}")
            for p in answer.people:
                phones = " ".join(x for x in (p.extension and f"分机 {p.extension}",
                                              p.mobile and f"手机 {p.mobile}") if x)
                print(f"  {p.label:<10} {p.name}  {phones}")
    return 0 if answer.people else 1
