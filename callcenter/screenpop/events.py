"""Reading the call events the call tracker publishes on the bus.

The tracker (``callcenter/calls/``) publishes ``call.started``, ``call.ringing``,
``call.answered``, ``call.transferred``, ``call.ended``, ``call.abandoned`` and
``call.ivr_choice``. These helpers accept the few spellings a field may have
(``call_id`` / ``linkedid`` / ``uniqueid``; ``interface`` such as
``PJSIP/8001`` or ``Local/8001@from-queue/n``) so the hub does not depend on
one exact payload.
"""

from __future__ import annotations

import re
from typing import Any

_IFACE = re.compile(r"^(?:PJSIP|SIP|IAX2|Local|DAHDI)/(?P<target>[^@/\-;]+)", re.IGNORECASE)


def call_id_of(data: dict[str, Any]) -> str:
    for key in ("call_id", "linkedid", "uniqueid"):
        value = data.get(key)
        if value:
            return str(value)
    return ""


def caller_of(data: dict[str, Any]) -> str:
    for key in ("caller_number", "caller", "callerid", "from"):
        value = data.get(key)
        if value:
            return str(value)
    return ""


TARGET_KEYS = {
    # call.ringing: ``target`` (extension or number), ``interface``, ``member_name``
    "ringing": ("target", "interface", "extension", "mobile", "member_name"),
    # call.answered: ``answered_by`` (queue member name or extension/number)
    "answered": ("answered_by", "interface", "extension", "mobile", "target"),
    # call.transferred: ``transferred_to`` (extension or number)
    "transferred": ("transferred_to", "to", "interface", "extension", "mobile", "target"),
}


def targets_of(data: dict[str, Any], kind: str = "ringing"
               ) -> tuple[list[str], list[str], list[str]]:
    """(extensions, mobiles, names) a ringing/answer/transfer event points at.

    Digits of 7 or more are a phone number; shorter digits an extension; anything
    else a name (a queue ``MemberName``), matched to a user name or display name."""
    extensions: list[str] = []
    mobiles: list[str] = []
    names: list[str] = []
    for key in TARGET_KEYS.get(kind, TARGET_KEYS["ringing"]):
        value = data.get(key)
        if not value:
            continue
        m = _IFACE.match(str(value))
        target = (m.group("target") if m else str(value)).strip()
        digits = target.lstrip("+")
        if digits.isdigit() and len(digits) >= 7:
            mobiles.append(target)
        elif digits.isdigit():
            extensions.append(target)
        elif target:
            names.append(target)
    return (list(dict.fromkeys(extensions)), list(dict.fromkeys(mobiles)),
            list(dict.fromkeys(names)))


def ivr_step_of(data: dict[str, Any]) -> str:
    label = data.get("label") or data.get("choice_label") or data.get("step")
    menu = data.get("menu") or data.get("menu_name") or ""
    choice = data.get("choice") or data.get("digit") or data.get("digits") or ""
    if label:
        return str(label)
    return f"{menu}:{choice}" if menu else str(choice)
