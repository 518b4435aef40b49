"""Signing in under attack, over real sockets: the backoff is per (name, address)
and never outlasts itself, ``X-Forwarded-For`` is believed only from
``[http] trusted_proxies``, sessions are capped per user, ``next=`` stays on
this site, and a full password pool answers 503 with ``Retry-After``."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from callcenter.app import create_core_app
from callcenter.auth.redirects import safe_next
from callcenter.auth.throttle import LoginThrottle, TooManyAttempts
from callcenter.clock import ManualClock
from callcenter.console.setup import setup_console
from callcenter.screenpop.setup import setup_screenpop
from callcenter.settings import DatabaseSettings, HttpSettings, Settings
from tests.console.helpers import FAST_HASHER, PASSWORD, seed_directory, serving

WRONG = "not-the-password"
BUSY = "登录繁忙，请稍后再试"


@asynccontextmanager
async def site(db_url: str, tmp: Path, sessionmaker: Any, *, clock: ManualClock | None = None,
               hasher: PasswordHasher = FAST_HASHER, **http: Any
               ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    await seed_directory(sessionmaker)
    settings = Settings(data_dir=tmp, database=DatabaseSettings(url=db_url),
                        http=HttpSettings(**http))
    app = create_core_app(settings, clock=clock)
    setup_console(app, hasher=hasher, login_limit=5, login_window_s=300)
    setup_screenpop(app, wall_debounce_s=0, audit_flush_s=0)
    async with serving(app) as client:
        yield client


class Browser:
    """One browser: its own cookies, optionally behind a proxy that says who it is."""

    def __init__(self, client: TestClient[Any, Any], forwarded_for: str = "") -> None:
        self.client = client
        self.headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self, username: str, password: str, next_: str = ""
                      ) -> aiohttp.ClientResponse:
        async with self.session.get(self.client.make_url("/login"), headers=self.headers) as r:
            m = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        assert m
        data = {"username": username, "password": password, "csrf_token": m.group(1)}
        if next_:
            data["next"] = next_
        async with self.session.post(self.client.make_url("/login"), data=data,
                                     headers=self.headers, allow_redirects=False) as r:
            await r.read()
            return r

    async def signed_in(self) -> bool:
        async with self.session.get(self.client.make_url("/agent"),
                                    allow_redirects=False) as r:
            return r.status == 200

    async def close(self) -> None:
        await self.session.close()


@asynccontextmanager
async def browsers(client: TestClient[Any, Any], *forwarded: str
                   ) -> AsyncIterator[list[Browser]]:
    out = [Browser(client, f) for f in forwarded]
    try:
        yield out
    finally:
        for b in out:
            await b.close()


# ------------------------------------------------------------------ the backoff


def test_five_failures_slow_that_name_from_that_address_only() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock, free=5, base_s=1.0, cap_s=300.0)
    for _ in range(5):
        with throttle.attempt("xiaoli", "198.51.100.7") as a:
            a.failed()
    with pytest.raises(TooManyAttempts) as refused:
        throttle.attempt("xiaoli", "198.51.100.7").__enter__()
    assert refused.value.retry_after_s == 1
    for name, address in (("XiaoLi ", "198.51.100.8"), ("laowang", "198.51.100.7")):
        with throttle.attempt(name, address) as a:  # another address, another name: as usual
            a.succeeded()


async def test_the_backoff_doubles_and_refusals_during_it_do_not_extend_it() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock, free=5, base_s=1.0, cap_s=300.0)
    waits = []
    for _ in range(9):
        while True:
            try:
                with throttle.attempt("xiaoli", "198.51.100.7") as a:
                    a.failed()
                break
            except TooManyAttempts as exc:
                waits.append(exc.retry_after_s)
                for _ in range(50):  # hammering while refused counts for nothing
                    with pytest.raises(TooManyAttempts):
                        throttle.attempt("xiaoli", "198.51.100.7").__enter__()
                await clock.advance(exc.retry_after_s)
    assert waits == [1, 2, 4, 8]
    # The right password right after the last backoff: accepted.
    await clock.advance(16)
    with throttle.attempt("xiaoli", "198.51.100.7") as a:
        a.succeeded()
    with throttle.attempt("xiaoli", "198.51.100.7") as a:  # and the pair starts afresh
        a.failed()


async def test_a_guessed_name_does_not_lock_out_the_others_or_its_owner_for_long(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    clock = ManualClock()
    async with site(db_url, tmp_path, sessionmaker, clock=clock) as client, \
            browsers(client, "", "") as (attacker, colleague):
        for _ in range(5):
            assert (await attacker.sign_in("xiaoli", WRONG)).status == 401
        refused = await attacker.sign_in("xiaoli", PASSWORD)
        assert refused.status == 429 and refused.headers["Retry-After"] == "1"
        # Another user at the same address signs in as usual.
        ok = await colleague.sign_in("laowang", PASSWORD)
        assert ok.status == 302 and await colleague.signed_in()
        # The owner of the name, once the backoff has passed: in.
        await clock.advance(1)
        assert (await attacker.sign_in("xiaoli", PASSWORD)).status == 302
        assert await attacker.signed_in()


# ------------------------------------------------------------------ X-Forwarded-For


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    async with site(db_url, tmp_path, sessionmaker, trusted_proxies=("127.0.0.0/8",)) as client, \
            browsers(client, "203.0.113.5", "203.0.113.6", "10.9.9.9, 203.0.113.5") as (
                guesser, elsewhere, spoofing):
        for _ in range(5):
            assert (await guesser.sign_in("xiaoli", WRONG)).status == 401
        assert (await guesser.sign_in("xiaoli", PASSWORD)).status == 429
        # Behind the proxy, another client is another address.
        assert (await elsewhere.sign_in("xiaoli", PASSWORD)).status == 302
        # A hop the client wrote itself before the proxy's is not believed: the
        # proxy appended the real address, and that one is backing off.
        assert (await spoofing.sign_in("xiaoli", PASSWORD)).status == 429


async def test_forwarded_for_from_an_untrusted_peer_changes_nothing(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    async with site(db_url, tmp_path, sessionmaker) as client, \
            browsers(client, "203.0.113.5", "203.0.113.6") as (guesser, dodging):
        for _ in range(5):
            assert (await guesser.sign_in("xiaoli", WRONG)).status == 401
        # Writing another address in the header does not get round the backoff.
        assert (await dodging.sign_in("xiaoli", PASSWORD)).status == 429


# ------------------------------------------------------------------ sessions per user


async def test_signing_in_beyond_the_cap_ends_the_oldest_session(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    async with site(db_url, tmp_path, sessionmaker, max_sessions_per_user=2) as client, \
            browsers(client, "", "", "", "") as (first, second, third, other):
        for b in (first, second):
            assert (await b.sign_in("xiaoli", PASSWORD)).status == 302
        assert (await other.sign_in("laowang", PASSWORD)).status == 302
        assert await first.signed_in() and await second.signed_in()
        assert (await third.sign_in("xiaoli", PASSWORD)).status == 302
        assert [await b.signed_in() for b in (first, second, third)] == [False, True, True]
        assert await other.signed_in()  # another user's session is not counted


# ------------------------------------------------------------------ next=

REDIRECTS = [
    # (next as given, allowed?)
    ("/\t/evil.example/x", False),  # browsers drop the tab: //evil.example/x
    ("/\n/evil.example/x", False),
    ("//evil.example", False),
    ("/\\evil.example", False),
    ("\\\\evil.example", False),
    ("https://evil.example", False),
    ("http:/evil.example", False),
    ("javascript:alert(1)", False),
    ("%2F%2Fevil.example", False),
    ("/%2F/evil.example", False),
    ("/%2F%2Fevil.example", False),
    ("/%5Cevil.example", False),
    ("/%09/evil.example", False),
    ("/%252F%252Fevil.example", False),  # encoded twice
    (" /agent", False),
    ("/\u3000/evil.example", False),  # ideographic space
    ("/\u200b/evil.example", False),  # zero-width space (Cf)
    ("", False),
    ("/ok/path?x=1", True),
    ("/search?q=%20", True),
    ("/tickets?state=new&page=2", True),
    ("/incidents/12", True),
    ("/search?q=//evil.example", True),  # in the query: still this site's /search
]


@pytest.mark.parametrize(("value", "allowed"), REDIRECTS)
def test_next_is_only_a_path_on_this_site(value: str, allowed: bool) -> None:
    assert safe_next(value) == (value if allowed else None)


async def test_sign_in_follows_next_only_to_this_site(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    async with site(db_url, tmp_path, sessionmaker) as client, browsers(client, "") as (b,):
        for value, allowed in REDIRECTS:
            b.session.cookie_jar.clear()
            r = await b.sign_in("xiaoli", PASSWORD, next_=value)
            assert r.status == 302
            assert r.headers["Location"] == (value if allowed and value else "/agent"), value


# ------------------------------------------------------------------ the password pool


class GatedHasher(PasswordHasher):
    """argon2 whose checks wait for ``gate``: a pool with a check in it stays full."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.entered.release()
        assert self.gate.wait(30)
        return super().verify(hash, password)


