"""Errors of the IVR domain."""

from __future__ import annotations


class IvrError(Exception):
    error_id = "ivr_error"


class CallerHungUp(IvrError):
    """The caller is gone; end the session quietly."""

    error_id = "caller_hung_up"


class AgiCommandError(IvrError):
    """Asterisk answered an AGI command with an error (510, 520) or nonsense."""

    error_id = "agi_command_error"

    def __init__(self, message: str, *, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


class MenuError(IvrError):
    """A menu file is invalid; the message names the file, the menu and the key."""

    error_id = "menu_invalid"
