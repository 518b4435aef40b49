"""Logging: standard ``logging`` everywhere, with the call's identity on every line.

``bind_call(uniqueid=..., linkedid=...)`` puts Asterisk's ids into structlog's
context variables; the filter below copies them onto every log record made in
that task (asyncio copies context per task), so one call can be followed
through the logs with ``grep linkedid=…``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

CALL_KEYS = ("linkedid", "uniqueid", "pbx")


class CallContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = structlog.contextvars.get_contextvars()
        parts = [f"{k}={ctx[k]}" for k in CALL_KEYS if ctx.get(k)]
        record.call = (" [" + " ".join(parts) + "]") if parts else ""
        return True


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(CallContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(call)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("aiosqlite", "asyncio", "jieba", "sqlalchemy.engine.Engine", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def bind_call(**ids: str | None) -> Iterator[None]:
    """Bind call ids (``linkedid``, ``uniqueid``, ``pbx``) for the code inside."""
    values = {k: v for k, v in ids.items() if v}
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
