"""Pure AMI framing: bytes in, whole frames out. No sockets here.

AMI is a line protocol: ``Key: Value`` lines terminated by CRLF, a frame ends
with an empty line. The first line a server sends is a banner without a colon
(``Asterisk Call Manager/9.0.0``). Responses to ``Command`` carry ``Output:``
lines (Asterisk 14+); very old servers sent free text ending with
``--END COMMAND--``, which we keep as ``Output`` lines too.

Bytes are buffered until a whole line is present, then decoded as UTF-8, so a
multi-byte character split across two TCP reads arrives whole (panoramisk 1.4
decodes each read on its own and loses such characters).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024
"""A line longer than this is junk: it is dropped and reported, the link lives on."""
MAX_FRAME_LINES = 4096


@dataclass(slots=True)
class Frame:
    """One AMI message: ordered headers; repeated keys (Output, Variable) kept."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
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
        return {k: v for k, v in self.headers}

    @property
    def kind(self) -> str:
        """``event``, ``response`` or ``other``."""
        first = self.headers[0][0] if self.headers else ""
        if first == "Event":
            return "event"
        first = first.lower()
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

    __slots__ = ("_buf", "_headers", "_errors", "_banner_seen", "_skipping")

    def __init__(self, *, expect_banner: bool = True) -> None:
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
            if len(buf) <= MAX_LINE and b"\n\n" not in buf:
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
        if len(self._buf) > MAX_LINE:
            self._errors.append(f"line longer than {MAX_LINE} bytes dropped")
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
        for chunk in text.split("\r\n\r\n"):
            if not chunk:
                continue
            lines = chunk.split("\r\n")
            parts = [line.split(": ", 1) for line in lines]
            if (min(map(len, parts)) == 2 and len(lines) <= MAX_FRAME_LINES
                    and max(map(len, lines)) <= MAX_LINE):
                append(Frame(list(map(tuple, parts))))  # type: ignore[arg-type]
            else:
                for line in lines:
                    self._text_line(line, out)
                self._text_line("", out)
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
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            self._errors.append(f"invalid UTF-8 in line {line[:80]!r}")
        self._text_line(line, out)

    def _text_line(self, line: str, out: list[Frame | Banner]) -> None:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            if self._headers or self._errors:
                out.append(Frame(self._headers, self._errors))
                self._headers = []
                self._errors = []
            return
        if len(line) > MAX_LINE:
            self._errors.append(f"line longer than {MAX_LINE} characters dropped")
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
            if line == "--END COMMAND--":
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
