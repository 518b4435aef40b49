"""Properties of the AMI parser over all of Unicode and every segmentation.

The same bytes give the same frames whatever the segmentation (one read, random
reads, one byte at a time, cuts inside multi-byte UTF-8), and every value
round-trips through ``encode_frame`` and the parser.

What AMI can carry, and so what is generated (see ``callcenter/ami/parser.py``):
keys are any text without ``:``, CR or LF; values any text without CR or LF
(``encode_frame`` turns those into spaces); lone surrogates are no text UTF-8
can carry. Line ends may be ``\\r\\n``, ``\\n`` or ``\\r\\r\\n``: all the same.

CI runs few examples (the file takes a few seconds); a long local run::

    HYPOTHESIS_PROFILE=long python3 -m pytest tests/ami/test_parser_properties.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.ami.captures import server_bytes
from callcenter.ami.parser import MAX_LINE, Banner, Frame, FrameParser, encode_frame

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
# One AMI session's worth of streams: 01_login opens with the banner (later
# captures each open with their own, so they are not part of this stream).
CAPTURES = [FIXTURES / "full" / f"{name}.log" for name in (
    "01_login", "02_asyncagi_hotline", "03_fastagi_ami", "04_voicemail", "05_queue", "06_logoff")]
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


def examples(n: int) -> settings:
    """``n`` examples in CI; 100,000 with ``HYPOTHESIS_PROFILE=long``."""
    return settings(max_examples=100_000 if LONG else n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


Headers = list[tuple[str, str]]

KEYS = st.text(st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs",)),
               max_size=12)
VALUES = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                 max_size=24)
# Characters whose case mapping changes the length of the text, and AMI's own
# spellings, mixed in so that they come up in almost every example.
TRICKY = st.sampled_from(["İ", "ẞ", "ﬁ", "Σ", "ς", "ŉ", "ǰ", "ΐ", "\u212a", "张三", "🙂",
                          "Event", "event", "Uniqueid", "Response", "Output", "ActionID",
                          "--END COMMAND--", " ", ": ", "\t", "\x00", "\x85", "\u2028"])
KEY = st.one_of(KEYS, TRICKY.filter(lambda s: ":" not in s))
VALUE = st.one_of(VALUES, TRICKY, st.builds(str.__add__, TRICKY, VALUES))
FRAME = st.lists(st.tuples(KEY, VALUE), min_size=1, max_size=8)
LINE_ENDS = st.sampled_from(["\r\n", "\n", "\r\r\n"])


def feed_all(chunks: list[bytes], *, expect_banner: bool = False) -> list[Frame | Banner]:
    parser = FrameParser(expect_banner=expect_banner)
    out: list[Frame | Banner] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def segments(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def expected_get(headers: Headers, key: str) -> str | None:
    lk = key.lower()
    return next((v for k, v in headers if k.lower() == lk), None)


def assert_frame_is(frame: Frame | Banner, headers: Headers) -> None:
    """The frame holds exactly ``headers``, and every way of reading it says so."""
    assert isinstance(frame, Frame)
    assert frame.headers == headers and frame.errors == []


def assert_reads_back(frame: Frame | Banner, headers: Headers) -> None:
    """A fresh lazy frame (not yet split) answers ``get``/``event``/``kind``
    exactly as its headers say."""
    assert isinstance(frame, Frame)
    for key in {k for k, _ in headers} | {"Event", "Uniqueid", "CallerIDName"}:
        assert frame.get(key) == expected_get(headers, key), key
    if headers[0][0] == "Event":
        assert frame.event == headers[0][1]
    assert frame.headers == headers


@examples(80)
@given(st.lists(FRAME, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12))
def test_frames_round_trip_whatever_the_segmentation(frames: list[Headers],
                                                     cuts: list[int]) -> None:
    data = b"".join(encode_frame(h) for h in frames)
    for chunks in ([data], segments(data, cuts)):
        got = feed_all(chunks)
        assert len(got) == len(frames)
        for frame, headers in zip(got, frames, strict=True):
            assert_frame_is(frame, headers)
    # Read through the lazy path before anything splits the frames.
    for frame, headers in zip(feed_all([data]), frames, strict=True):
        assert_reads_back(frame, headers)


@examples(40)
@given(FRAME)
def test_one_byte_at_a_time_gives_the_same_frame(headers: Headers) -> None:
    data = encode_frame(headers)
    [frame] = feed_all(one_byte_at_a_time(data))
    assert_frame_is(frame, headers)
    [lazy] = feed_all([data])
    assert_reads_back(lazy, headers)


@examples(80)
@given(st.lists(st.tuples(FRAME, st.lists(LINE_ENDS, min_size=9, max_size=9)), min_size=1,
                max_size=4),
       st.lists(st.integers(min_value=0), max_size=12))
def test_lf_and_cr_cr_lf_line_ends_give_the_frames_crlf_gives(
        frames: list[tuple[Headers, list[str]]], cuts: list[int]) -> None:
    """``\\n``, ``\\r\\n`` and ``\\r\\r\\n`` are one line end, for the header lines
    and for the blank line that ends a frame (``\\n\\r\\n`` included)."""
    text = "".join(
        "".join(f"{k}: {v}{ends[i]}" for i, (k, v) in enumerate(headers)) + ends[-1]
        for headers, ends in frames)
    data = text.encode("utf-8")
    for chunks in ([data], segments(data, cuts)):
        got = feed_all(chunks)
        assert len(got) == len(frames)
        for frame, (headers, _) in zip(got, frames, strict=True):
            assert_frame_is(frame, headers)


COMMAND_OUTPUT = st.lists(
    st.text(st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs",)),
            min_size=1, max_size=30).filter(lambda s: s != "--END COMMAND--"),
    max_size=5)


@examples(100)
@given(COMMAND_OUTPUT, st.booleans(), st.lists(st.integers(min_value=0), max_size=10))
def test_command_responses_with_end_command_on_every_path(output: list[str], lone: bool,
                                                          cuts: list[int]) -> None:
    """Old servers' ``Command`` replies: free text then ``--END COMMAND--``. The
    text becomes ``Output`` lines, the marker is dropped, and a lone marker
    (a frame of nothing else) is no frame, whatever the segmentation."""
    head = [("Response", "Follows"), ("Privilege", "Command"), ("ActionID", "a-1")]
    body = "".join(f"{k}: {v}\r\n" for k, v in head) + "".join(f"{o}\r\n" for o in output)
    data = (body + "--END COMMAND--\r\n\r\n").encode("utf-8")
    if lone:
        data = b"--END COMMAND--\r\n\r\n" + data + b"--END COMMAND--\r\n\r\n"
    expected = head + [("Output", o) for o in output]
    for chunks in ([data], segments(data, cuts), one_byte_at_a_time(data)):
        got = feed_all(chunks)
        assert len(got) == 1
        assert_frame_is(got[0], expected)


# Bytes AMI framing cares about, and a few that break UTF-8, in any order.
_TOKENS = st.sampled_from([
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b": ", b"Event", b"Response: Follows\r\n",
    b"Asterisk Call Manager/9.0.0", b"--END COMMAND--", b"a", b" ", "张".encode(),
    "İ".encode(), b"\xe5\xbc", b"\xff", b"\xc3", b"\x80",
])


@examples(200)
@given(st.lists(_TOKENS, max_size=40).map(b"".join), st.booleans(),
       st.lists(st.integers(min_value=0), max_size=12))
def test_any_bytes_give_the_same_frames_whatever_the_segmentation(
        data: bytes, banner: bool, cuts: list[int]) -> None:
    """Junk included: undecodable bytes, lines without a colon, stray CRs, a banner."""
    whole = feed_all([data], expect_banner=banner)
    assert feed_all(segments(data, cuts), expect_banner=banner) == whole
    assert feed_all(one_byte_at_a_time(data), expect_banner=banner) == whole


@examples(15)
@given(st.integers(min_value=-3, max_value=3), st.sampled_from(["A", "张"]),
       st.sampled_from(["\r\n", "\n", "\r\r\n"]),
       st.lists(st.integers(min_value=0), max_size=6))
def test_a_line_over_max_line_bytes_is_dropped_however_it_arrives(
        delta: int, char: str, end: str, cuts: list[int]) -> None:
    """The limit is in bytes of UTF-8, line end not counted, on every path."""
    prefix = "Data: "
    width = len(char.encode("utf-8"))
    value = char * ((MAX_LINE - len(prefix)) // width + delta)
    line_bytes = len((prefix + value).encode("utf-8"))
    data = (f"Event: UserEvent{end}{prefix}{value}{end}Uniqueid: 5{end}{end}"
            "Event: Hangup\r\n\r\n").encode()
    whole = feed_all([data])
    assert feed_all(segments(data, cuts)) == whole
    assert [f.event for f in whole if isinstance(f, Frame)] == ["UserEvent", "Hangup"]
    first = whole[0]
    assert isinstance(first, Frame) and first.get("Uniqueid") == "5"
    if line_bytes > MAX_LINE:
        assert first.get("Data") is None and first.errors
    else:
        assert first.get("Data") == value and not first.errors


def _captured_stream() -> bytes:
    return b"".join(server_bytes(p.read_bytes()) for p in CAPTURES)


CAPTURED = _captured_stream()
CAPTURED_WHOLE = feed_all([CAPTURED], expect_banner=True)


def test_the_captures_parse_with_values_intact() -> None:
    frames = [f for f in CAPTURED_WHOLE if isinstance(f, Frame)]
    assert isinstance(CAPTURED_WHOLE[0], Banner) and len(frames) > 100
    assert not [f for f in frames if f.errors]
    assert "张三 客服测试" in {f.get("CallerIDName") for f in frames}


@examples(30)
@given(st.lists(st.integers(min_value=1, max_value=len(CAPTURED) - 1), max_size=200))
def test_the_real_captures_resegmented_give_the_same_frames(cuts: list[int]) -> None:
    assert feed_all(segments(CAPTURED, cuts), expect_banner=True) == CAPTURED_WHOLE


def test_the_real_captures_one_byte_at_a_time() -> None:
    assert feed_all(one_byte_at_a_time(CAPTURED), expect_banner=True) == CAPTURED_WHOLE


def test_a_caller_named_with_a_dotted_capital_i_keeps_every_value() -> None:
    """``"İ".lower()`` is two characters: offsets taken from the lowered text
    shifted every value after it (``'İ\\r'``, ``Uniqueid`` ``'.2'``)."""
    headers = [("Event", "AsyncAGIExec"), ("CallerIDName", "İ"), ("Uniqueid", "1.2"),
               ("CommandId", "cmd-1/1"), ("Result", "200%20result%3D0%0A")]
    [frame] = FrameParser(expect_banner=False).feed(encode_frame(headers))
    assert isinstance(frame, Frame) and not frame.parsed  # the lazy path answers
    assert frame.get("CallerIDName") == "İ"
    assert frame.get("Uniqueid") == "1.2"
    assert frame.get("CommandId") == "cmd-1/1"


def test_a_frame_ending_lf_cr_lf_is_delivered_without_waiting_for_the_next() -> None:
    parser = FrameParser(expect_banner=False)
    [frame] = parser.feed(b"Event: Hangup\r\nUniqueid: 7\n\r\n")
    assert isinstance(frame, Frame) and frame.get("Uniqueid") == "7"


def test_a_lone_end_command_is_no_frame_on_every_path() -> None:
    assert FrameParser(expect_banner=False).feed(b"--END COMMAND--\r\n\r\n") == []
    parser = FrameParser(expect_banner=False)
    assert parser.feed(b"--END COMMAND--\r\n") + parser.feed(b"\r\n") == []
