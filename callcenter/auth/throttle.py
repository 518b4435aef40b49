"""Slowing down password guessing without locking the right person out.

``LoginThrottle`` keeps two kinds of backoff, in memory (one server process;
a restart forgets them, which only ever helps the person signing in):

* per (normalised user name, client address): after ``free`` failures the pair
  waits ``base_s`` seconds, doubling with each further failure up to ``cap_s``.
  Someone guessing a name from one address slows down only that name from that
  address: the same person elsewhere, and everyone else at the address, sign
  in as usual;
* per address, looser (``address_free`` failures across every name, then its
  own doubling backoff up to ``address_cap_s``) against one address spraying
  many names.

A refusal never outlasts the backoff that caused it, and attempts refused
during a backoff are not counted, so a correct password is accepted as soon as
the backoff ends. Checks still running count as failures to come, so parallel
guesses cannot overtake the count. Entries are forgotten ``forget_s`` after
their last failure, and at most ``max_entries`` are kept (the oldest go).

``client_address`` is the address a request comes from: the peer, or, when the
peer is one of ``[http] trusted_proxies``, the last address in
``X-Forwarded-For`` that is not itself a trusted proxy.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from callcenter.clock import Clock
from callcenter.errors import DomainError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TooManyAttempts(DomainError):
    error_id = "too_many_attempts"
    http_status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"登录失败次数过多，请 {retry_after_s} 秒后再试 / too many failed "
                         "sign-ins", details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


@functools.lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """``("10.0.0.0/8", "::1")`` → networks; ValueError names a bad entry."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR: {cidr!r}") from None
    return tuple(out)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: web.BaseRequest, trusted_proxies: tuple[str, ...] = ()) -> str:
    peer = request.remote or ""
    networks = parse_networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", ())
            for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # what the proxy wrote is not an address: use the proxy's
                return peer
    return hops[0] if hops else peer


@dataclass(slots=True)
class _Entry:
    failures: int = 0
    pending: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True, slots=True)
class Backoff:
    free: int
    base_s: float
    cap_s: float

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(failures - self.free, 64))


class Attempt:
    """One sign-in being checked: report ``failed()`` or ``succeeded()``; leaving
    the ``with`` block without either (an error) records nothing."""

    def __init__(self, throttle: LoginThrottle, keys: tuple[str, str]) -> None:
        self._throttle = throttle
        self._keys = keys
        self.done = False

    def failed(self) -> None:
        if not self.done:
            self.done = True
            self._throttle._finish(self._keys, ok=False)

    def succeeded(self) -> None:
        if not self.done:
            self.done = True
            self._throttle._finish(self._keys, ok=True)


class LoginThrottle:
    def __init__(self, clock: Clock, *, free: int = 5, base_s: float = 1.0,
                 cap_s: float = 300.0, address_free: int = 50, address_cap_s: float = 60.0,
                 forget_s: float = 900.0, max_entries: int = 100_000) -> None:
        self._clock = clock
        self.pair = Backoff(free, base_s, cap_s)
        self.address = Backoff(max(address_free, free), base_s, address_cap_s)
        self.forget_s = forget_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"u:{username.strip().casefold()}\x00{address}", f"ip:{address}"

    def _entry(self, key: str, now: float) -> _Entry:
        entry = self._entries.get(key)
        if entry is not None and entry.pending == 0 and entry.blocked_until <= now \
                and now - entry.last_failure >= self.forget_s:
            entry = None
            del self._entries[key]
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def _refusal(self, entry: _Entry, backoff: Backoff, now: float) -> float:
        """Seconds this entry refuses a new attempt for, or 0."""
        if entry.blocked_until > now:
            return entry.blocked_until - now
        if entry.pending and entry.failures + entry.pending >= backoff.free:
            return 1.0  # the checks running now may start a backoff
        return 0.0

    @contextmanager
    def attempt(self, username: str, address: str) -> Iterator[Attempt]:
        """Raises ``TooManyAttempts`` while the name at this address (or the
        address) is backing off; otherwise counts the attempt until it ends."""
        now = self._clock.monotonic()
        keys = self._keys(username, address)
        entries = (self._entry(keys[0], now), self._entry(keys[1], now))
        wait = max(self._refusal(entries[0], self.pair, now),
                   self._refusal(entries[1], self.address, now))
        if wait > 0:
            raise TooManyAttempts(max(1, math.ceil(wait)))
        for entry in entries:
            entry.pending += 1
        attempt = Attempt(self, keys)
        try:
            yield attempt
        finally:
            if not attempt.done:
                self._release(keys)

    def _release(self, keys: tuple[str, str]) -> list[_Entry | None]:
        out = [self._entries.get(key) for key in keys]  # None: evicted meanwhile
        for entry in out:
            if entry is not None:
                entry.pending = max(0, entry.pending - 1)
        return out

    def _finish(self, keys: tuple[str, str], *, ok: bool) -> None:
        now = self._clock.monotonic()
        entries = self._release(keys)
        if ok:
            # The name at this address starts afresh; the address keeps its count
            # (one good password does not excuse a spray of other names).
            self._entries.pop(keys[0], None)
            return
        for entry, backoff in zip(entries, (self.pair, self.address), strict=True):
            if entry is None:
                continue
            entry.failures += 1
            entry.last_failure = now
            delay = backoff.delay(entry.failures)
            if delay:
                entry.blocked_until = max(entry.blocked_until, now + delay)

    def __len__(self) -> int:
        return len(self._entries)
