"""Web sessions for people: a random cookie, stored hashed, with a CSRF token.

``SessionStore`` creates, resolves and ends sessions, checks passwords on its
``PasswordWorkers`` (off the event loop) and keeps at most ``max_per_user``
sessions per person (signing in once more ends the oldest); ``session_resolver``
turns it into the callable the auth middleware looks up under
``SESSION_RESOLVER``; ``csrf_middleware`` refuses any state-changing request
made with the session cookie that does not carry the session's CSRF token (a
``csrf_token`` form field or an ``X-CSRF-Token`` header). ``LoginThrottle``
(``callcenter.auth.throttle``) slows down password guessing per user name and
address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.identity import Identity
from callcenter.auth.passwords import PasswordWorkers, make_hasher
from callcenter.auth.throttle import LoginThrottle as LoginThrottle
from callcenter.auth.throttle import TooManyAttempts as TooManyAttempts
from callcenter.clock import Clock
from callcenter.console.models import WebSession
from callcenter.directory.models import StaffUser
from callcenter.errors import Forbidden

SESSION_COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_SEEN_EVERY_S = 60.0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    csrf_token: str
    identity: Identity
    # Sessions of the same user this one ended (over ``max_per_user``): their keys.
    ended: tuple[str, ...] = field(default=())


class SessionStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 max_age_s: int, hasher: PasswordHasher | None = None,
                 passwords: PasswordWorkers | None = None, max_per_user: int = 10) -> None:
        """``passwords``: the workers that check passwords; without, the store makes
        its own from ``hasher`` and ``close()`` stops them."""
        self._sm = sessionmaker
        self._clock = clock
        self.max_age_s = max_age_s
        self._own_workers = passwords is None
        self.passwords = passwords or PasswordWorkers(hasher or make_hasher())
        self.hasher = self.passwords.hasher
        self.max_per_user = max(1, max_per_user)

    def close(self) -> None:
        if self._own_workers:
            self.passwords.close()

    async def authenticate(self, username: str, password: str) -> StaffUser | None:
        """The active user with this name and password, else None (same cost either way).

        Raises ``HashingBusy`` when the password workers are full."""
        self.passwords.check_room()
        async with self._sm() as session:
            user = (await session.scalars(
                select(StaffUser).where(StaffUser.username == username.strip())
            )).first()
        ok = await self.passwords.verify(user.password_hash if user else None, password)
        if not ok or user is None or not user.active:
            return None
        return user

    async def create(self, user: StaffUser, *, remote: str = "", user_agent: str = "") -> NewSession:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._sm() as session:
            session.add(WebSession(
                token_hash=_hash(token), user_id=user.id, csrf_token=csrf, created_at=now,
                expires_at=now + timedelta(seconds=self.max_age_s), last_seen_at=now,
                remote=remote[:64], user_agent=user_agent[:300],
            ))
            await session.flush()
            # The newest max_per_user stay; signing in once more ends the oldest.
            over = (await session.scalars(
                select(WebSession.token_hash).where(WebSession.user_id == user.id)
                .order_by(WebSession.created_at.desc(), WebSession.id.desc())
                .offset(self.max_per_user))).all()
            if over:
                await session.execute(delete(WebSession).where(WebSession.token_hash.in_(over)))
            await session.commit()
        return NewSession(token, csrf, _identity(user, csrf, _hash(token),
                                                 now + timedelta(seconds=self.max_age_s)),
                          ended=tuple(over))

    async def resolve(self, token: str) -> Identity | None:
        """The identity of a live session; None when unknown, expired or the user is disabled."""
        if not token:
            return None
        now = self._clock.now()
        async with self._sm() as session:
            row = (await session.execute(
                select(WebSession, StaffUser)
                .join(StaffUser, StaffUser.id == WebSession.user_id)
                .where(WebSession.token_hash == _hash(token))
            )).first()
            if row is None:
                return None
            web_session, user = row
            if web_session.expires_at <= now or not user.active:
                await session.delete(web_session)
                await session.commit()
                return None
            if (now - web_session.last_seen_at).total_seconds() >= LAST_SEEN_EVERY_S:
                web_session.last_seen_at = now
                await session.commit()
            return _identity(user, web_session.csrf_token, web_session.token_hash,
                             web_session.expires_at)

    async def end(self, token: str) -> bool:
        async with self._sm() as session:
            result = await session.execute(
                delete(WebSession).where(WebSession.token_hash == _hash(token)))
            await session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def end_all_for(self, user_id: int) -> None:
        async with self._sm() as session:
            await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
            await session.commit()

    async def live_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of these sessions that are still good: not ended, not expired (on the
        injected clock), their user not disabled."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        async with self._sm() as session:
            rows = await session.scalars(
                select(WebSession.token_hash)
                .join(StaffUser, StaffUser.id == WebSession.user_id)
                .where(WebSession.token_hash.in_(wanted),
                       WebSession.expires_at > self._clock.now(),
                       StaffUser.active.is_(True)))
            return set(rows.all())

    async def live_users(self, user_ids: Iterable[int]) -> set[int]:
        """Those of these users who still have a good session somewhere."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        async with self._sm() as session:
            rows = await session.scalars(
                select(WebSession.user_id).distinct()
                .join(StaffUser, StaffUser.id == WebSession.user_id)
                .where(WebSession.user_id.in_(wanted),
                       WebSession.expires_at > self._clock.now(),
                       StaffUser.active.is_(True)))
            return set(rows.all())

    async def purge_expired(self) -> int:
        async with self._sm() as session:
            result = await session.execute(
                delete(WebSession).where(WebSession.expires_at <= self._clock.now()))
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


def _identity(user: StaffUser, csrf: str, key: str = "",
              expires_at: datetime | None = None) -> Identity:
    return Identity(user_id=user.id, username=user.username, role=user.role, via="session",
                    display_name=user.display_name or user.username, csrf_token=csrf,
                    session_key=key, expires_at=expires_at, communities=user.scope)


def session_key(token: str) -> str:
    """What a session is known by once issued (``Identity.session_key``)."""
    return _hash(token)


def session_resolver(store: SessionStore) -> Callable[[web.Request], Awaitable[Identity | None]]:
    """What to install under ``SESSION_RESOLVER``: the session cookie → Identity."""

    async def resolve(request: web.Request) -> Identity | None:
        return await store.resolve(request.cookies.get(SESSION_COOKIE, ""))

    return resolve


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given or "")


def csrf_middleware_factory() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def csrf_middleware(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                              ) -> web.StreamResponse:
        from callcenter.auth.middleware import current_identity

        if request.method in SAFE_METHODS:
            return await handler(request)
        ident = current_identity(request)
        if ident is None or ident.via != "session":
            # Bearer-token API calls carry no ambient credential; nothing to forge.
            return await handler(request)
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"
        ):
            form = await request.post()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
        if not csrf_ok(ident.csrf_token, given):
            raise Forbidden("CSRF 校验失败，请刷新页面后重试 / CSRF token missing or wrong",
                            details={"reason": "csrf"})
        return await handler(request)

    return csrf_middleware
