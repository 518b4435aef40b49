"""What records into the metrics, through the public hooks of each part.

Nothing here is called by the parts themselves: each recorder subscribes where
the part already lets others listen, so the parts stay unaware of Prometheus.

* ``LinkRecorder``: an AMI link's ``on_status`` (up/down, reconnects) and its
  event listeners (events received; queue joins and leaves for the queue waits).
* ``BusRecorder``: domain events on the bus (``call.ended`` outcomes, paging
  steps and acknowledgements, incidents), and the screen-pop hub's
  ``on_frame_sent`` for pops and their latency.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from callcenter.ami.client import AmiLink, LinkState, LinkStatus
from callcenter.ami.parser import Frame
from callcenter.bus import DomainEvent, EventBus
from callcenter.metrics.registry import Metrics
from callcenter.screenpop.events import call_id_of

QUEUE_EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "Hangup")
# At most this many callers' queue joins / ringing calls remembered at once (a
# lost Leave or ended event must not grow memory without bound).
MAX_PENDING = 10_000


class _Pending(OrderedDict[str, float]):
    """Start times by key, the oldest dropped beyond ``MAX_PENDING``."""

    def remember(self, key: str, at: float) -> None:
        self[key] = at
        if len(self) > MAX_PENDING:
            self.popitem(last=False)


class LinkRecorder:
    """Records one AMI link: ``attach(link)`` once, before the link starts."""

    def __init__(self, metrics: Metrics, name: str, *,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._up = metrics.ami_link_up.labels(name)
        self._reconnects = metrics.ami_reconnects.labels(name)
        self._events = metrics.ami_events.labels(name)
        self._waits = metrics.queue_wait_seconds
        self._abandoned = metrics.queue_abandoned
        self._now = now
        self._joined = _Pending()
        self._was_connected = False
        self._up.set(0)

    def attach(self, link: AmiLink) -> None:
        link.on_status(self.on_status)
        link.subscribe(self.on_event)
        link.subscribe(self.on_queue_event, QUEUE_EVENTS)

    def on_status(self, status: LinkStatus) -> None:
        connected = status.state is LinkState.CONNECTED
        if connected and not self._was_connected and status.connects > 1:
            self._reconnects.inc()
        self._was_connected = connected
        self._up.set(1 if connected else 0)

    def on_event(self, frame: Frame) -> None:
        self._events.inc()

    def on_queue_event(self, frame: Frame) -> None:
        event = frame.event
        uid = frame.get("Uniqueid") or ""
        if event == "QueueCallerJoin":
            self._joined.remember(uid, self._now())
        elif event == "QueueCallerLeave":
            joined = self._joined.pop(uid, None)
            if joined is not None:
                self._waits.labels(frame.get("Queue") or "").observe(self._now() - joined)
        elif event == "QueueCallerAbandon":
            self._abandoned.labels(frame.get("Queue") or "").inc()
        else:  # Hangup: a caller whose Leave never came
            self._joined.pop(uid, None)


def _label(value: Any) -> str:
    return "" if value is None else str(value)


class BusRecorder:
    """Counts what the bus says happened; times pops from the latest ringing
    event of a call to the first pop frame after it."""

    def __init__(self, metrics: Metrics, *,
                 now: Callable[[], float] = time.perf_counter) -> None:
        self.m = metrics
        self._now = now
        self._ringing = _Pending()  # call id → when its ringing event was heard
        self._unsubscribe: list[Callable[[], None]] = []

    def subscribe(self, bus: EventBus) -> None:
        """Exact names, so each handler runs before the hub's ``call.*`` one for
        the same event (the bus starts exact-name handlers first)."""
        for name, handler in (("call.ringing", self.on_ringing), ("call.ended", self.on_ended),
                              ("page.attempt", self.on_page_attempt),
                              ("page.deferred", self.on_page_deferred),
                              ("incident.opened", self.on_incident_opened),
                              ("incident.acknowledged", self.on_acknowledged),
                              ("ticket.sla_breach", self.on_sla_breach)):
            self._unsubscribe.append(bus.subscribe(name, handler))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    async def on_ringing(self, event: DomainEvent) -> None:
        call_id = call_id_of(event.data)
        if call_id:
            self._ringing.remember(call_id, self._now())

    async def on_ended(self, event: DomainEvent) -> None:
        self._ringing.pop(call_id_of(event.data), None)
        self.m.calls.labels(_label(event.data.get("outcome")),
                            _label(event.data.get("community"))).inc()

    async def on_page_attempt(self, event: DomainEvent) -> None:
        self.m.paging_steps.labels(_label(event.data.get("outcome"))).inc()

    async def on_page_deferred(self, event: DomainEvent) -> None:
        self.m.paging_steps.labels("deferred").inc()

    async def on_incident_opened(self, event: DomainEvent) -> None:
        self.m.incidents_opened.inc()

    async def on_acknowledged(self, event: DomainEvent) -> None:
        self.m.paging_acks.labels(_label(event.data.get("via"))).inc()

    async def on_sla_breach(self, event: DomainEvent) -> None:
        self.m.sla_breaches.labels(_label(event.data.get("kind"))).inc()

    def on_pop_sent(self, call_id: str, connections: int) -> None:
        """The hub's ``on_frame_sent``: a pop frame went to ``connections`` tabs."""
        self.m.screenpop_frames.inc(connections)
        rang_at = self._ringing.pop(call_id, None)
        if rang_at is not None:
            self.m.screenpop_latency_seconds.observe(self._now() - rang_at)

