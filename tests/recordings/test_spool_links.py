"""Links, FIFOs, devices and folders in the voicemail spool never become recordings.

Real files on disk: a secret outside the spool (an ``/etc/passwd``-like file),
symlinks to it and to a message inside the spool, a FIFO, a character device,
a directory named like a message, a linked ``.txt``, a linked ``INBOX``. Each
is refused and logged once however often the spool is scanned; the real
messages beside them are ingested as before."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from recordings.models import Recording
from recordings.safefs import RefusalLog, RefusedFile, open_beneath
from recordings.spool import scan_spool
from recordings.store import RecordingStore
from tests.recordings.fakes import write_txt, write_wav
from tests.recordings.test_ingest import World, world  # noqa: F401  (fixture)

SECRET = b"root:x:0:0:root:/root:/bin/bash\n" * 40


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def inbox(root: Path, box: str = "8000") -> Path:
    path = root / "default" / box / "INBOX"
    path.mkdir(parents=True, exist_ok=True)
    return path


def plant(kind: str, folder: Path, secret: Path) -> str:
    """One hostile message ``msg0900`` of the given kind; returns its stem."""
    wav, txt = folder / "msg0900.wav", folder / "msg0900.txt"
    if kind == "symlink_out":
        wav.symlink_to(secret)
        write_txt(txt, msg_id="900-evil")
    elif kind == "symlink_in":
        wav.symlink_to(folder / "msg0000.wav")  # a real message, inside the spool
        write_txt(txt, msg_id="900-evil")
    elif kind == "relative_symlink":
        wav.symlink_to(os.path.relpath(secret, folder))
        write_txt(txt, msg_id="900-evil")
    elif kind == "txt_symlink":
        write_wav(wav)
        outside_txt = secret.parent / "meta.txt"
        write_txt(outside_txt, msg_id="900-evil")
        txt.symlink_to(outside_txt)
    elif kind == "fifo":
        os.mkfifo(wav)
        write_txt(txt, msg_id="900-evil")
    elif kind == "device":
        os.mknod(wav, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        write_txt(txt, msg_id="900-evil")
    elif kind == "directory":
        wav.mkdir()
        (wav / "inside").write_bytes(SECRET)
        write_txt(txt, msg_id="900-evil")
    else:
        raise AssertionError(kind)
    return "msg0900"


KINDS = ["symlink_out", "symlink_in", "relative_symlink", "txt_symlink", "fifo", "device",
         "directory"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_message_is_refused_and_logged_once(
        kind: str, tmp_path: Path, secret: Path, caplog: pytest.LogCaptureFixture) -> None:
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    root = tmp_path / "spool"
    folder = inbox(root)
    write_wav(folder / "msg0000.wav")
    write_txt(folder / "msg0000.txt", msg_id="100-good")
    plant(kind, folder, secret)
    refusals = RefusalLog()
    with caplog.at_level(logging.WARNING, logger="recordings.safefs"):
        for _ in range(3):  # every scan sees it; one warning
            found = scan_spool(root, refusals=refusals)
            assert [m.msg_id for m in found] == ["100-good"]
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "msg0900" in warnings[0]
    assert refusals.refused == 3


def test_a_linked_mailbox_folder_is_not_entered(tmp_path: Path, secret: Path) -> None:
    root = tmp_path / "spool"
    elsewhere = tmp_path / "elsewhere" / "INBOX"
    write_wav(elsewhere / "msg0000.wav")
    write_txt(elsewhere / "msg0000.txt", msg_id="100-elsewhere")
    (root / "default" / "8000").mkdir(parents=True)
    (root / "default" / "8000" / "INBOX").symlink_to(elsewhere)
    (root / "default" / "8001").symlink_to(elsewhere.parent)
    refusals = RefusalLog()
    assert scan_spool(root, refusals=refusals) == []
    assert refusals.refused == 2


def test_the_spool_root_itself_may_be_a_link(tmp_path: Path) -> None:
    real = tmp_path / "data-voicemail"
    write_wav(inbox(real) / "msg0000.wav")
    write_txt(inbox(real) / "msg0000.txt", msg_id="100-good")
    (tmp_path / "spool").symlink_to(real)
    assert [m.msg_id for m in scan_spool(tmp_path / "spool")] == ["100-good"]


def test_a_hard_link_to_a_file_outside_is_a_message(tmp_path: Path) -> None:
    """Accepted on purpose (recordings/safefs.py says why): app_voicemail built with
    HARDLINK_WHEN_POSSIBLE links a message into a second mailbox."""
    root = tmp_path / "spool"
    outside = write_wav(tmp_path / "other-mailbox" / "msg0000.wav")
    os.link(outside, inbox(root) / "msg0000.wav")
    write_txt(inbox(root) / "msg0000.txt", msg_id="100-linked")
    [msg] = scan_spool(root)
    with open_beneath(root, msg.audio_path.relative_to(root), max_bytes=1 << 20) as fh:
        assert fh.read() == outside.read_bytes()


def test_an_oversized_txt_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    write_wav(inbox(root) / "msg0000.wav")
    write_txt(inbox(root) / "msg0000.txt", msg_id="100-big")
    with (inbox(root) / "msg0000.txt").open("a") as fh:
        fh.write(";" + "x" * (70 * 1024) + "\n")
    refusals = RefusalLog()
    assert scan_spool(root, refusals=refusals) == []
    assert refusals.refused == 1


def test_open_beneath_refuses_what_a_check_then_open_would_follow(
        tmp_path: Path, secret: Path) -> None:
    root = tmp_path / "spool"
    folder = inbox(root)
    (folder / "msg0001.wav").symlink_to(secret)
    os.mkfifo(folder / "msg0002.wav")
    write_wav(folder / "msg0003.wav")
    (root / "default" / "linked").symlink_to(folder)
    for rel, why in [("default/8000/INBOX/msg0001.wav", "symbolic link"),
                     ("default/8000/INBOX/msg0002.wav", "FIFO"),
                     ("default/linked/msg0003.wav", "link or not a folder"),
                     ("default/8000/INBOX/../INBOX/msg0003.wav", "relative path"),
                     ("/etc/passwd", "relative path")]:
        with pytest.raises(RefusedFile) as err:
            open_beneath(root, rel, max_bytes=1 << 20)
        assert why in err.value.reason, (rel, err.value.reason)
    with pytest.raises(RefusedFile, match="larger than"):
        open_beneath(root, "default/8000/INBOX/msg0003.wav", max_bytes=100)


async def test_ingest_stores_none_of_them_and_keeps_the_good_message(
        world: World, secret: Path) -> None:  # noqa: F811
    folder = world.spool.root / "default" / "8000" / "INBOX"
    for n, kind in enumerate(["symlink_out", "symlink_in", "txt_symlink", "fifo", "directory"]):
        box = inbox(world.spool.root, f"90{n}")
        shutil.copy(folder / "msg0000.wav", box / "msg0000.wav")
        plant(kind, box, secret)
    ingest = world.ingest()
    report = await ingest.scan_and_process()
    again = await ingest.scan_and_process()
    # The fixture message of 8000 plus each hostile mailbox's own real msg0000 (no .txt: skipped).
    assert report.registered == 1 and again.registered == 0
    async with world.sm() as s:
        recs = (await s.scalars(select(Recording))).all()
    assert [r.mailbox for r in recs] == ["8000"]
    for path in (world.data_dir / "recordings").rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert SECRET not in path.read_bytes()


async def test_a_file_swapped_for_a_link_after_the_scan_is_refused_at_open(
        world: World, secret: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    shutil.rmtree(world.spool.root / "default")
    world.spool.add(msg_id="200-swapped")
    [msg] = scan_spool(world.spool.root)
    msg.audio_path.unlink()
    msg.audio_path.symlink_to(secret)  # between the scan and the copy
    ingest = world.ingest()
    with pytest.raises(RefusedFile, match="symbolic link"):
        await ingest.register(msg)
    async with world.sm() as s:
        assert (await s.scalars(select(Recording))).all() == []


def test_metadata_cannot_point_the_store_outside_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    write_wav(inbox(root) / "msg0000.wav")
    write_txt(inbox(root) / "msg0000.txt", msg_id="../../../../tmp/evil",
              mailbox="../../../etc", category="../../x")
    [msg] = scan_spool(root)
    assert "/" not in msg.msg_id
    store = RecordingStore(tmp_path / "data")
    assert msg.origtime is not None
    stored = store.relative_path("ab" * 32, msg.origtime, msg.msg_id, msg.audio_format)
    assert store.path_for(stored).is_relative_to(store.root)
    assert stored.count("/") == 2 and all(p not in ("..", ".") for p in stored.split("/"))

