"""AMI ingest benchmark: our parse+track+publish vs raw panoramisk 1.4 parsing.

The byte stream is the recorded full captures (tests/fixtures/asterisk/full),
repeated to about 100,000 events and cut into random TCP-sized chunks; on top
of that, every ``--split-every``-th Chinese character is cut in the middle so
multi-byte names straddle chunk boundaries (what a real TCP link does now and
then). Both sides get exactly the same chunks in the same run:

- ours: ``FrameParser.feed`` → ``CallTracker.handle`` → ``EventBus.publish``
  (one subscriber counting domain events);
- panoramisk 1.4: ``AMIProtocol.data_received`` on a fake transport, its
  factory's ``dispatch`` collecting the messages (parsing only: no tracking).

Timed passes keep nothing (retaining 100k frames makes the garbage collector
dominate both sides); a separate untimed pass per side keeps every value to
count corrupted characters: non-ASCII characters of the reference decoding
that a side lost or replaced (the reference: the whole stream decoded in one
piece). Times are CPU time (``process_time``) of the best round, so other
processes on the machine disturb the ratio less. Prints one JSON line.

    python bench/ami_ingest.py [--events 100000] [--seed 1] [--rounds 5] [--split-every 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.ami.captures import server_bytes
from callcenter.ami.parser import Frame, FrameParser
from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.tracker import CallTracker

FULL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "asterisk" / "full"


def build_stream(target_events: int) -> tuple[bytes, int]:
    parts = [server_bytes(p.read_bytes()) for p in sorted(FULL.glob("*.log"))]
    banner, _, first = parts[0].partition(b"\r\n")
    body = b"".join([first, *parts[1:]])
    per_copy = body.count(b"\r\nEvent: ") + body.startswith(b"Event: ")
    copies = max(1, round(target_events / per_copy))
    stream = banner + b"\r\n" + body * copies
    events = sum(1 for f in FrameParser().feed(stream) if isinstance(f, Frame) and f.kind == "event")
    return stream, events


def chunk(stream: bytes, rng: random.Random, split_every: int) -> tuple[list[bytes], int]:
    """Random TCP-sized chunks, plus a cut inside every ``split_every``-th
    multi-byte character."""
    cuts: set[int] = set()
    pos = 0
    while True:
        pos += rng.choice((536, 1024, 1448, 2896, 4096, 8192, 16384, rng.randint(1, 65536)))
        if pos >= len(stream):
            break
        cuts.add(pos)
    lead = [i for i, b in enumerate(stream) if b >= 0xE0]  # 3-byte UTF-8 leads (CJK)
    split = 0
    for n, i in enumerate(lead):
        if n % split_every == 0:
            cuts.add(i + 1 + (n // split_every) % 2)  # after byte 1 or 2 of 3
            split += 1
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)], split


def nonascii(value: str) -> int:
    return sum(1 for ch in value if ord(ch) > 127 and ch != "\ufffd")


def reference_frames(stream: bytes) -> list[list[tuple[str, str]]]:
    """The stream decoded in one piece and split naively: the truth to compare
    with, independent of both parsers."""
    text = stream.decode("utf-8")
    text = text.split("\r\n", 1)[1]  # the banner line
    out = []
    for chunk in text.split("\r\n\r\n"):
        if chunk.strip():
            out.append([(k, v) for k, _, v in (line.partition(": ") for line in chunk.split("\r\n"))])
    return out


def corrupted(reference: list[list[tuple[str, str]]], got: list[dict[str, str]]) -> int:
    """Non-ASCII characters of the reference missing or replaced in ``got``
    (frames aligned in order; a missing frame loses all of its characters)."""
    lost = 0
    for i, ref in enumerate(reference):
        frame = got[i] if i < len(got) else {}
        for k, v in ref:
            want = nonascii(v)
            if want:
                lost += max(0, want - nonascii(frame.get(k.lower(), "")))
    return lost


def run_ours(chunks: list[bytes], *, keep: bool) -> tuple[float, list[dict[str, str]], int]:
    """Parse + track + publish. With ``keep`` the frames are retained for the
    corruption count (untimed passes only: retention makes the GC dominate)."""

    async def main() -> tuple[float, list[dict[str, str]], int]:
        bus = EventBus()
        published = 0

        async def count(_: DomainEvent) -> None:
            nonlocal published
            published += 1

        bus.subscribe("call.*", count)
        tracker = CallTracker("bench", bus.publish)
        parser = FrameParser()
        frames: list[Frame] = []
        now = datetime(2026, 11, 22, tzinfo=UTC)
        step = timedelta(milliseconds=10)
        handle = tracker.handle
        t0 = time.process_time()
        for c in chunks:
            for f in parser.feed(c):
                if isinstance(f, Frame):
                    if keep:
                        frames.append(f)
                    if f.kind == "event":
                        handle(f, now)
                        now += step
        elapsed = time.process_time() - t0
        await bus.drain()
        got = [{k.lower(): v for k, v in reversed(f.headers)} for f in frames]
        return elapsed, got, published

    return asyncio.run(main())


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class _Factory:
    save_stream = None
    forgetable_actions = ("ping", "login")
    awaiting_actions: list[Any] = []

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.messages: list[Any] = []
        self.count = 0

    def dispatch(self, message: Any) -> None:
        self.count += 1
        if self.keep:
            self.messages.append(message)

    def connection_lost(self, exc: Any) -> None:
        pass


def run_panoramisk(chunks: list[bytes], *, keep: bool) -> tuple[float, list[dict[str, str]]]:
    import logging

    try:
        from panoramisk.ami_protocol import AMIProtocol
    except ImportError:  # the baseline is an extra: the server never imports it
        raise SystemExit("the baseline needs panoramisk 1.4: pip install -e '.[bench]'") from None

    proto = AMIProtocol()
    proto.connection_made(_Transport())
    factory = _Factory(keep)
    proto.factory = factory
    proto.encoding = "utf8"
    proto.log = logging.getLogger("panoramisk.bench")
    proto.log.setLevel(logging.WARNING)
    t0 = time.process_time()
    for c in chunks:
        proto.data_received(c)
    elapsed = time.process_time() - t0
    got = []
    for m in factory.messages:
        d = {}
        for k, v in m.items():
            # (panoramisk URL-decodes Result on purpose; the reference's Result
            # is all ASCII, so that is not counted either way.)
            d[k.lower()] = v[0] if isinstance(v, list) else v
        got.append(d)
    return elapsed, got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--split-every", type=int, default=50,
                    help="cut every N-th multi-byte character across two chunks")
    args = ap.parse_args(argv)
    stream, events = build_stream(args.events)
    chunks, split = chunk(stream, random.Random(args.seed), args.split_every)
    reference = reference_frames(stream)
    ref_events = [f for f in reference if f and f[0][0] == "Event"]
    ours_t, pano_t = [], []
    published = 0
    for _ in range(args.rounds):
        t, _, published = run_ours(chunks, keep=False)
        ours_t.append(t)
        t, _ = run_panoramisk(chunks, keep=False)
        pano_t.append(t)
    _, ours_vals, _ = run_ours(chunks, keep=True)
    _, pano_vals = run_panoramisk(chunks, keep=True)
    ours_best, pano_best = min(ours_t), min(pano_t)
    result = {
        "bench": "ami_ingest",
        "events": events,
        "bytes": len(stream),
        "chunks": len(chunks),
        "chars_split_across_chunks": split,
        "ours_events_per_s": round(events / ours_best),
        "panoramisk_events_per_s": round(events / pano_best),
        "speedup": round(pano_best / ours_best, 2),
        "ours_corrupted_chars": corrupted(reference, ours_vals),
        # panoramisk only dispatches events (responses go to pending actions),
        # so it is compared with the reference's events.
        "panoramisk_corrupted_chars": corrupted(ref_events, pano_vals),
        "non_ascii_chars_in_events": sum(nonascii(v) for f in ref_events for _, v in f),
        "ours_domain_events": published,
        "rounds": args.rounds,
        "python": platform.python_version(),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
