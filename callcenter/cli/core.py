"""init, run, migrate, check-config, asterisk-config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from callcenter.cli.common import settings_from_args
from callcenter.cli.community import warn_unknown_communities
from callcenter.settings import DEFAULT_CONFIG_NAME

log = logging.getLogger(__name__)


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
                       help="print (or write) the manager, extensions, queues and voicemail pieces Asterisk needs",
                       description="Print the manager.conf user, the extensions.conf contexts, the queues.conf "
                                   "queues and the voicemail.conf mailboxes that hand calls to this server; "
                                   "--write DIR writes them as *_callcenter.conf files to #include.")
    p.add_argument("--write", metavar="DIR", type=Path,
                   help="write manager_/extensions_/queues_/voicemail_callcenter.conf into DIR "
                        "and print the #include lines to add")
    p.add_argument("--force", action="store_true",
                   help="with --write: overwrite files this command did not write")
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
    for warning in warn_unknown_communities(settings):
        log.warning("%s", warning)  # a log line like the others ([logging] format)

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
    for warning in warn_unknown_communities(settings):
        print(warning, file=sys.stderr)
    return 0


def cmd_asterisk_config(args: argparse.Namespace) -> int:
    from callcenter.asterisk_config import NotOurs, render, write_files

    settings = settings_from_args(args)
    if args.write is None:
        print(render(settings))
        return 0
    try:
        lines = write_files(settings, args.write, force=args.force)
    except NotOurs as exc:
        print(f"未覆盖不是本命令生成的文件 / not overwritten, not written by asterisk-config: {exc} "
              "(--force to overwrite)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"无法写入 / cannot write {args.write}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(lines)} files in {args.write}; add these lines, then "
          "`asterisk -rx 'core reload'`:")
    print("\n".join(lines))
    return 0
