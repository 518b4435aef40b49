"""Recordings on disk under ``<data_dir>/recordings``: atomic copies in, safe paths out.

Stored paths are relative and made only by this module (date, content hash,
sanitised message id, the suffix Asterisk gave the file), so no request path
ever reaches the filesystem.

The original is kept as Asterisk wrote it. One that is not a ``.wav`` (GSM,
WAV49, ...) gets a PCM WAV beside it, ``<stored>.wav`` (:meth:`RecordingStore.playable_path`),
made once by :meth:`RecordingStore.make_playable`: browsers play that one and
the transcriber reads it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
import wave
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from recordings.audio import RAW_SUFFIXES, SOX_SUFFIXES, read_audio
from recordings.errors import UnsupportedAudioFormat
from recordings.safefs import is_plain_file_beneath

_SAFE = re.compile(r"[^0-9A-Za-z._-]")
_SUFFIX = re.compile(r"^\.[0-9A-Za-z]{1,10}$")
DECODABLE_SUFFIXES = frozenset({".wav", *SOX_SUFFIXES, *RAW_SUFFIXES})
"""Suffixes (lower case) that :func:`recordings.audio.read_audio` can decode."""


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_fileobj(fh)


def sha256_fileobj(fh: BinaryIO) -> str:
    """The SHA-256 of an open file from its start; leaves it at the start again."""
    fh.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


class UnsafePath(ValueError):
    pass


class RecordingStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "recordings").resolve()

    def relative_path(self, sha256: str, received_at: datetime, msg_id: str,
                      suffix: str = ".wav") -> str:
        """``YYYY/MM/<hash>-<msg_id><suffix>``; ``suffix`` is the original's
        (``.WAV`` for WAV49 keeps its case), anything odd becomes ``.bin``."""
        safe_id = _SAFE.sub("", msg_id)[:80] or "msg"
        if not _SUFFIX.match(suffix):
            suffix = ".bin"
        return f"{received_at:%Y/%m}/{sha256[:16]}-{safe_id}{suffix}"

    @staticmethod
    def playable_path(stored_path: str) -> str:
        """The PCM WAV a browser plays and the transcriber reads: the original
        when it is a ``.wav``, else ``<stored_path>.wav`` (see :meth:`make_playable`)."""
        return stored_path if stored_path.endswith(".wav") else f"{stored_path}.wav"

    def make_playable(self, stored_path: str, *, sox_binary: str | None = "sox") -> str:
        """Decode a stored non-WAV original once into a 16-bit PCM WAV at its own
        rate (atomically, beside it); returns the playable stored path.

        Raises :class:`recordings.errors.AudioError` (``audio_unsupported_format``
        for a suffix nothing decodes or GSM without sox; corrupt, empty, ...)."""
        playable = self.playable_path(stored_path)
        if playable == stored_path or self.path_for(playable).is_file():
            return playable
        src = self.path_for(stored_path)
        suffix = src.suffix.lower()
        if suffix not in DECODABLE_SUFFIXES:
            raise UnsupportedAudioFormat(
                src.name, src.suffix,
                "no decoder for this format; set format=wav (or wav49, gsm) in voicemail.conf")
        audio = read_audio(src, sox_binary=sox_binary)

        def write(raw: BinaryIO) -> None:
            with wave.open(raw, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(audio.sample_rate)
                out.writeframes(audio.to_pcm16())

        _write_atomically(self.path_for(playable), write)
        return playable

    def path_for(self, stored_path: str) -> Path:
        """The absolute file of a stored path, refusing anything outside the root."""
        candidate = (self.root / stored_path).resolve()
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            raise UnsafePath(stored_path)
        return candidate

    def servable(self, stored_path: str) -> Path | None:
        """The file to serve for a stored path, or None: it must be a regular file
        reached from the root through real folders only (no component a link,
        even one pointing inside the store; lstat, never followed), and inside
        the root once resolved."""
        try:
            path = self.path_for(stored_path)
        except UnsafePath:
            return None
        if path != self.root / stored_path or not is_plain_file_beneath(self.root, stored_path):
            return None
        return path

    def _copy(self, src: Path | BinaryIO, stored_path: str) -> int:
        dest = self.path_for(stored_path)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def write(out: BinaryIO) -> None:
            if isinstance(src, Path):
                with src.open("rb") as inp:
                    shutil.copyfileobj(inp, out, 1 << 20)
            else:
                src.seek(0)
                shutil.copyfileobj(src, out, 1 << 20)

        _write_atomically(dest, write)
        return dest.stat().st_size

    async def save(self, src: Path | BinaryIO, stored_path: str) -> int:
        """Copy ``src`` (a path, or a file already opened by
        :func:`recordings.safefs.open_beneath`) in atomically (temp file, fsync,
        rename); returns its size."""
        return await asyncio.to_thread(self._copy, src, stored_path)

    async def delete(self, stored_path: str) -> bool:
        """Delete the original and its playable copy; False when neither was there."""
        paths = [self.path_for(stored_path)]
        if self.playable_path(stored_path) != stored_path:
            paths.append(self.path_for(self.playable_path(stored_path)))

        def unlink() -> bool:
            deleted = False
            for path in paths:
                try:
                    path.unlink()
                    deleted = True
                except FileNotFoundError:
                    pass
            return deleted

        return await asyncio.to_thread(unlink)


def _write_atomically(dest: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``dest`` through a temporary file beside it, synced, then renamed: a
    crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-", suffix=dest.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
