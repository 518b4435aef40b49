"""The pure AMI parser: any segmentation of the byte stream gives the same frames."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.ami.captures import server_bytes
from callcenter.ami.parser import MAX_LINE, Banner, Frame, FrameParser, encode_frame

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
FULL = [FIXTURES / "full" / f"{name}.log" for name in (  # one session: one banner
    "01_login", "02_asyncagi_hotline", "03_fastagi_ami", "04_voicemail", "05_queue", "06_logoff")]
STREAM = b"".join(server_bytes(p.read_bytes()) for p in FULL)  # 01_login starts with the banner


def parse(chunks: list[bytes]) -> list[Frame | Banner]:
    parser = FrameParser()
    out: list[Frame | Banner] = []
    for c in chunks:
        out += parser.feed(c)
    return out


WHOLE = parse([STREAM])


def names(items: list[Frame | Banner]) -> list[str]:
    return [f.get("CallerIDName") or "" for f in items if isinstance(f, Frame)]


def test_the_recorded_stream_parses_cleanly() -> None:
    assert isinstance(WHOLE[0], Banner) and WHOLE[0].text == "Asterisk Call Manager/9.0.0"
    frames = [f for f in WHOLE if isinstance(f, Frame)]
    assert len(frames) > 250
    assert not [f for f in frames if f.errors]
    assert {"张三 客服测试", "王小明"} <= set(names(WHOLE))
    env = next(f for f in frames if f.event == "AsyncAGIStart")["Env"]
    assert env.startswith("agi_request%3A%20async")


def test_every_split_offset_around_a_chinese_name_keeps_frames_intact() -> None:
    data = server_bytes((FIXTURES / "02_asyncagi_hotline.txt").read_bytes())
    whole = parse([data])
    first = data.index("张三".encode())
    for cut in range(max(0, first - 300), min(len(data), first + 600)):
        assert parse([data[:cut], data[cut:]]) == whole, cut


def test_every_split_offset_of_a_frame_with_utf8() -> None:
    frame = encode_frame([("Event", "Newchannel"), ("CallerIDName", "李秀英 物业前台"),
                          ("Uniqueid", "1.1")])
    data = frame * 3
    whole = parse([data])
    for a in range(len(data)):
        for b in range(a, len(data), 7):
            assert parse([data[:a], data[a:b], data[b:]]) == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_arbitrary_segmentation_preserves_frames(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert parse(chunks) == WHOLE


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda s: "\r" not in s and "\n" not in s),
       st.data())
def test_any_unicode_name_survives_any_split(name: str, data: st.DataObject) -> None:
    raw = encode_frame([("Event", "NewCallerid"), ("CallerIDName", name)])
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    frames = parse([raw[:cut], raw[cut:]])
    assert len(frames) == 1 and isinstance(frames[0], Frame)
    assert frames[0].get("CallerIDName") == name


def test_ten_thousand_events_in_one_read() -> None:
    one = encode_frame([("Event", "VarSet"), ("Channel", "PJSIP/1001-0000001"),
                        ("Variable", "名字"), ("Value", "王小明"), ("Uniqueid", "1")])
    frames = FrameParser(expect_banner=False).feed(one * 10_000)
    assert len(frames) == 10_000
    assert all(isinstance(f, Frame) and f.get("Value") == "王小明" for f in frames)


def test_junk_lines_are_reported_and_the_rest_survives() -> None:
    parser = FrameParser(expect_banner=False)
    out = parser.feed(b"Event: Hangup\r\nthis line has no colon\r\nUniqueid: 9\r\n\r\n"
                      b"Event: Newstate\r\nCallerIDName: \xe5\xbc\xff\r\n\r\n"
                      b"\r\n\r\n"  # stray blank lines are no frames
                      b"Event: Newchannel\r\nUniqueid: 10\r\n\r\n")
    assert [f.event for f in out if isinstance(f, Frame)] == ["Hangup", "Newstate", "Newchannel"]
    hangup, newstate, newchannel = out
    assert isinstance(hangup, Frame) and hangup.get("Uniqueid") == "9"
    assert hangup.errors and "junk" in hangup.errors[0]
    assert isinstance(newstate, Frame) and "invalid UTF-8" in newstate.errors[0]
    assert isinstance(newchannel, Frame) and not newchannel.errors


def test_huge_value_is_dropped_without_losing_the_next_frames() -> None:
    parser = FrameParser(expect_banner=False)
    huge = b"Event: UserEvent\r\nData: " + b"A" * (MAX_LINE * 3) + b"\r\nUniqueid: 5\r\n\r\n"
    out: list[Frame | Banner] = []
    for i in range(0, len(huge), 4096):
        out += parser.feed(huge[i:i + 4096])
    out += parser.feed(b"Event: Hangup\r\nUniqueid: 6\r\n\r\n")
    frames = [f for f in out if isinstance(f, Frame)]
    assert [f.event for f in frames] == ["UserEvent", "Hangup"]
    assert frames[0].get("Data") is None and frames[0].get("Uniqueid") == "5"
    assert frames[0].errors
    assert len(parser._buf) < MAX_LINE  # nothing unbounded kept


def test_bare_lf_line_ends_are_accepted() -> None:
    out = FrameParser(expect_banner=False).feed(b"Event: Hangup\nUniqueid: 7\n\n")
    assert isinstance(out[0], Frame) and out[0].get("Uniqueid") == "7"


_KEYS = st.sampled_from(["Event", "event", "Uniqueid", "UNIQUEID", "Foo", "Output", "Key:",
                         "Application", ""])
_VALUES = st.text(alphabet=st.sampled_from(list("ab: 张\t")), max_size=6)
_LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", _KEYS, _VALUES),
    st.builds(lambda k, v: f"{k}:{v}", _KEYS, _VALUES),
    st.text(alphabet=st.sampled_from(list("ab 张:")), min_size=1, max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=8).filter(
    lambda ls: all(line.strip("\r\n") == line and line for line in ls)))
def test_lazy_frames_answer_exactly_like_eager_ones(lines: list[str]) -> None:
    raw = "\r\n".join(lines)
    eager = FrameParser(expect_banner=False)
    out: list[Frame | Banner] = []
    for line in lines:
        eager._text_line(line, out)
    eager._text_line("", out)
    reference = out[0] if out else Frame()
    for key in ["Event", "event", "Uniqueid", "Foo", "Output", "Key", "Application", "Missing"]:
        assert Frame.lazy(raw).get(key) == reference.get(key), key
    lazy = Frame.lazy(raw)
    assert (lazy.event, lazy.kind) == (reference.event, reference.kind)
    assert lazy == reference


def test_junk_hook_reports_lazy_frames_when_read() -> None:
    seen: list[Frame] = []
    parser = FrameParser(expect_banner=False, on_junk=seen.append)
    frames = parser.feed(b"Event: A\r\nno colon here\r\n\r\nEvent: B\r\nX: 1\r\n\r\n")
    assert [f.event for f in frames if isinstance(f, Frame)] == ["A", "B"]
    assert seen == []  # nothing read yet: events are named from the text alone
    a = frames[0]
    assert isinstance(a, Frame) and a.errors and seen == [a]
