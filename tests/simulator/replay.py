"""Replay a capture's actions against the stand-in and compare what comes back.

Each received block of the capture must be matched, in order, by a frame
with the same kind (event name or response), the same field names in the
same order, and the same values except ids, times and channel names (which
are mapped: the capture's ``Local/s@caller-sim-00000000;1`` is whatever
the stand-in called the same channel)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from callcenter.ami.parser import Frame, encode_frame
from callcenter.simulator.captures import TRIMMED, Block, read_capture
from tests.simulator.amiclient import MiniAmi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk"

#: values that are ids, clocks or addresses: only their presence is compared
VOLATILE = {
    "ActionID", "Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "UniqueID", "BridgeUniqueid",
    "Timestamp", "Uptime", "LastReload", "EventTV", "SessionTV", "SessionID", "LocalAddress", "RemoteAddress",
    "StartTime", "AnswerTime", "EndTime", "Duration", "BillableSeconds", "HoldTime", "RingTime", "TalkTime",
    "Holdtime", "LastCall", "LoginTime", "CoreStartupDate", "CoreStartupTime", "CoreReloadDate",
    "CoreReloadTime", "CommandId", "LongestHoldTime", "CoreProcessedCalls", "BridgeId", "LocalOneUniqueid", "LocalTwoUniqueid", "LocalOneLinkedid",
    "LocalTwoLinkedid",
}
#: channel variables whose values are durations
TIMING_VARS = {"QUEUEWAIT", "QUEUEWAIT_MS", "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"}
CHANNELS = {"Channel", "DestChannel", "DestinationChannel", "LocalOneChannel", "LocalTwoChannel"}


def _norm(text: str) -> str:
    """Sample offsets and thread ids are clocks too."""
    text = re.sub(r"endpos=\d+", "endpos=N", text)
    return re.sub(r"agi_threadid: \d+", "agi_threadid: N", text)


def _kind(fields: list[tuple[str, str]]) -> str:
    return f"{fields[0][0]}: {fields[0][1]}"


class Replay:
    def __init__(self, client: MiniAmi, *, skip: frozenset[str] = TRIMMED,
                 volatile: set[str] | None = None, lenient: set[str] | None = None,
                 names: dict[str, str] | None = None) -> None:
        self.client = client
        self.skip = skip
        self.volatile = VOLATILE | (volatile or set())
        self.lenient = lenient or set()  # keys whose value may differ (reported, not failed)
        #: capture text → ours (channel names are learnt; addresses and paths can be given)
        self.names: dict[str, str] = dict(names or {})
        self.differences: list[str] = []

    def map_value(self, value: str) -> str:
        for theirs, ours in self.names.items():
            value = value.replace(theirs, ours)
        return value

    def send(self, block: Block) -> None:
        fields = [(k, self.map_value(v)) for k, v in block.fields]
        self.client.writer.write(encode_frame(fields))

    async def next_frame(self, within: float) -> Frame:
        return await self.client.wait_for(lambda f: f.event not in self.skip, within)

    def compare(self, expected: Block, got: Frame) -> None:
        exp = expected.fields
        assert _kind(got.headers) == _kind(exp), f"expected {_kind(exp)}, got {_kind(got.headers)}: {got.headers}"
        assert [k for k, _ in got.headers] == [k for k, _ in exp], (
            f"{_kind(exp)}: field names differ\n expected {[k for k, _ in exp]}\n got      "
            f"{[k for k, _ in got.headers]}")
        for (key, theirs), (_, ours) in zip(exp, got.headers, strict=True):
            if key in CHANNELS and theirs:
                base_t, base_o = theirs.rsplit(";", 1)[0], ours.rsplit(";", 1)[0]
                self.names.setdefault(base_t, base_o)
                assert self.map_value(theirs) == ours, f"{_kind(exp)} {key}: {ours!r} is not {theirs!r}"
                continue
            if key in self.volatile:
                continue
            if key == "Value" and expected.get("Variable") in TIMING_VARS:
                continue
            if key in ("Env", "Result"):
                theirs, ours = _norm(unquote(theirs)), _norm(unquote(ours))
            if self.map_value(theirs) != ours:
                msg = f"{_kind(exp)} {key}: expected {theirs!r}, got {ours!r}"
                if key in self.lenient:
                    self.differences.append(msg)
                else:
                    raise AssertionError(msg)

    async def run(self, path: Path, *, within: float = 10.0, start: int = 0) -> list[tuple[Block, Frame]]:
        pairs = []
        for block in read_capture(path)[start:]:
            if block.sent:
                self.send(block)
                continue
            if block.event in self.skip:
                continue
            got = await self.next_frame(within)
            self.compare(block, got)
            pairs.append((block, got))
        return pairs
