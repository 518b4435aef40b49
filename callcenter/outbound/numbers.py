"""The digits a campaign dials for a directory number, or None when it is not a
number a phone can ring (too short, a placeholder, a foreign format the trunk
does not take): such a job ends ``invalid`` and is reported, never retried."""

from __future__ import annotations

from callcenter.directory.phones import try_normalize
from callcenter.oncall.router import national_number


def dial_string(number: str) -> str | None:
    e164 = try_normalize(number or "")
    if e164 is None or not e164.startswith("+86"):
        return None
    return national_number(e164)
