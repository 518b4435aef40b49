"""Errors of the AMI link: typed, with a stable ``error_id`` and ``details``."""

from __future__ import annotations

from typing import Any

from callcenter.errors import DomainError


class AmiError(DomainError):
    error_id = "ami_error"
    http_status = 502


class ActionNotSent(AmiError):
    """The link was not up: the action never left this process. Safe to retry."""

    error_id = "ami_action_not_sent"
    http_status = 503


class LinkLost(AmiError):
    """The action was written but the link dropped before its answer.

    Whether Asterisk ran it is unknown; it is NOT re-sent (a page must not dial
    twice). The caller decides what to do."""

    error_id = "ami_link_lost"
    http_status = 503


class ActionTimeout(AmiError):
    """No (complete) answer within the action's timeout."""

    error_id = "ami_action_timeout"
    http_status = 504


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` (or ``Failure``)."""

    error_id = "ami_action_error"

    def __init__(self, message: str, *, action: str, response_message: str,
                 details: dict[str, Any] | None = None) -> None:
        merged = {"action": action, "message": response_message, **(details or {})}
        super().__init__(message, details=merged)
        self.action = action
        self.response_message = response_message


class PbxUnavailable(AmiActionError):
    """Asterisk refused the action because it is not available: shutting down
    (``Asterisk is shutting down``) or not fully booted yet. Nothing ran; the
    same action can be sent again once the link is back (``AmiLink.available``)."""

    error_id = "pbx_unavailable"
    http_status = 503


class OriginateFailed(AmiActionError):
    """The originate was queued but ``OriginateResponse`` says it failed."""

    error_id = "ami_originate_failed"


class LoginFailed(AmiError):
    """Asterisk refused the username/secret. Never carries the secret."""

    error_id = "ami_auth_failed"
    http_status = 503


class NotOwner(AmiError):
    """This server does not own the link now (another server holds its lease,
    ``callcenter.ha``): the action was not sent. Only the login and the read-only
    actions that keep a standby listening go out without the lease."""

    error_id = "ami_not_owner"
    http_status = 503