async def test_a_full_password_pool_answers_503_with_retry_after_and_counts_no_failure(
        db_url: str, tmp_path: Path, sessionmaker: Any) -> None:
    hasher = GatedHasher()
    async with site(db_url, tmp_path, sessionmaker, hasher=hasher, password_workers=1,
                    password_queue=0) as client, browsers(client, "", "") as (first, second):
        try:
            checking = asyncio.ensure_future(first.sign_in("xiaoli", PASSWORD))
            assert await asyncio.to_thread(hasher.entered.acquire, True, 10)
            # The one thread is busy and nobody may wait: refused at once, not queued.
            for _ in range(6):  # more than the backoff allows: a busy server is no failure
                busy = await asyncio.wait_for(second.sign_in("laowang", PASSWORD), 5)
                assert busy.status == 503 and int(busy.headers["Retry-After"]) >= 1
            assert BUSY in await busy.text()
        finally:
            hasher.gate.set()
        assert (await checking).status == 302
        assert (await second.sign_in("laowang", PASSWORD)).status == 302


async def test_password_checks_run_below_the_event_loops_priority() -> None:
    """On a busy machine the loop (calls, pops, /healthz) gets the CPU before argon2."""
    import os

    from callcenter.auth.passwords import PasswordWorkers

    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    pool = PasswordWorkers(FAST_HASHER, workers=1, queue=0)
    try:
        assert await pool._run(own_nice) >= min(19, own_nice() + 10)
    finally:
        pool.close()
