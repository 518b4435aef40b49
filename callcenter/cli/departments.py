"""department list / set: a community's departments (工程部, 保洁部 ...) and their people."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args

ONCALL_ROLES = ("agent", "night_duty", "engineer", "supervisor", "none")


def register(sub: Any) -> None:
    p = sub.add_parser("department", help="departments of a community and their people",
                       description="List and set a community's departments (工程部、保洁部、"
                                   "秩序部、客服部、绿化部 are added the first time), who is "
                                   "in each and who heads it.")
    dsub = p.add_subparsers(dest="department_command", metavar="ACTION", required=True)
    ls = dsub.add_parser("list", help="list the departments of a community",
                         description="List a community's departments and their people.")
    ls.add_argument("community", help="community code")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    st = dsub.add_parser("set", help="create or change a department",
                         description="Create or change one department. --member replaces "
                                     "the people (USERNAME, or USERNAME:head for a head).")
    st.add_argument("community", help="community code")
    st.add_argument("code", help="department code (engineering, cleaning, ... or a new one)")
    st.add_argument("--name", required=True, help="name shown to people (e.g. 工程部)")
    st.add_argument("--oncall-role", choices=ONCALL_ROLES, default=None,
                    help="the on-call schedule whose person takes 派单 to the department's "
                         "on-call person (none: no such schedule)")
    st.add_argument("--member", action="append", default=None, metavar="USERNAME[:head]",
                    help="a person in the department (repeatable; replaces the list)")
    st.add_argument("--inactive", action="store_true", help="no longer offered for 派单")
    st.set_defaults(func=cmd_set)


def _fail(message: str) -> int:
    print(f"错误 / error: {message}", file=sys.stderr)
    return 1


def _print(views: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([v.to_json() for v in views], ensure_ascii=False))
        return
    for v in views:
        people = "、".join(f"{m.name}{'（负责人）' if m.head else ''}" for m in v.members)
        oncall = f"，值班表 {v.oncall_role}" if v.oncall_role else ""
        state = "" if v.active else "（已停用）"
        print(f"{v.code}\t{v.name}{state}{oncall}\t{people or '（无人员）'}")


def cmd_list(args: argparse.Namespace) -> int:
    from callcenter.directory.services import community_by_code
    from ticketing.departments import list_departments

    async def go(sm: Any) -> list[Any] | None:
        async with sm() as session:
            community = await community_by_code(session, args.community)
            if community is None:
                return None
            views = await list_departments(session, community.id)
            await session.commit()
            return views

    views = run_with_db(settings_from_args(args), go)
    if views is None:
        return _fail(f"小区 {args.community} 不存在 / unknown community")
    _print(views, args.json)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from callcenter.directory.models import StaffUser
    from callcenter.directory.services import community_by_code
    from callcenter.errors import InvalidInput, NotFound
    from ticketing.departments import MemberInput, department_view, put_department

    async def go(sm: Any) -> str | Any:
        async with sm() as session:
            community = await community_by_code(session, args.community)
            if community is None:
                return f"小区 {args.community} 不存在 / unknown community"
            members = None
            if args.member is not None:
                members = []
                for item in args.member:
                    name, _, flag = item.partition(":")
                    if flag not in ("", "head"):
                        return f"--member {item!r}: USERNAME or USERNAME:head"
                    user = (await session.scalars(select(StaffUser).where(
                        StaffUser.username == name))).first()
                    if user is None:
                        return f"用户 {name} 不存在 / no such user"
                    members.append(MemberInput(user.id, flag == "head"))
            if args.oncall_role is None:  # as it was
                try:
                    oncall = (await department_view(session, community.id, args.code)
                              ).oncall_role
                except NotFound:
                    oncall = None
            else:
                oncall = None if args.oncall_role == "none" else args.oncall_role
            try:
                view = await put_department(session, community.id, args.code, name=args.name,
                                            oncall_role=oncall, active=not args.inactive,
                                            members=members)
            except InvalidInput as exc:
                return exc.message
            await session.commit()
            return view

    result = run_with_db(settings_from_args(args), go)
    if isinstance(result, str):
        return _fail(result)
    _print([result], False)
    return 0
