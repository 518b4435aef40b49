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
    for key in ("caller", "caller_number", "callerid", "from"):
        value = data.get(key)
        if value:
            return str(value)
    return ""


def targets_of(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(extensions, mobiles) a ringing/answer/transfer event points at."""
    extensions: list[str] = []
    mobiles: list[str] = []
    for key in ("extension", "agent_extension", "to_extension"):
        if data.get(key):
            extensions.append(str(data[key]))
    for key in ("mobile", "to_mobile"):
        if data.get(key):
            mobiles.append(str(data[key]))
    for key in ("interface", "target", "to", "destination", "channel"):
        value = data.get(key)
        if not value:
            continue
        m = _IFACE.match(str(value))
        target = m.group("target") if m else str(value)
        if target.isdigit() and len(target) >= 7:
            mobiles.append(target)
        elif target:
            extensions.append(target)
    return list(dict.fromkeys(extensions)), list(dict.fromkeys(mobiles))


def ivr_step_of(data: dict[str, Any]) -> str:
    label = data.get("label") or data.get("choice_label")
    menu = data.get("menu") or data.get("menu_name") or ""
    choice = data.get("choice") or data.get("digit") or data.get("digits") or ""
    if label:
        return str(label)
    return f"{menu}:{choice}" if menu else str(choice)
