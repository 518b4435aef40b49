"""Errors of the stand-in (a misconfigured stand-in or a malformed script)."""

from __future__ import annotations

from callcenter.errors import InvalidInput


class StandInConfigError(InvalidInput):
    error_id = "standin_config"
