"""Where a browser may be sent after signing in: a path on this site, nothing else.

``safe_next`` accepts ``next`` only as a same-origin path: it starts with one
``/`` (never ``//`` or ``/\\``), holds no backslash, no control character and
no whitespace anywhere, and names no scheme or host, checked on the value as
given and, for its path, after percent-decoding (up to three rounds, as a
chain of proxies and browsers might decode it). Browsers drop tabs and newlines from URLs, so
``/\\t/host`` would otherwise become ``//host``: another site.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2000


def _path_only(value: str) -> bool:
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return False
    if "\\" in value:
        return False
    for ch in value:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs"):
            return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path on this site, else None (the caller uses its default).

    The whole value is checked as given; its path (before ``?`` or ``#``) also
    after each round of percent-decoding, so ``/search?q=%20`` stays usable."""
    if not value or len(value) > MAX_LENGTH or not _path_only(value):
        return None
    path = value.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            return value
        if not _path_only(decoded):
            return None
        path = decoded
    return None  # still encoded after three rounds: nobody needs that
