"""init, run, migrate, check-config, asterisk-config."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from callcenter.cli.common import settings_from_args
from callcenter.settings import DEFAULT_CONFIG_NAME


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write a commented example callcenter.toml here",
                       description="Write a commented example callcenter.toml into the current directory.")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--path", default=DEFAULT_CONFIG_NAME, help="where to write it")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="start the server (HTTP API, console, AMI links, FastAGI)",
                       description="Start the server with the settings file and serve until stopped.")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("migrate", help="create or upgrade the database schema",
                       description="Create or upgrade the database schema (every command also does this on first use).")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("check-config", help="validate the settings and print them (secrets hidden)",
                       description="Load and validate the settings; print them with secrets hidden. Exit 2 when invalid.")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("asterisk-config",
                       help="print the manager.conf and extensions.conf pieces a real Asterisk needs",
                       description="Print the manager.conf user and extensions.conf contexts that hand calls to this server.")
    p.set_defaults(func=cmd_asterisk_config)


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.path)
    if target.exists() and not args.force:
        print(f"{target} 已存在，未覆盖 / already exists; use --force to overwrite", file=sys.stderr)
        return 1
    text = resources.files("callcenter").joinpath("example.toml").read_text(encoding="utf-8")
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from callcenter.app import create_app
    from callcenter.server import serve

    settings = settings_from_args(args)

    async def started(port: int) -> None:
        print(f"callcenter listening on http://{settings.http.host}:{port}/", flush=True)

    asyncio.run(serve(create_app(settings), settings.http.host, settings.http.port,
                      on_started=started))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from callcenter.db.engine import migrate_sync
    from callcenter.db.urls import redact_url

    settings = settings_from_args(args)
    migrate_sync(settings.database_url)
    print(f"schema up to date: {redact_url(settings.database_url)}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    print(json.dumps(settings.redacted(), ensure_ascii=False, indent=2))
    return 0


def cmd_asterisk_config(args: argparse.Namespace) -> int:
    from callcenter.asterisk_config import render

    print(render(settings_from_args(args)))
    return 0
