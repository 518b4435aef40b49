"""Logging: one pipeline for ``logging`` and structlog, the call's ids on every
line, owners' numbers masked.

The codebase logs with the standard ``logging`` module (and a few structlog
loggers, ``recordings.transcribe``). ``configure_logging`` sends both through
structlog's ``ProcessorFormatter`` on one stderr handler, so every line passes
the same processors:

* the call's ids: ``bind_call(linkedid=..., uniqueid=..., pbx=...)`` puts them
  into structlog's context variables for the code inside (asyncio copies the
  context into each task, so tasks a call spawns carry them too), and every
  line logged there carries them;
* an exception becomes text (``exc_info``);
* ``mask_numbers``: every phone number in the message and in every string
  value (extras, structlog keys, the exception's text) becomes ``139****5678``
  (``callcenter.directory.phone_text``: extensions, ids and times stay);
* the renderer: ``text``, a line a person reads
  (``2026-12-03 12:00:00 INFO ivr.engine [linkedid=… uniqueid=…]: IVR done``),
  or ``json``, one object per line (``ts`` ISO-8601 UTC, ``level``, ``logger``,
  ``event``, the call's ids when bound, any other keys).
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from callcenter.directory.masking import masked_number
from callcenter.directory.phone_text import mask_phone_numbers
from callcenter.settings import LoggingSettings

CALL_KEYS = ("linkedid", "uniqueid", "pbx")
FIRST_KEYS = ("ts", "level", "logger", "event", *CALL_KEYS)
NOISY_LOGGERS = ("aiosqlite", "asyncio", "jieba", "sqlalchemy.engine.Engine", "alembic")
# Keys whose values are never phone numbers (and must stay as they are to be grepped).
_UNMASKED = frozenset({"ts", "level", "logger", *CALL_KEYS})


class CallContextFilter(logging.Filter):
    """``record.call``: `` [linkedid=… uniqueid=…]`` or empty, for a plain
    ``logging.Formatter`` (a test's handler, a site's own handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = structlog.contextvars.get_contextvars()
        parts = [f"{k}={ctx[k]}" for k in CALL_KEYS if ctx.get(k)]
        record.call = (" [" + " ".join(parts) + "]") if parts else ""
        return True


@contextmanager
def bind_call(**ids: str | None) -> Iterator[None]:
    """Bind call ids (``linkedid``, ``uniqueid``, ``pbx``) for the code inside."""
    values = {k: v for k, v in ids.items() if v}
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def bind_task(**ids: str | None) -> None:
    """Bind call ids for the rest of the current task: for a task started for
    one call, once it learns the call (asyncio gives each task its own copy of
    the context, so nothing leaks out of it)."""
    values = {k: v for k, v in ids.items() if v}
    if values:
        structlog.contextvars.bind_contextvars(**values)


# --------------------------------------------------------------------- processors

def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value, mask=masked_number)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if abs(value) < 1_000_000:
            return value
        text = str(value)
        masked = mask_phone_numbers(text, mask=masked_number)
        return value if masked == text else masked
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v) for v in value]
    # Anything else is written as its str(): mask that, not the object.
    return mask_phone_numbers(str(value), mask=masked_number)


def mask_numbers(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Every phone number in every value (the message too) masked."""
    for key, value in event_dict.items():
        if key not in _UNMASKED and not key.startswith("_"):
            event_dict[key] = _mask_value(value)
    return event_dict


def exc_info_as_text(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``exc_info`` (True, an exception or a ``sys.exc_info()`` tuple) and
    ``stack_info`` rendered as text, so that the masking sees them."""
    exc = event_dict.pop("exc_info", None)
    if exc:
        if exc is True:
            exc = sys.exc_info()
        elif isinstance(exc, BaseException):
            exc = (type(exc), exc, exc.__traceback__)
        if isinstance(exc, tuple) and exc[0] is not None:
            event_dict["exc_info"] = "".join(traceback.format_exception(*exc)).rstrip("\n")
    stack = event_dict.pop("stack_info", None)
    if stack:
        event_dict["stack_info"] = stack if isinstance(stack, str) else \
            "".join(traceback.format_stack()).rstrip("\n")
    return event_dict


def _ordered(event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    out = {k: event_dict[k] for k in FIRST_KEYS if k in event_dict}
    out.update((k, v) for k, v in event_dict.items() if k not in out)
    return out


def render_text(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    """``2026-12-03 20:00:00,123 INFO name [linkedid=… uniqueid=…]: event k=v``,
    then the traceback on its own lines."""
    ed = dict(event_dict)
    ts = ed.pop("ts", "")
    level = str(ed.pop("level", "")).upper()
    name = ed.pop("logger", "")
    ids = [f"{k}={ed.pop(k)}" for k in CALL_KEYS if ed.get(k)]
    for k in CALL_KEYS:
        ed.pop(k, None)
    exc = ed.pop("exc_info", None)
    stack = ed.pop("stack_info", None)
    line = f"{ts} {level} {name}{' [' + ' '.join(ids) + ']' if ids else ''}: {ed.pop('event', '')}"
    if ed:
        line += " " + " ".join(f"{k}={v}" for k, v in ed.items())
    for extra in (exc, stack):
        if extra:
            line += "\n" + str(extra)
    return line


def local_time(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``ts`` as the text format shows it: local time with milliseconds, as
    ``logging.Formatter`` writes ``asctime``."""
    now = time.time()
    event_dict["ts"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + \
        f",{int(now * 1000) % 1000:03d}"
    return event_dict


def _pre_chain(fmt: str) -> list[Processor]:
    """What both kinds of record get before the formatter's own processors."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts") if fmt == "json"
        else local_time,
    ]


def make_formatter(fmt: str = "text") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every line, ``fmt`` "text" or "json"."""
    import json

    def dumps(event_dict: Any, **kw: Any) -> str:
        return json.dumps(_ordered(event_dict), ensure_ascii=False, default=str)

    renderer: Processor = (structlog.processors.JSONRenderer(serializer=dumps)
                           if fmt == "json" else render_text)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_pre_chain(fmt), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            exc_info_as_text,
            mask_numbers,
            renderer,
        ],
    )


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written (as
    ``logging.lastResort`` does), not the one there was when it was made: a
    command run in-process (tests) leaves no handler on a closed stream."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def configure_logging(settings: LoggingSettings | None = None, *, verbose: bool = False,
                      stream: TextIO | None = None) -> None:
    """Route ``logging`` and structlog to one handler on ``stream`` (stderr)."""
    settings = settings or LoggingSettings()
    level = logging.DEBUG if verbose else logging.getLevelName(settings.level.upper())
    handler: logging.Handler = logging.StreamHandler(stream) if stream else StderrHandler()
    handler.setFormatter(make_formatter(settings.format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # a warning is a line like the others (JSON too)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_pre_chain(settings.format),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Loggers made at import time follow a later configure_logging (settings loaded).
        cache_logger_on_first_use=False,
    )
