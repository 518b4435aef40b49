"""token create / revoke."""

from __future__ import annotations

import argparse
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args
from callcenter.directory.models import STAFF_ROLES


def register(sub: Any) -> None:
    p = sub.add_parser("token", help="API tokens for other systems",
                       description="Create or revoke API tokens (Authorization: Bearer ...).")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="create a token and print it once",
                        description="Create an API token with a role; it is printed once and stored hashed.")
    c.add_argument("--role", required=True, choices=STAFF_ROLES)
    c.add_argument("--name", default="", help="what the token is for")
    c.set_defaults(func=cmd_create)
    r = tsub.add_parser("revoke", help="revoke a token by id", description="Revoke a token by id.")
    r.add_argument("id", type=int)
    r.set_defaults(func=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    from callcenter.auth.tokens import create_token

    async def go(sm: Any) -> str:
        async with sm() as session:
            return await create_token(session, role=args.role, name=args.name)

    print(run_with_db(settings_from_args(args), go))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from callcenter.auth.tokens import revoke_token

    async def go(sm: Any) -> bool:
        async with sm() as session:
            return await revoke_token(session, args.id)

    ok = run_with_db(settings_from_args(args), go)
    print("revoked" if ok else "no such token")
    return 0 if ok else 1
