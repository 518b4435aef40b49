"""Domain events as NOTIFY payloads: JSON text, at most ``MAX_PAYLOAD`` bytes.

A payload is ``{"o": server id, "n": event name, "d": data, "t": at}``; datetimes
are tagged (``{"$dt": iso}``) so they come back as datetimes. PostgreSQL refuses a
NOTIFY payload of 8000 bytes or more: an event too big for it is sent with only its
ids and ``"reread": true`` in its data, and the receiver re-reads it from the
database (the event's sender wrote it there first).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from callcenter.bus import DomainEvent

MAX_PAYLOAD = 7999
"""Bytes (UTF-8): PostgreSQL's limit is "shorter than 8000 bytes"."""

REREAD = "reread"

_KEEP = ("linkedid", "uniqueid", "asterisk", "call_id", "user_id", "ticket_id", "id",
         "incident_id", "person_id", "room_id", "number", "state", "community")
"""What a trimmed event keeps: what the receiver needs to find the rest."""


class BadPayload(ValueError):
    """Not an event of ours (another program NOTIFYing on the channel, a bad version)."""


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): _tag(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_tag(v) for v in value]
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$dt" in value and isinstance(value["$dt"], str):
            return datetime.fromisoformat(value["$dt"])
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def encode(event: DomainEvent, server_id: str) -> str:
    """The payload for ``event``, trimmed to its ids when it would be too big."""
    head = {"o": server_id, "n": event.name,
            "t": event.at.isoformat() if event.at is not None else None}
    text = _dumps({**head, "d": _tag(event.data)})
    if len(text.encode()) <= MAX_PAYLOAD:
        return text
    kept = {k: event.data[k] for k in _KEEP if k in event.data and
            isinstance(event.data[k], str | int | float | bool)}
    text = _dumps({**head, "d": _tag({**kept, REREAD: True})})
    if len(text.encode()) <= MAX_PAYLOAD:
        return text
    return _dumps({**head, "d": {REREAD: True}})


def decode(payload: str) -> DomainEvent:
    """The event in a payload, with ``origin`` the server that sent it."""
    try:
        obj = json.loads(payload)
    except ValueError as exc:
        raise BadPayload(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("o"), str) or not obj["o"] \
            or not isinstance(obj.get("n"), str) or not isinstance(obj.get("d"), dict):
        raise BadPayload("not an event payload")
    at = obj.get("t")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
        data = _untag(obj["d"])
    except ValueError as exc:
        raise BadPayload(f"bad time: {exc}") from None
    return DomainEvent(obj["n"], data, at=when, origin=obj["o"])
