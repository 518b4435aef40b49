"""Opening files under a folder without following links out of it.

Asterisk's voicemail spool is writable by more than this server (app_voicemail,
a backup tool, anyone with the asterisk user), so a name in it is not proof of
what it points at: ``INBOX/msg0900.wav → /etc/shadow`` must never become a
recording that anyone signed in can download. Every file the ingest reads
there, and every file the recording store serves, is opened with
:func:`open_beneath`: each folder on the way with ``O_NOFOLLOW | O_DIRECTORY``
relative to the one before (``dir_fd``), the file itself with ``O_NOFOLLOW``,
then ``fstat`` of the open descriptor must be a regular file within the size
limit. A symlink anywhere below the root (to a file inside the folder or
outside it), a FIFO, a device, a socket or a directory named like a message is
refused with :class:`RefusedFile`, whose ``reason`` says which.

There is no check-then-open: the descriptor that was checked is the one read.

Hard links (``st_nlink > 1``) are accepted. app_voicemail links a message into
a second mailbox instead of copying it when built with
``HARDLINK_WHEN_POSSIBLE``, and snapshot backups (rsnapshot, ``cp -al``)
link whole spools; refusing them would lose real messages. A hard link cannot
reach outside what its creator could already read: Linux's
``fs.protected_hardlinks`` (on by default) forbids linking a file one does not
own or cannot read and write, and a hard link cannot cross file systems.

The root itself may be a symlink (an operator's ``/var/spool/asterisk/voicemail
→ /data/voicemail``): it is configuration, not spool content.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import OrderedDict
from pathlib import Path, PurePath
from typing import BinaryIO

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer (it is refused
# right after, by fstat); O_NOCTTY: a terminal device never becomes ours.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class RefusedFile(ValueError):
    """A file that is not a plain file beneath the root: ``path`` and ``reason``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def kind_of(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in the words a log line uses."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _parts(relative: str | PurePath) -> list[str]:
    parts = list(PurePath(relative).parts)
    if not parts or PurePath(relative).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise RefusedFile(Path(relative), "not a plain relative path")
    return parts


def open_beneath(root: Path, relative: str | PurePath, *, max_bytes: int) -> BinaryIO:
    """Open ``root/relative`` for reading, refusing links, non-regular files and
    anything larger than ``max_bytes`` (:class:`RefusedFile`). ``OSError`` for a
    file that is simply not there (``FileNotFoundError``) or unreadable."""
    parts = _parts(relative)
    shown = root / PurePath(*parts)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise RefusedFile(shown, f"folder {part!r} is a link or not a folder") from None
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):
            # Never open a device or a FIFO at all: refused on its lstat.
            raise RefusedFile(shown, f"{kind_of(before.st_mode)}, not a regular file")
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RefusedFile(shown, "a symbolic link, not a regular file") from None
            raise
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev,
                                                                          before.st_ino):
            raise RefusedFile(shown, "replaced while being opened")
        if st.st_size > max_bytes:
            raise RefusedFile(shown, f"{st.st_size} bytes, larger than the {max_bytes} allowed")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_beneath(root: Path, relative: str | PurePath, *, max_bytes: int) -> bytes:
    with open_beneath(root, relative, max_bytes=max_bytes) as fh:
        return fh.read(max_bytes + 1)[:max_bytes]


def is_plain_file_beneath(root: Path, relative: str | PurePath) -> bool:
    """True when ``root/relative`` is a regular file reached through no link (lstat only)."""
    try:
        parts = _parts(relative)
    except RefusedFile:
        return False
    here = root
    for part in parts[:-1]:
        here = here / part
        try:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return False
        except OSError:
            return False
    try:
        return stat.S_ISREG(os.lstat(here / parts[-1]).st_mode)
    except OSError:
        return False


class RefusalLog:
    """Logs each refused file once (per path, reason and inode), so a planted
    link seen by every scan is one warning, not one a minute. Bounded."""

    def __init__(self, size: int = 4096) -> None:
        self._seen: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._size = size
        self.refused = 0

    def refuse(self, path: Path, reason: str, inode: int = 0) -> bool:
        """Record a refusal; True (and one warning) the first time it is seen."""
        self.refused += 1
        key = (str(path), reason, inode)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        log.warning("voicemail file refused, not ingested (logged once): %s: %s", path, reason)
        return True


REFUSALS = RefusalLog()
"""The process's one refusal log: the spool scan and the ingest share it."""
