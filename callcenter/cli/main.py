"""``callcenter``: one entry point, one sub-command module per topic."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from callcenter import __version__
from callcenter.logs import configure_logging
from callcenter.settings import LoggingSettings, SettingsError, load_logging_settings

COMMAND_MODULES = (
    "callcenter.cli.core",
    "callcenter.cli.demo",
    "callcenter.cli.owners",
    "callcenter.cli.community",
    "callcenter.cli.importing",
    "callcenter.cli.oncall",
    "callcenter.cli.tokens",
    "callcenter.cli.triage",
    "callcenter.cli.holidays",
    "callcenter.cli.prompts",
    "callcenter.cli.users",
    "callcenter.cli.tickets",
    "callcenter.cli.departments",
    "callcenter.cli.vosk",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description="物业服务呼叫中心 — call-center integration server for property management.",
    )
    parser.add_argument("--version", action="version", version=f"callcenter {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $CALLCENTER_CONFIG, else ./callcenter.toml if present)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _logging_settings(args: argparse.Namespace) -> LoggingSettings:
    """``[logging]`` of the settings file (``--config``, ``$CALLCENTER_CONFIG`` or
    ./callcenter.toml) and ``CALLCENTER_LOGGING__*``. A broken file logs as
    text here; the command that reads the settings reports it."""
    try:
        return load_logging_settings(Path(args.config) if args.config else None)
    except SettingsError:
        return LoggingSettings()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(_logging_settings(args), verbose=args.verbose)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except SettingsError as exc:
        print(f"配置错误 / configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
