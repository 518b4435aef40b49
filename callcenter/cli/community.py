"""community list | add | set: the communities and their hotline numbers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args
from callcenter.errors import DomainError


def register(sub: Any) -> None:
    p = sub.add_parser("community", help="list, add and edit communities and their hotline numbers",
                       description="Communities (小区): the code settings and menus name, the name "
                                   "the owner spreadsheet uses, and the hotline numbers a call's "
                                   "dialled number is matched against.")
    csub = p.add_subparsers(dest="community_command", metavar="ACTION", required=True)
    ls = csub.add_parser("list", help="code, name, hotline numbers and owners of each community")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.set_defaults(func=cmd_list)

    add = csub.add_parser("add", help="add a community",
                          description="Add a community. Add it before importing owners with the "
                                      "same 小区 name and the import keeps this code.")
    add.add_argument("code", help="short stable key: lower-case letters, digits, - and _")
    add.add_argument("--name", required=True, help="the name the owner spreadsheet uses (滨江花园)")
    add.add_argument("--hotline", action="append", default=[], metavar="NUMBER",
                     help="a hotline number of this community (repeatable)")
    add.set_defaults(func=cmd_add)

    st = csub.add_parser("set", help="rename a community, change its code or hotline numbers")
    st.add_argument("code")
    st.add_argument("--name")
    st.add_argument("--code", dest="new_code", metavar="NEW_CODE",
                    help="a new code (e.g. for a community the owner import created as c-...)")
    st.add_argument("--add-hotline", action="append", default=[], metavar="NUMBER")
    st.add_argument("--remove-hotline", action="append", default=[], metavar="NUMBER")
    st.set_defaults(func=cmd_set)


def _show(row: Any) -> str:
    hotlines = ", ".join(row.hotline_numbers) or "-"
    return f"{row.code}\t{row.name}\t热线 {hotlines}\t业主 {row.owners}"


def _fail(exc: DomainError) -> int:
    print(f"错误 / error: {exc.message}", file=sys.stderr)
    return 1


def cmd_list(args: argparse.Namespace) -> int:
    from callcenter.directory.communities import list_communities

    settings = settings_from_args(args)

    async def go(sm: Any) -> Any:
        async with sm() as session:
            return await list_communities(session)

    rows = run_with_db(settings, go)
    if args.json:
        print(json.dumps([{"code": r.code, "name": r.name, "hotline_numbers": list(r.hotline_numbers),
                           "owners": r.owners} for r in rows], ensure_ascii=False, indent=2))
    elif rows:
        print("\n".join(_show(r) for r in rows))
    else:
        print("还没有小区 / no communities yet: callcenter community add CODE --name 名称")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from callcenter.directory.communities import add_community

    settings = settings_from_args(args)

    async def go(sm: Any) -> Any:
        async with sm.begin() as session:
            return await add_community(session, args.code, args.name, args.hotline)

    try:
        row = run_with_db(settings, go)
    except DomainError as exc:
        return _fail(exc)
    print(_show(row))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from callcenter.directory.communities import update_community

    settings = settings_from_args(args)

    async def go(sm: Any) -> Any:
        async with sm.begin() as session:
            return await update_community(
                session, args.code, name=args.name, new_code=args.new_code,
                add_hotlines=args.add_hotline, remove_hotlines=args.remove_hotline)

    try:
        row = run_with_db(settings, go)
    except DomainError as exc:
        return _fail(exc)
    print(_show(row))
    if args.new_code and args.new_code != args.code:
        print(f"记得修改配置中引用 {args.code} 的地方 / update settings and menus that name "
              f"{args.code!r} (default_community, [[asterisk]] community, menu files)")
    if args.add_hotline or args.remove_hotline:
        print("运行中的服务器一分钟内生效 / a running server picks the numbers up within a minute")
    return 0


def warn_unknown_communities(settings: Any) -> list[str]:
    """Warnings for codes the settings name that no community has (check-config, run)."""
    from callcenter.directory.communities import missing_codes

    named = {settings.default_community: "default_community"}
    for i, pbx in enumerate(settings.asterisk):
        named.setdefault(pbx.community, f"asterisk[{i}].community")
    named.pop(None, None)
    named.pop("", None)
    if not named:
        return []

    async def go(sm: Any) -> list[str]:
        async with sm() as session:
            return await missing_codes(session, named)

    try:
        missing = run_with_db(settings, go)
    except Exception as exc:  # the database is someone else's check: say so, don't stop
        return [f"无法检查小区代码 / could not check community codes: {exc}"]
    return [f"警告 / warning: {named[code]} = {code!r} names no community; "
            "calls get no community. `callcenter community list` shows the codes, "
            "`callcenter community add` makes one" for code in missing]
