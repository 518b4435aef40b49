"""Where the console's buttons post to (other features own those APIs)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    tickets_api: str = "/api/tickets"
    tickets_page: str = "/tickets"
    incidents_api: str = "/api/incidents"


CONSOLE_CONFIG = web.AppKey("console_config", ConsoleConfig)
