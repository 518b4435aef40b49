"""The event → class table is what Asterisk 20 says in every capture."""

from __future__ import annotations

from pathlib import Path

from callcenter.ami.event_classes import CLASSES, EVENT_CLASSES, event_class, parse_classes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"


def captured_classes() -> dict[str, set[str]]:
    """Each event of the real captures → the classes its ``Privilege:`` headers name."""
    table: dict[str, set[str]] = {}
    for log in sorted(FIXTURES.glob("**/*.log")) + sorted(FIXTURES.glob("*.txt")):
        event = None
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Event: "):
                event = line[7:].strip()
            elif line.startswith("Privilege: ") and event:
                table.setdefault(event, set()).add(line[11:].strip().split(",")[0])
            elif not line.strip():
                event = None
    return table


def test_every_captured_event_has_the_class_asterisk_gave_it() -> None:
    captured = captured_classes()
    assert len(captured) > 30
    missing = sorted(set(captured) - set(EVENT_CLASSES))
    assert not missing, missing
    wrong = {e: (classes, EVENT_CLASSES[e]) for e, classes in captured.items() if classes != {EVENT_CLASSES[e]}}
    assert not wrong, wrong
    assert set(EVENT_CLASSES.values()) <= set(CLASSES)


def test_an_event_not_in_the_table_takes_its_privilege_header() -> None:
    assert event_class("Newexten") == "dialplan"
    assert event_class("Newexten", "call,all") == "dialplan"  # the table decides
    assert event_class("PeerStatus", "system,all") == "system"
    assert event_class("Mystery") is None


def test_read_and_events_values_as_asterisk_reads_them() -> None:
    assert parse_classes("all") is None and parse_classes("on") is None and parse_classes("yes") is None
    assert parse_classes("system,all") is None
    assert parse_classes("off") == frozenset() and parse_classes("no") == frozenset()
    assert parse_classes("") == frozenset()
    assert parse_classes("system, call,agent") == {"system", "call", "agent"}
    assert parse_classes("call,nonsense") == {"call"}
