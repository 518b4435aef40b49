"""A standby's part in writing what calls leave behind (the call log, the callback
worklist): only the server that owns an Asterisk link (``callcenter.ha``) writes its
calls; the other holds the last ``hold_s`` of that link's events and hands them over
when it takes the link (what the old owner may not have written before it died).
A reader that writes a row once per call (by linkedid) writes nothing twice."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

from callcenter.ami.links import AmiLinks
from callcenter.bus import DomainEvent


class HeldEvents:
    def __init__(self, hold_s: float = 30.0, maxlen: int = 50_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self._mono = monotonic
        self._held: deque[tuple[float, DomainEvent]] = deque(maxlen=maxlen)

    def hold(self, event: DomainEvent) -> None:
        now = self._mono()
        self._held.append((now, event))
        while self._held and self._held[0][0] < now - self.hold_s:
            self._held.popleft()

    def take(self, asterisk: str) -> list[DomainEvent]:
        """The held events of link ``asterisk`` of the last ``hold_s``, oldest first;
        they are no longer held."""
        now = self._mono()
        mine = [e for t, e in self._held
                if e.data.get("asterisk") == asterisk and t >= now - self.hold_s]
        self._held = deque(((t, e) for t, e in self._held
                            if e.data.get("asterisk") != asterisk), maxlen=self._held.maxlen)
        return mine


def owner_writes(links: AmiLinks) -> Callable[[str], bool]:
    """Whether this server writes a link's calls now: it owns the link, or the link is
    not one it knows (then it is anyone's)."""
    def writes(name: str) -> bool:
        return name not in links.names() or links.get(name).owner
    return writes


def on_takeover(links: AmiLinks, take_over: Callable[[str], Awaitable[int]]) -> None:
    """Call ``take_over(link)`` each time this server becomes a link's owner."""
    async def changed(name: str, owned: bool) -> None:
        if owned:
            await take_over(name)
    links.on_owner_change(changed)
