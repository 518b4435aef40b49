"""In-process event bus: domain events published by one part, heard by others.

Handlers are async callables; a failing handler is logged and never stops the
others or the publisher. ``publish`` does not wait for slow handlers to finish:
each handler runs in its own task, tracked so shutdown can wait for them.

With two servers on one PostgreSQL database, ``callcenter.cluster`` carries some
events to the other servers and publishes theirs here with ``origin`` set to the
server they came from. Such remote events reach only handlers subscribed with
``remote=True``: every other handler (the call log, metrics, paging, notices)
keeps hearing only what happened on this server, so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter.logs import bind_call

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened. ``name`` is dotted: ``call.started``, ``ticket.created``."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    origin: str = ""
    """Empty: it happened on this server. Else the id of the server it came from."""


Handler = Callable[[DomainEvent], Awaitable[None]]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, bool]]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, name: str, handler: Handler, *, remote: bool = False
                  ) -> Callable[[], None]:
        """Subscribe to an event name, or to a prefix with ``call.*``, or ``*``.
        ``remote``: also hear the events other servers sent (``origin`` set).

        Returns a function that unsubscribes."""
        entry = (handler, remote)
        self._handlers[name].append(entry)

        def unsubscribe() -> None:
            try:
                self._handlers[name].remove(entry)
            except ValueError:
                pass

        return unsubscribe

    def _matching(self, event: DomainEvent) -> list[Handler]:
        name = event.name
        found = list(self._handlers.get(name, ()))
        found += self._handlers.get("*", ())
        prefix = name.split(".", 1)[0] + ".*"
        found += self._handlers.get(prefix, ())
        if event.origin:
            return [handler for handler, remote in found if remote]
        return [handler for handler, _remote in found]

    def publish(self, event: DomainEvent) -> None:
        for handler in self._matching(event):
            task = asyncio.get_running_loop().create_task(self._run(handler, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def publish_and_wait(self, event: DomainEvent) -> None:
        """Publish and wait until every handler has finished (tests, ordered work)."""
        await asyncio.gather(*(self._run(h, event) for h in self._matching(event)))

    async def _run(self, handler: Handler, event: DomainEvent) -> None:
        # An event about a call (the tracker's, from the AMI reader, which is bound
        # to no call) makes its handler's lines, and the tasks it starts, carry it.
        data = event.data
        with bind_call(linkedid=_text(data.get("linkedid")), uniqueid=_text(data.get("uniqueid")),
                       pbx=_text(data.get("asterisk"))):
            try:
                await handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, event.name)

    async def drain(self) -> None:
        """Wait for handlers still running (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
