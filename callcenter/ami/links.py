"""All AMI links of the server: one ``AmiLink`` + ``CallTracker`` per
``[[asterisk]]`` settings entry, wired together.

Per link: every event goes to the tracker (which publishes ``call.*`` on the
bus); after each login or ``FullyBooted`` a resync snapshot corrects the
tracker, retaken with backoff until every part of it succeeds; ``AsyncAGIStart``
sessions go to the IVR handler once one is set, and so do the channels a
snapshot finds waiting in ``AGI(agi:async)`` with no server (adoption). While
an IVR handler is set, each link keeps the server's heartbeat in AstDB
(``callcenter.ami.heartbeat``), which the printed hotline checks before
``AGI(agi:async)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher, SessionHandler
from callcenter.ami.client import AmiLink, LinkConfig, LinkStatus
from callcenter.ami.heartbeat import Heartbeat, agi_wait_s
from callcenter.ami.parser import Frame
from callcenter.ami.resync import resync_until_complete
from callcenter.bus import DomainEvent
from callcenter.calls.tracker import Call, CallTracker, Snapshot
from callcenter.errors import NotFound

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LinkBundle:
    link: AmiLink
    tracker: CallTracker
    heartbeat: Heartbeat
    dispatcher: AsyncAgiDispatcher | None = None


def _in_hotline(link: AmiLink) -> Callable[[AsyncAgiChannel], bool]:
    """Whether a session is a hotline call (handed to the next server on stop)."""
    context = getattr(link.config, "hotline_context", "callcenter-hotline")

    def check(chan: AsyncAgiChannel) -> bool:
        return chan.env.get("agi_context") == context
    return check


class AmiLinks:
    """Start/stop every link; look one up by its settings name."""

    def __init__(
        self,
        entries: Sequence[LinkConfig],
        *,
        publish: Callable[[DomainEvent], None],
        mailboxes: Sequence[str] = (),
        now: Callable[[], datetime] | None = None,
        link_factory: Callable[[LinkConfig], AmiLink] | None = None,
        agi_command_timeout_s: float = 60.0,
    ) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self.mailboxes = tuple(mailboxes)
        self._agi_timeout = agi_command_timeout_s
        self._agi_handler: SessionHandler | None = None
        self._bundles: dict[str, LinkBundle] = {}
        factory = link_factory or (lambda cfg: AmiLink(cfg, now=self._now))
        for cfg in entries:
            if cfg.name in self._bundles:
                raise ValueError(f"two [[asterisk]] entries are named {cfg.name!r}")
            link = factory(cfg)
            tracker = CallTracker(cfg.name, publish, community=getattr(cfg, "community", None))
            heartbeat = Heartbeat(link, float(getattr(cfg, "heartbeat_interval_s", 5.0)),
                                  enabled=self._beats(link))
            bundle = LinkBundle(link, tracker, heartbeat)
            link.subscribe(self._feeder(tracker))
            link.on_connected(heartbeat.on_connected)  # first: calls may be waiting for it
            link.on_connected(self._resyncer(bundle))
            self._bundles[cfg.name] = bundle
        self._started = False
        self._owner_listeners: list[Callable[[str, bool], Awaitable[None]]] = []

    def _beats(self, link: AmiLink) -> Callable[[], bool]:
        def enabled() -> bool:
            return self._agi_handler is not None and link.owner
        return enabled

    def _feeder(self, tracker: CallTracker) -> Callable[[Frame], None]:
        def feed(frame: Frame) -> None:
            tracker.handle(frame, self._now())
        return feed

    def _resyncer(self, bundle: LinkBundle) -> Callable[[AmiLink], Any]:
        def apply(snap: Snapshot) -> None:
            bundle.tracker.apply_snapshot(snap, self._now())
            if bundle.dispatcher is not None and self._agi_handler is not None \
                    and bundle.link.owner:
                bundle.dispatcher.adopt(snap.channels)

        async def resync(link: AmiLink) -> None:
            await resync_until_complete(link, self.mailboxes, apply, self._now)
        return resync

    # ------------------------------------------------------------------ API
    def set_agi_handler(self, handler: SessionHandler) -> None:
        """``async def handler(channel: AsyncAgiChannel)``, run for each
        ``AsyncAGIStart`` on any link (the IVR engine)."""
        self._agi_handler = handler
        for b in self._bundles.values():
            if b.dispatcher is None:
                b.dispatcher = AsyncAgiDispatcher(b.link, self._dispatch_agi,
                                                  command_timeout_s=self._agi_timeout)
                if self._started:
                    b.dispatcher.attach()

    async def _dispatch_agi(self, channel: Any) -> None:
        if self._agi_handler is not None:
            await self._agi_handler(channel)

    def set_owner_gate(self, name: str, owns: Callable[[], bool] | None,
                       confirm: Callable[[], Awaitable[bool]] | None = None) -> None:
        """``owns()``: whether this server drives link ``name`` now (``callcenter.ha``);
        ``confirm()``: asked before an action is refused (``AmiLink.set_owner_gate``)."""
        self._bundle(name).link.set_owner_gate(owns, confirm)

    async def owner_changed(self, name: str, owned: bool) -> None:
        """This server took link ``name`` over (re-read, adopt the calls waiting in
        AsyncAGI, beat, sync the queue) or lost it (drop its AsyncAGI sessions at
        once: the channels stay in AsyncAGI for the new owner)."""
        b = self._bundle(name)
        if owned:
            b.link.resync("takeover")
        elif b.dispatcher is not None:
            dropped = await b.dispatcher.abandon()
            if dropped:
                log.warning("%s: %d AsyncAGI sessions left to the new owner", name, dropped)
        for listener in list(self._owner_listeners):
            try:
                await listener(name, owned)
            except Exception:
                log.exception("%s: owner change listener failed", name)

    def on_owner_change(self, listener: Callable[[str, bool], Awaitable[None]]) -> None:
        """``await listener(link name, owned)`` after this server takes a link over or
        loses it (paging frees the steps the previous owner left claimed)."""
        self._owner_listeners.append(listener)

    def start(self) -> None:
        self._started = True
        for b in self._bundles.values():
            if b.dispatcher is not None:
                b.dispatcher.attach()
            b.link.start()
            b.heartbeat.start()

    async def stop(self) -> None:
        for b in self._bundles.values():
            await b.heartbeat.stop()  # new calls go to the hotline's fallback from now on
            if b.dispatcher is not None:
                # hotline callers stay in AGI(agi:async) for the next server (adoption),
                # with the printed TIMEOUT(absolute) re-armed: else the fallback takes them
                await b.dispatcher.close(handoff_s=float(agi_wait_s(b.heartbeat.interval_s)),
                                         handoff=_in_hotline(b.link))
            await b.link.stop()
        self._started = False

    def names(self) -> list[str]:
        return list(self._bundles)

    def get(self, name: str) -> AmiLink:
        return self._bundle(name).link

    def for_community(self, community: str | None) -> AmiLink:
        """The link serving a community (the only link when there is one)."""
        for b in self._bundles.values():
            if community is not None and b.tracker.community == community:
                return b.link
        if len(self._bundles) == 1:
            return next(iter(self._bundles.values())).link
        raise NotFound(f"no Asterisk link serves community {community!r}",
                       details={"community": community})

    def tracker(self, name: str) -> CallTracker:
        return self._bundle(name).tracker

    def _bundle(self, name: str) -> LinkBundle:
        try:
            return self._bundles[name]
        except KeyError:
            raise NotFound(f"no Asterisk link named {name!r}",
                           details={"asterisk": name, "known": list(self._bundles)}) from None

    def statuses(self) -> list[LinkStatus]:
        return [b.link.status for b in self._bundles.values()]

    def link_states(self) -> dict[str, str]:
        """``{name: state}`` for ``/healthz`` (``LINK_STATUS``)."""
        return {b.link.name: b.link.status.state.value for b in self._bundles.values()}

    async def health(self) -> dict[str, object]:
        """A ``HEALTH_EXTRAS`` section: each link's state, since, last error."""
        return {"asterisk_links": [s.to_json() for s in self.statuses()]}

    def live_calls(self) -> list[Call]:
        calls = [c for b in self._bundles.values() for c in b.tracker.live()]
        return sorted(calls, key=lambda c: c.started_at)

    def find_call(self, linkedid: str, asterisk: str | None = None) -> tuple[CallTracker, Call]:
        bundles = [self._bundle(asterisk)] if asterisk else list(self._bundles.values())
        for b in bundles:
            call = b.tracker.get(linkedid) or b.tracker.call_for_uniqueid(linkedid)
            if call is not None:
                return b.tracker, call
        raise NotFound(f"no live call {linkedid!r}", details={"linkedid": linkedid})

    def record_ivr_choice(self, linkedid: str, step: str, *, asterisk: str | None = None) -> None:
        """For the IVR: record a menu step of a live call (publishes
        ``call.ivr_choice``). Unknown calls are ignored (logged)."""
        try:
            tracker, call = self.find_call(linkedid, asterisk)
        except NotFound:
            log.info("ivr choice %r for unknown call %s", step, linkedid)
            return
        tracker.record_ivr_choice(call.linkedid, step, self._now())

    def mark_emergency(self, linkedid: str, *, asterisk: str | None = None) -> None:
        try:
            tracker, call = self.find_call(linkedid, asterisk)
        except NotFound:
            return
        tracker.mark_emergency(call.linkedid)
