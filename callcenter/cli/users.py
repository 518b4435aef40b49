"""user add / passwd / list / disable: staff who sign in to the console."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args
from callcenter.directory.models import STAFF_ROLES


def register(sub: Any) -> None:
    p = sub.add_parser("user", help="staff accounts for the console",
                       description="Add staff who sign in to the console (坐席、夜班、主管...), "
                                   "change passwords, list and disable accounts.")
    usub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="add a member of staff",
                        description="Add a member of staff. Without --password the password is "
                                    "asked for twice (not echoed).")
    a.add_argument("name", help="user name to sign in with")
    a.add_argument("--role", required=True, choices=STAFF_ROLES)
    a.add_argument("--display-name", default="", help="name shown in the console (e.g. 张小丽)")
    a.add_argument("--password", help="password (visible in shell history: prefer the prompt)")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.add_argument("--extension", help="desk phone extension (pops and click-to-call)")
    a.add_argument("--mobile", help="mobile number (night duty called on a mobile)")
    a.add_argument("--community", action="append", default=[], metavar="CODE",
                   help="a community this person works for (repeatable: --community A "
                        "--community B); they see only these communities' calls, people, "
                        "tickets, incidents and recordings")
    a.add_argument("--all-communities", action="store_true",
                   help="sees every community (an admin, head office); needed, or "
                        "--community, once the site has more than one community")
    a.add_argument("--notify", action="append", default=[], metavar="CHANNEL=TARGET",
                   help="where summaries go when not signed in: wecom=<webhook>, "
                        "dingtalk=<webhook>, dingtalk_secret=SEC..., webhook=<url>, "
                        "email=<address> (repeatable)")
    a.set_defaults(func=cmd_add)
    pw = usub.add_parser("passwd", help="set a new password (signs the user out everywhere)",
                         description="Set a new password; every session of the user ends.")
    pw.add_argument("name")
    pw.add_argument("--password")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=cmd_passwd)
    ls = usub.add_parser("list", help="list staff", description="List staff accounts.")
    ls.set_defaults(func=cmd_list)
    d = usub.add_parser("disable", help="disable an account and end its sessions",
                        description="Disable an account; it can no longer sign in.")
    d.add_argument("name")
    d.set_defaults(func=cmd_disable)


def _read_password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 / password: ")
    second = getpass.getpass("再输一次 / again: ")
    if first != second:
        raise ValueError("两次输入的密码不一致 / passwords do not match")
    return first


def _parse_notify(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("wecom", "dingtalk", "dingtalk_secret", "webhook", "email"):
            raise ValueError(f"--notify {item!r}: expected wecom|dingtalk|dingtalk_secret|"
                             "webhook|email=VALUE")
        out[key] = value
    return out


def _update_user(args: argparse.Namespace, change: Any) -> bool:
    """Apply ``change`` to the named user and sign them out everywhere.
    False when there is no such user."""
    from sqlalchemy import delete, select

    from callcenter.console.models import WebSession
    from callcenter.directory.models import StaffUser

    async def go(sm: Any) -> bool:
        async with sm() as session:
            user = (await session.scalars(select(StaffUser).where(
                StaffUser.username == args.name))).first()
            if user is None:
                return False
            change(user)
            await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
            await session.commit()
        return True

    return bool(run_with_db(settings_from_args(args), go))


def _fail(message: str) -> int:
    print(f"错误 / error: {message}", file=sys.stderr)
    return 1


def cmd_add(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from callcenter.auth.passwords import hash_password, make_hasher
    from callcenter.directory.models import Community, StaffCommunity, StaffUser
    from callcenter.directory.phones import normalize_phone
    from callcenter.directory.services import community_by_code
    from callcenter.errors import InvalidInput

    try:
        notify = _parse_notify(args.notify)
        password = _read_password(args)
        password_hash = hash_password(make_hasher(), password)
        mobile = normalize_phone(args.mobile) if args.mobile else None
    except (ValueError, InvalidInput) as exc:
        return _fail(str(exc))
    if args.extension and not args.extension.isdigit():
        return _fail("分机号只能是数字 / --extension must be digits")
    if args.community and args.all_communities:
        return _fail("--community 与 --all-communities 只能选一个 / "
                     "give --community or --all-communities, not both")

    async def go(sm: Any) -> str | None:
        async with sm() as session:
            if (await session.scalars(select(StaffUser).where(
                    StaffUser.username == args.name))).first() is not None:
                return f"用户 {args.name} 已存在 / user exists"
            ids: list[int] = []
            for code in dict.fromkeys(args.community):
                community = await community_by_code(session, code)
                if community is None:
                    return f"小区 {code} 不存在 / unknown community {code!r}"
                ids.append(community.id)
            every = bool(args.all_communities)
            if not ids and not every:
                count = await session.scalar(select(func.count()).select_from(Community))
                if (count or 0) > 1:
                    return ("本系统有多个小区：请用 --community 指定此人所属小区（可多次），"
                            "或用 --all-communities / several communities: give --community "
                            "CODE (repeatable) or --all-communities")
                every = True  # one community (or none yet): nothing to choose between
            session.add(StaffUser(username=args.name, display_name=args.display_name,
                                  role=args.role, extension=args.extension, mobile=mobile,
                                  all_communities=every,
                                  memberships=[StaffCommunity(community_id=i) for i in ids],
                                  password_hash=password_hash, notify=notify))
            await session.commit()
        return None

    error = run_with_db(settings_from_args(args), go)
    if error:
        return _fail(error)
    seen = ("全部小区 / every community" if args.all_communities or not args.community
            else "、".join(dict.fromkeys(args.community)))
    print(f"已添加 / added: {args.name} ({args.role}); 可见 / sees: {seen}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:

    from callcenter.auth.passwords import hash_password, make_hasher
    from callcenter.errors import InvalidInput

    try:
        password_hash = hash_password(make_hasher(), _read_password(args))
    except (ValueError, InvalidInput) as exc:
        return _fail(str(exc))

    def change(user: Any) -> None:
        user.password_hash = password_hash

    if not _update_user(args, change):
        return _fail(f"没有用户 {args.name} / no such user")
    print("密码已更新 / password changed")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from callcenter.directory.models import Community, StaffUser

    async def go(sm: Any) -> list[tuple[str, str, str, str, str, bool, str]]:
        async with sm() as session:
            users = (await session.scalars(select(StaffUser).order_by(StaffUser.username))).all()
            codes = dict((await session.execute(select(Community.id, Community.code))).all())
            return [(u.username, u.display_name, u.role, u.extension or "", u.mobile or "",
                     u.active, "全部小区" if u.scope is None else
                     ",".join(sorted(codes.get(i, "?") for i in u.scope)) or "（无）")
                    for u in users]

    for name, display, role, ext, mobile, active, seen in run_with_db(
            settings_from_args(args), go):
        state = "" if active else "  (已停用 / disabled)"
        print(f"{name:<16} {display:<10} {role:<11} {ext:<8} {mobile:<14} {seen}{state}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:


    def change(user: Any) -> None:
        user.active = False

    if not _update_user(args, change):
        return _fail(f"没有用户 {args.name} / no such user")
    print(f"已停用 / disabled: {args.name}")
    return 0
