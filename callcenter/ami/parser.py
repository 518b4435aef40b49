"""Pure AMI framing: bytes in, whole frames out. No sockets here.

AMI is a line protocol: ``Key: Value`` lines terminated by CRLF, a frame ends
with an empty line. The first line a server sends is a banner without a colon
(``Asterisk Call Manager/9.0.0``). Responses to ``Command`` carry ``Output:``
lines (Asterisk 14+); very old servers sent free text ending with
``--END COMMAND--``, which we keep as ``Output`` lines too.

Bytes are buffered until a whole line is present, then decoded as UTF-8, so a
multi-byte character split across two TCP reads arrives whole (panoramisk 1.4
decodes each read on its own and loses such characters).

The same bytes give the same frames whatever their segmentation (one read or
one byte at a time), and every value round-trips. The rules that make this
exact, on every path (the fast whole-frame path, the line path, lazy frames):

- a line ends at LF; any CRs just before it belong to the line end, so
  ``\r\n``, ``\n`` and ``\r\r\n`` are the same line end and a line of CRs is a
  blank line. A value therefore never ends with CR, and never holds LF (AMI
  cannot carry either: ``encode_frame`` turns them into spaces);
- a line is ``Key: Value`` (split at the first ``": "``) or ``Key:Value``; a
  key never holds ``:``; keys and values are otherwise any Unicode text;
- a line longer than ``MAX_LINE`` bytes of UTF-8 (its line-end CRs not
  counted) is dropped and reported, however it arrived;
- ``--END COMMAND--`` lines are dropped; a frame of nothing else is no frame;
- offsets are never taken from a transformed copy of the text
  (``"İ".lower()`` is two characters long).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter, methodcaller

MAX_LINE = 64 * 1024
"""A line longer than this is junk: it is dropped and reported, the link lives on."""
MAX_FRAME_LINES = 4096
_SAFE_CHARS = MAX_LINE // 4
"""A line of at most this many characters is at most MAX_LINE bytes of UTF-8."""
_TOO_LONG = f"line longer than {MAX_LINE} bytes dropped"
END_COMMAND = "--END COMMAND--"
_PARTITION = methodcaller("partition", ": ")
_SEP = itemgetter(1)
_KEY_VALUE = itemgetter(0, 2)
_LAZY_MAX = 5 * MAX_FRAME_LINES
"""Frames shorter than this cannot exceed MAX_FRAME_LINES (a line is at least
"K: " plus CRLF), so their text answers ``get`` exactly."""


JunkHook = Callable[["Frame"], None]


class Frame:
    """One AMI message: ordered headers; repeated keys (Output, Variable) kept.

    Frames from the parser's fast path are lazy: they hold the frame's text
    and split it into headers only when ``headers``/``errors``/``get`` need
    them. ``event``, ``kind`` and the absence of a key are answered from the
    text, so an event nobody listens to is never split (most of a busy AMI
    stream: VarSet, Newexten, DeviceStateChange...). The result is exactly
    what eager parsing gives.
    """

    __slots__ = ("_headers", "_errors", "_raw", "_on_junk", "_first")

    def __init__(self, headers: list[tuple[str, str]] | None = None,
                 errors: list[str] | None = None) -> None:
        self._headers: list[tuple[str, str]] | None = [] if headers is None else headers
        self._errors: list[str] | None = [] if errors is None else errors
        self._raw: str | None = None
        self._on_junk: JunkHook | None = None
        self._first: str | None = None

    @classmethod
    def lazy(cls, raw: str, on_junk: JunkHook | None = None) -> Frame:
        """A frame from its text (CRLF-separated lines, no blank line)."""
        frame = cls.__new__(cls)
        frame._headers = None
        frame._errors = None
        frame._raw = raw
        frame._on_junk = on_junk
        frame._first = None
        return frame

    def _parse(self) -> None:
        raw = self._raw or ""
        lines = raw.split("\r\n")
        parts = list(map(_PARTITION, lines))
        if (all(map(_SEP, parts)) and len(lines) <= MAX_FRAME_LINES
                and (len(raw) <= _SAFE_CHARS or len(raw.encode("utf-8")) <= MAX_LINE)):
            self._headers, self._errors = list(map(_KEY_VALUE, parts)), []
        else:
            parser = FrameParser(expect_banner=False)
            for line in lines:
                parser._text_line(line, [])
            self._headers, self._errors = parser._headers, parser._errors
        self._raw = None
        if self._errors and self._on_junk is not None:
            self._on_junk(self)

    @property
    def parsed(self) -> bool:
        return self._raw is None

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._parse()
        assert self._headers is not None
        return self._headers

    @headers.setter
    def headers(self, value: list[tuple[str, str]]) -> None:
        self._headers, self._raw = value, None
        if self._errors is None:
            self._errors = []

    @property
    def errors(self) -> list[str]:
        if self._errors is None:
            self._parse()
        assert self._errors is not None
        return self._errors

    @errors.setter
    def errors(self, value: list[str]) -> None:
        self.headers  # noqa: B018 - parse first
        self._errors = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return self.headers == other.headers and self.errors == other.errors

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Frame(headers={self.headers!r}, errors={self.errors!r})"

    def _first_line(self) -> str:
        first = self._first
        if first is None:
            raw = self._raw or ""
            end = raw.find("\r\n")
            first = self._first = raw if end < 0 else raw[:end]
        return first

    def _lazy_get(self, raw: str, key: str) -> tuple[bool, str | None]:
        """Answer ``get`` from the text when that is exact: (True, value or
        None). (False, None): split the frame to know."""
        if len(raw) > _LAZY_MAX or key.lower() == "output" or ":" in key:
            return False, None
        low = raw.lower()
        if len(low) != len(raw):
            # A character whose lower case is longer ("İ" → "i̇"): offsets in
            # ``low`` are no offsets in ``raw``. (Equal lengths: every character
            # mapped to one, so they are.)
            return False, None
        low = "\r\n" + low
        lk = "\r\n" + key.lower() + ":"
        i = low.find(lk)
        if i < 0:
            return True, None  # no line starts with "key:": no such header
        start = i + len(lk)
        if low[start:start + 1] != " ":
            return False, None  # "Key:value": the careful path decides
        end = low.find("\r\n", start)
        # Offsets in ``low`` are shifted by the 2 characters prepended.
        return True, raw[start - 1: (end - 2) if end >= 0 else len(raw)]

    def get(self, key: str, default: str | None = None) -> str | None:
        raw = self._raw
        if raw is not None:
            known, value = self._lazy_get(raw, key)
            if known:
                return default if value is None else value
        lk = key.lower()
        for k, v in self.headers:
            if k.lower() == lk:
                return v
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def getall(self, key: str) -> list[str]:
        lk = key.lower()
        return [v for k, v in self.headers if k.lower() == lk]

    def as_dict(self) -> dict[str, str]:
        """Last value wins for repeated keys; use ``getall`` for those."""
        return dict(self.headers)

    @property
    def kind(self) -> str:
        """``event``, ``response`` or ``other``."""
        if self._raw is not None:
            first = self._first_line()
            if first.startswith("Event: "):
                return "event"
            if first.startswith("Response: "):
                return "response"
        headers = self.headers
        first = headers[0][0].lower() if headers else ""
        if first == "event":
            return "event"
        if first == "response":
            return "response"
        if "Event" in self:
            return "event"
        if "Response" in self:
            return "response"
        return "other"

    @property
    def event(self) -> str | None:
        if self._raw is not None:
            first = self._first_line()
            if first.startswith("Event: "):
                return first[7:]
        h = self.headers
        if h and h[0][0] == "Event":
            return h[0][1]
        return self.get("Event")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


@dataclass(slots=True)
class Banner:
    text: str


class FrameParser:
    """Incremental AMI parser. ``feed(bytes)`` returns the frames completed by it.

    Junk lines (no colon, undecodable bytes, over-long) are recorded in
    ``Frame.errors`` and the frame is still delivered; nothing raises.
    """

    __slots__ = ("_buf", "_headers", "_errors", "_banner_seen", "_skipping", "_on_junk")

    def __init__(self, *, expect_banner: bool = True, on_junk: JunkHook | None = None) -> None:
        """``on_junk(frame)`` is called for each frame found to hold junk (a
        lazy frame: when it is first read)."""
        self._on_junk = on_junk
        self._buf = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._errors: list[str] = []
        self._banner_seen = not expect_banner
        self._skipping = False

    def feed(self, data: bytes) -> list[Frame | Banner]:
        out: list[Frame | Banner] = []
        buf = self._buf
        buf += data
        if self._banner_seen and not (self._headers or self._errors or self._skipping):
            # Fast path: at a frame boundary, take every complete frame at once.
            end = buf.rfind(b"\r\n\r\n")
            if end >= 0:
                block = bytes(buf[: end + 4])
                del buf[: end + 4]
                if not self._feed_frames(block, out):
                    self._feed_lines(block, out)
            if len(buf) <= MAX_LINE and not _may_end_a_frame(buf):
                return out
        # Line path: mid-frame, before the banner, or a frame too big to wait for.
        end = buf.rfind(b"\n")
        if end >= 0:
            block = bytes(buf[: end + 1])
            del buf[: end + 1]
            self._feed_lines(block, out)
        self._check_overflow()
        return out

    def _check_overflow(self) -> None:
        # ``_buf`` holds the start of one line: once that is over-long, the
        # whole line will be (see ``_over_long``), so drop it now.
        if len(self._buf) > MAX_LINE and _over_long(self._buf):
            self._errors.append(_TOO_LONG)
            self._buf.clear()
            self._skipping = True

    def _feed_frames(self, block: bytes, out: list[Frame | Banner]) -> bool:
        """Whole CRLF frames, decoded in one go (a UTF-8 character never spans
        a line end, so this is exact). False: not plain CRLF UTF-8, use lines."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return False
        crlf = text.count("\r\n")
        if text.count("\n") != crlf or text.count("\r") != crlf:
            return False
        append = out.append
        lazy = Frame.lazy
        hook = self._on_junk
        for chunk in text.split("\r\n\r\n"):
            if chunk:
                if chunk[:2] == "\r\n":  # stray blank lines between frames
                    chunk = chunk.lstrip("\r\n")
                    if not chunk:
                        continue
                if chunk[0] == "-" and _only_end_command(chunk):
                    continue  # what the line path makes of it: no frame
                append(lazy(chunk, hook))
        return True

    def _feed_lines(self, block: bytes, out: list[Frame | Banner]) -> None:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            self._feed_lines_slow(block, out)
            return
        lines = text.split("\n")
        lines.pop()  # the empty string after the last newline
        for line in lines:
            if self._skipping:
                # The tail of an over-long line: swallow it.
                self._skipping = False
                continue
            self._text_line(line, out)

    def _feed_lines_slow(self, block: bytes, out: list[Frame | Banner]) -> None:
        start = 0
        while True:
            nl = block.find(b"\n", start)
            if nl < 0:
                break
            raw = block[start:nl]
            start = nl + 1
            if self._skipping:
                self._skipping = False
                continue
            self._line(raw, out)

    def _line(self, raw: bytes, out: list[Frame | Banner]) -> None:
        """One line as bytes, its LF removed (the slow path: invalid UTF-8 in the block)."""
        if len(raw) > MAX_LINE and _over_long(raw):
            self._errors.append(_TOO_LONG)
            return
        raw = raw.rstrip(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            self._errors.append(f"invalid UTF-8 in line {line[:80]!r}")
        self._clean_line(line, out)

    def _text_line(self, line: str, out: list[Frame | Banner]) -> None:
        """One decoded line, its LF removed; the CRs before the LF may still be there."""
        if len(line) > _SAFE_CHARS and _over_long(line.encode("utf-8")):
            self._errors.append(_TOO_LONG)
            return
        if line[-1:] == "\r":
            line = line.rstrip("\r")
        self._clean_line(line, out)

    def _clean_line(self, line: str, out: list[Frame | Banner]) -> None:
        """One line without its line end."""
        if not line:
            if self._headers or self._errors:
                frame = Frame(self._headers, self._errors)
                out.append(frame)
                self._headers = []
                self._errors = []
                if frame.errors and self._on_junk is not None:
                    self._on_junk(frame)
            return
        if not self._banner_seen:
            self._banner_seen = True
            if ":" not in line or line.startswith("Asterisk Call Manager"):
                out.append(Banner(line))
                return
        if ": " in line:
            key, value = line.split(": ", 1)
            sep = ":"
        else:
            key, sep, value = line.partition(":")
        if not sep:
            if line == END_COMMAND:
                return
            if self._headers and self._headers[0][0] == "Response":
                self._headers.append(("Output", line))
            else:
                self._errors.append(f"junk line {line[:80]!r}")
            return
        if len(self._headers) >= MAX_FRAME_LINES:
            self._errors.append("too many lines in one frame")
            return
        self._headers.append((key, value))


def _over_long(raw: bytes | bytearray) -> bool:
    """Whether a line (its LF removed) is over-long: more than MAX_LINE bytes
    before its line-end CRs, or a flood of CRs. Both only grow as more of a
    line arrives, so a line's start can be judged before its end is seen."""
    return len(raw) > 2 * MAX_LINE or len(raw.rstrip(b"\r")) > MAX_LINE


_BLANK_LINE = re.compile(rb"\n\r*\n")


def _may_end_a_frame(buf: bytearray) -> bool:
    """Whether ``buf`` holds a blank line (LF, any CRs, LF) that ends a frame:
    then the line path must run now rather than wait for more bytes. (A test
    looser than this sends reads that end between LF and CR down the slower
    line path, and it stays there until a read ends on a frame boundary.)"""
    return _BLANK_LINE.search(buf) is not None


def _only_end_command(chunk: str) -> bool:
    return all(line == END_COMMAND for line in chunk.split("\r\n"))


def encode_frame(headers: Iterable[tuple[str, str]] | dict[str, str]) -> bytes:
    """Serialise one frame (action or event) with CRLF line ends.

    CR and LF inside a value would end the frame early (header injection), so
    they are replaced by spaces.
    """
    items: Iterator[tuple[str, str]]
    items = iter(headers.items()) if isinstance(headers, dict) else iter(headers)
    parts = []
    for key, value in items:
        value = str(value).replace("\r", " ").replace("\n", " ")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")
