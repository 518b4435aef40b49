"""demo: everything on one machine with sample data."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="start a demo: sample community, Asterisk stand-in and server (SQLite)",
        description=(
            "Create a SQLite database with a sample community (a few buildings, a few hundred "
            "owners), start the built-in Asterisk stand-in with a few realistic calls flowing, "
            "start the server and print the URL to open."
        ),
    )
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"),
                   help="where the demo keeps its database and recordings (default ./demo-data)")
    p.add_argument("--quiet-calls", action="store_true", help="do not start the simulated calls")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from callcenter.demo import run_demo

    asyncio.run(run_demo(args.data_dir, args.port, simulate_calls=not args.quiet_calls))
    return 0
