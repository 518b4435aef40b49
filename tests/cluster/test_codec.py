"""Events as NOTIFY payloads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.bus import DomainEvent
from callcenter.cluster.codec import MAX_PAYLOAD, REREAD, BadPayload, decode, encode


def test_an_event_comes_back_with_its_times_and_its_origin() -> None:
    at = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    event = DomainEvent("agent.state", {"user_id": 3, "since": at, "path": ("a", "b")}, at=at)
    back = decode(encode(event, "srv-1"))
    assert back == DomainEvent("agent.state", {"user_id": 3, "since": at, "path": ["a", "b"]},
                               at=at, origin="srv-1")


def test_an_event_too_big_keeps_only_its_ids_and_asks_for_a_re_read() -> None:
    event = DomainEvent("ticket.created", {"ticket_id": 5, "person_id": 2,
                                           "description": "水" * 5000})
    text = encode(event, "srv-1")
    assert len(text.encode()) <= MAX_PAYLOAD
    assert decode(text).data == {"ticket_id": 5, "person_id": 2, REREAD: True}


def test_payloads_of_other_programs_are_refused() -> None:
    for bad in ("hello", "{}", '{"o": "", "n": "x", "d": {}}', "[1]",
                '{"o": "s", "n": "x", "d": {}, "t": "yesterday"}'):
        with pytest.raises(BadPayload):
            decode(bad)
