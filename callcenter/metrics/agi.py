"""AGI command latency, over both transports, at the one point they share.

FastAGI and AsyncAGI sessions both reach the server through one entry point
(``callcenter.agi_entry.AgiEntry``), and every command of either goes out
through the channel's ``send_command``. ``timed_sessions`` wraps that entry:
before a session runs, its channel's ``send_command`` is replaced, on that one
object, by one that times each command (sent to its reply, a hang-up or an
error alike) into ``callcenter_agi_command_duration_seconds``.

The ``command`` label is the AGI verb (``STREAM FILE``, ``GET DATA``) and, for
``EXEC``, the application (``EXEC Dial``), never an argument: prompts, numbers
and variable values stay out of the label set.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Histogram

from ivr.agi import AgiChannel, AgiResult

# First words of the AGI commands whose name is two words.
_TWO_WORDS = frozenset({"ASYNCAGI", "CHANNEL", "CONTROL", "DATABASE", "GET", "RECEIVE",
                        "RECORD", "SAY", "SEND", "SET", "SPEECH", "STREAM", "TDD", "WAIT"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")

Session = Callable[[Any], Awaitable[None]]


def command_label(line: str) -> str:
    """``STREAM FILE welcome "12"`` → ``STREAM FILE``; ``EXEC Dial "..."`` →
    ``EXEC Dial``; anything unexpected → ``OTHER``."""
    words = line.split(None, 2)
    if not words or not _NAME.match(words[0]):
        return "OTHER"
    verb = words[0].upper()
    if len(words) > 1 and (verb in _TWO_WORDS or verb == "EXEC"):
        second = words[1] if verb == "EXEC" else words[1].upper()
        return f"{verb} {second}" if _NAME.match(second) else verb
    return verb


def transport_of(channel: AgiChannel) -> str:
    """``asyncagi`` for ``AGI(agi:async)`` (adopted channels too), else ``fastagi``."""
    return "asyncagi" if channel.env.get("agi_request") == "async" else "fastagi"


def time_commands(channel: AgiChannel, histogram: Histogram) -> None:
    """Time every command this channel sends from now on."""
    send = channel.send_command
    transport = transport_of(channel)

    async def timed(command: str) -> AgiResult:
        start = time.perf_counter()
        try:
            return await send(command)
        finally:
            histogram.labels(transport, command_label(command)).observe(
                time.perf_counter() - start)

    channel.send_command = timed  # type: ignore[method-assign]  # this channel only


def timed_sessions(entry: Session, histogram: Histogram) -> Session:
    """``entry`` (the AGI entry point), timing the commands of each session."""

    async def session(channel: Any) -> None:
        if isinstance(channel, AgiChannel):
            time_commands(channel, histogram)
        await entry(channel)

    return session
