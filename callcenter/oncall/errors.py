"""Errors of the on-call domain."""

from __future__ import annotations

from callcenter.errors import InvalidInput, NotFound


class UnknownCommunity(NotFound):
    error_id = "oncall_unknown_community"


class NoSchedule(NotFound):
    error_id = "oncall_no_schedule"


class InvalidSchedule(InvalidInput):
    error_id = "oncall_invalid_schedule"
