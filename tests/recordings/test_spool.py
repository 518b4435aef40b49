"""Reading app_voicemail's spool and storing recordings safely."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recordings.spool import parse_callerid, parse_message_txt, scan_spool
from recordings.store import RecordingStore, UnsafePath
from tests.conftest import FIXTURES
from tests.recordings.fakes import write_txt, write_wav

SPOOL = FIXTURES / "asterisk" / "voicemail-spool"


def test_the_real_asterisk_message_is_read_in_full() -> None:
    [msg] = scan_spool(SPOOL)
    assert (msg.context, msg.mailbox, msg.folder, msg.msgnum) == ("default", "8000", "INBOX", "0000")
    assert msg.msg_id == "1795343499-00000000"
    assert (msg.caller_name, msg.caller_number) == ("王小明", "13912345678")
    assert msg.origtime == datetime(2026, 11, 22, 10, 31, 39, tzinfo=UTC)
    assert msg.duration_s == 8.0
    assert msg.audio_path.name == "msg0000.wav" and msg.audio_format == ".wav"


@pytest.mark.parametrize(("raw", "expected"), [
    ('"王小明" <13912345678>', ("王小明", "13912345678")),
    ("<13912345678>", ("", "13912345678")),
    ('"" <075526543210>', ("", "075526543210")),
    ("13912345678", ("", "13912345678")),
    ('"Unknown" <unknown>', ("", "")),
    ("", ("", "")),
    ('"张 三" <+86 139 1234 5678>', ("张 三", "+86 139 1234 5678")),
])
def test_callerid_forms(raw: str, expected: tuple[str, str]) -> None:
    assert parse_callerid(raw) == expected


def test_metadata_without_a_message_section_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_message_txt("callerid=x\n")
    with pytest.raises(ValueError):
        parse_message_txt("[message\ncallerid=x")
    assert parse_message_txt("[message]\nflag=\ncallerid=a=b\n")["callerid"] == "a=b"


def test_incomplete_and_broken_messages_are_skipped_not_fatal(tmp_path: Path) -> None:
    inbox = tmp_path / "default" / "8000" / "INBOX"
    write_wav(inbox / "msg0000.wav")
    write_txt(inbox / "msg0000.txt", msg_id="100-1")
    write_txt(inbox / "msg0001.txt", msg_id="100-2")  # wav not moved in yet
    write_wav(inbox / "msg0002.wav")
    (inbox / "msg0002.txt").write_text("garbage without a section", encoding="utf-8")
    write_wav(inbox / "msg0003.wav")  # txt not there
    write_wav(inbox / "msg0004.wav")
    write_txt(inbox / "msg0004.txt", msg_id="../../etc/passwd")
    (inbox / "notes.txt").write_text("[message]\n", encoding="utf-8")
    write_wav(tmp_path / "other" / "9000" / "INBOX" / "msg0000.wav")
    write_txt(tmp_path / "other" / "9000" / "INBOX" / "msg0000.txt", msg_id="200-1")
    found = scan_spool(tmp_path)
    assert [(m.context, m.msgnum, m.msg_id) for m in found] == [
        ("default", "0000", "100-1"), ("default", "0004", "....etcpasswd"), ("other", "0000", "200-1")]
    assert [m.context for m in scan_spool(tmp_path, contexts=("other",))] == ["other"]
    assert scan_spool(tmp_path, mailboxes=("7777",)) == []
    assert scan_spool(tmp_path / "missing") == []


def test_message_without_msg_id_gets_a_stable_one(tmp_path: Path) -> None:
    inbox = tmp_path / "default" / "8000" / "INBOX"
    write_wav(inbox / "msg0007.wav")
    txt = inbox / "msg0007.txt"
    write_txt(txt)
    txt.write_text(txt.read_text(encoding="utf-8").replace("msg_id=1795343499-00000000\n", ""),
                   encoding="utf-8")
    [msg] = scan_spool(tmp_path)
    assert not msg.has_msg_id
    assert re.fullmatch(r"1795343499-[0-9a-f]{16}", msg.msg_id)
    # Renumbered (a deletion resequenced the folder) and moved to Old/: the same id.
    old = tmp_path / "default" / "8000" / "Old"
    old.mkdir()
    (inbox / "msg0007.wav").rename(old / "msg0002.wav")
    txt.rename(old / "msg0002.txt")
    [moved] = scan_spool(tmp_path)
    assert (moved.folder, moved.msgnum, moved.msg_id) == ("Old", "0002", msg.msg_id)
    # Another caller, channel or duration at the same second is another message.
    original = (old / "msg0002.txt").read_text(encoding="utf-8")
    for field, value in (("callerid", "<13800000002>"), ("duration", "9"),
                         ("callerchan", "PJSIP/trunk-00000009")):
        (old / "msg0002.txt").write_text(
            re.sub(rf"(?m)^{field}=.*$", f"{field}={value}", original), encoding="utf-8")
        [changed] = scan_spool(tmp_path)
        assert changed.msg_id != msg.msg_id, field


def test_message_without_msg_id_or_origtime_keeps_its_number_in_the_id(tmp_path: Path) -> None:
    inbox = tmp_path / "default" / "8000" / "INBOX"
    for n in (0, 1):  # two messages nothing else tells apart
        write_wav(inbox / f"msg000{n}.wav")
        (inbox / f"msg000{n}.txt").write_text("[message]\ncallerid=\n", encoding="utf-8")
    ids = [m.msg_id for m in scan_spool(tmp_path)]
    assert len(set(ids)) == 2 and all(i.startswith("unknown-") for i in ids)


async def test_store_copies_atomically_and_never_leaves_its_root(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "data")
    src = write_wav(tmp_path / "in.wav")
    rel = store.relative_path("ab" * 32, datetime(2026, 11, 22, tzinfo=UTC), "../../x y")
    assert rel == "2026/11/abababababababab-....xy.wav"
    size = await store.save(src, rel)
    assert size == src.stat().st_size
    assert store.path_for(rel).read_bytes() == src.read_bytes()
    assert not list(store.path_for(rel).parent.glob(".incoming-*"))
    for bad in ("../secret.wav", "/etc/passwd", "2026/../../x.wav", ""):
        with pytest.raises(UnsafePath):
            store.path_for(bad)
    assert await store.delete(rel) is True
    assert await store.delete(rel) is False
