"""Recordings on disk under ``<data_dir>/recordings``: atomic copies in, safe paths out.

Stored paths are relative and made only by this module (date, content hash,
sanitised message id), so no request path ever reaches the filesystem.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UnsafePath(ValueError):
    pass


class RecordingStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "recordings").resolve()

    def relative_path(self, sha256: str, received_at: datetime, msg_id: str) -> str:
        safe_id = _SAFE.sub("", msg_id)[:80] or "msg"
        return f"{received_at:%Y/%m}/{sha256[:16]}-{safe_id}.wav"

    def path_for(self, stored_path: str) -> Path:
        """The absolute file of a stored path, refusing anything outside the root."""
        candidate = (self.root / stored_path).resolve()
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            raise UnsafePath(stored_path)
        return candidate

    def _copy(self, src: Path, stored_path: str) -> int:
        dest = self.path_for(stored_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-", suffix=".wav")
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return dest.stat().st_size

    async def save(self, src: Path, stored_path: str) -> int:
        """Copy ``src`` in atomically (temp file, fsync, rename); returns its size."""
        return await asyncio.to_thread(self._copy, src, stored_path)

    async def delete(self, stored_path: str) -> bool:
        path = self.path_for(stored_path)

        def unlink() -> bool:
            try:
                path.unlink()
                return True
            except FileNotFoundError:
                return False

        return await asyncio.to_thread(unlink)
