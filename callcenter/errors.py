"""Domain errors with a stable ``error_id`` and ``details``, shared by every part.

The aiohttp middleware in ``callcenter.web.errors`` turns them into JSON.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    error_id = "error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error_id, "message": self.message, "details": self.details}


class InvalidInput(DomainError):
    """Bad input from a person or a file: a 400 naming the field and why."""

    error_id = "invalid_input"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        details = dict(details or {})
        if field is not None:
            details.setdefault("field", field)
        super().__init__(message, details=details)
        self.field = field


class NotFound(DomainError):
    error_id = "not_found"
    http_status = 404


class Conflict(DomainError):
    error_id = "conflict"
    http_status = 409


class Unauthorized(DomainError):
    error_id = "unauthorized"
    http_status = 401


class Forbidden(DomainError):
    error_id = "forbidden"
    http_status = 403


class Unavailable(DomainError):
    error_id = "unavailable"
    http_status = 503
