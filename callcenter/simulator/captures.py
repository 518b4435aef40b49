"""Read the Asterisk capture files and compare event streams by shape.

A capture (``tests/fixtures/asterisk/*.txt`` or ``full/*.log``) is a raw AMI
stream with ``>>> `` lines for what the client sent. ``shape()`` reduces a
stream to ``(event name, field names)`` pairs so two runs can be compared
while ids, times and values differ."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: the event types the README says the ``*.txt`` captures leave out
TRIMMED = frozenset({
    "VarSet", "Newexten", "DeviceStateChange", "RTCPSent", "RTCPReceived", "AGIExecStart", "AGIExecEnd",
    "LocalBridge", "NewConnectedLine", "NewCallerid", "DTMFBegin", "DTMFEnd", "ChannelTalkingStart",
    "ChannelTalkingStop", "QueueMemberStatus",
})

Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class Block:
    sent: bool  # True: an action the client sent (">>> ")
    fields: Fields

    def get(self, key: str) -> str | None:
        for k, v in self.fields:
            if k.lower() == key.lower():
                return v
        return None

    @property
    def event(self) -> str | None:
        return self.get("Event") if not self.sent else None


def read_capture(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    blocks: list[Block] = []
    for chunk in text.split("\n\n"):
        lines = [ln for ln in chunk.split("\n") if ln and not ln.startswith("#")]
        if not lines:
            continue
        sent = lines[0].startswith(">>> ")
        fields: Fields = []
        for ln in lines:
            if ln.startswith(">>> "):
                ln = ln[4:]
            key, sep, value = ln.partition(":")
            if not sep:
                continue  # the banner
            fields.append((key, value[1:] if value.startswith(" ") else value))
        if fields:
            blocks.append(Block(sent, fields))
    return blocks


def shape(frames: Iterable[Fields], *, skip: Iterable[str] = (), only_events: bool = True) -> list[tuple[str, ...]]:
    """``(Event, field names...)`` for each event (responses too unless ``only_events``)."""
    skipped = set(skip)
    out: list[tuple[str, ...]] = []
    for fields in frames:
        if not fields:
            continue
        key, value = fields[0]
        if key == "Event":
            if value in skipped:
                continue
            out.append((value, *[k for k, _ in fields[1:]]))
        elif not only_events:
            out.append((f"{key}:{value}", *[k for k, _ in fields[1:]]))
    return out


def capture_events(path: Path) -> list[Fields]:
    return [b.fields for b in read_capture(path) if not b.sent and b.event is not None]


def sent_actions(path: Path) -> list[Fields]:
    return [b.fields for b in read_capture(path) if b.sent]
