"""Photos of the work (完工照片): images only, size-limited, stored beside the recordings.

What a file is comes from its first bytes (JPEG, PNG, GIF, WebP), never from its
name or the browser's content type. The stored name is made here only
(``photos/YYYY/MM/<hash>-t<ticket>.<ext>``, below the recording store's root),
written atomically by that store, and read back through
``recordings.safefs`` (no link followed, size checked on the open descriptor).
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from typing import Protocol

from callcenter.errors import InvalidInput
from recordings.safefs import read_beneath

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS_PER_TICKET = 20

_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    # (signature, offset, content type, suffix)
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"GIF87a", 0, "image/gif", ".gif"),
    (b"GIF89a", 0, "image/gif", ".gif"),
    (b"WEBP", 8, "image/webp", ".webp"),
)


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(content type, suffix) of an image by its magic bytes, or None."""
    for magic, offset, ctype, suffix in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            if ctype == "image/webp" and data[:4] != b"RIFF":
                continue
            return ctype, suffix
    return None


class FileStore(Protocol):
    """What the recording store offers: a root, atomic saves under it."""

    @property
    def root(self) -> object: ...

    async def save(self, src: io.BytesIO, stored_path: str) -> int: ...


class PhotoStore:
    def __init__(self, store: FileStore, *, max_bytes: int = MAX_PHOTO_BYTES) -> None:
        self._store = store
        self.max_bytes = max_bytes

    def check(self, data: bytes, field: str = "photo") -> tuple[str, str]:
        """(content type, suffix), or a 400 naming ``field``."""
        if not data:
            raise InvalidInput("照片是空文件 / the photo is empty", field=field)
        if len(data) > self.max_bytes:
            raise InvalidInput(f"照片不能超过 {self.max_bytes // (1024 * 1024)} MB / photo too large",
                               field=field)
        kind = sniff_image(data)
        if kind is None:
            raise InvalidInput("只能上传图片（JPEG、PNG、GIF、WebP） / images only", field=field)
        return kind

    async def save(self, ticket_id: int, data: bytes, at: datetime
                   ) -> tuple[str, str, str, int]:
        """Store checked bytes; (stored path, content type, sha256, size)."""
        ctype, suffix = self.check(data)
        digest = hashlib.sha256(data).hexdigest()
        stored = f"photos/{at:%Y/%m}/{digest[:16]}-t{int(ticket_id)}{suffix}"
        size = await self._store.save(io.BytesIO(data), stored)
        return stored, ctype, digest, size

    def read(self, stored_path: str) -> bytes:
        from pathlib import Path

        root = self._store.root
        assert isinstance(root, Path)
        return read_beneath(root, stored_path, max_bytes=self.max_bytes)
