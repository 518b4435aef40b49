"""The lease of an Asterisk link in PostgreSQL: take, renew, release, read.

One row per link (``ha_leases``). Taking and renewing are the same single
``UPDATE ... WHERE expires_at < now() OR holder = me``: it succeeds for the
holder of a live lease (a renewal) and for anyone once the lease has run out
(a takeover), never for two servers at once (the row lock orders them, and the
second one sees the first's ``expires_at``). Every time is the database's
``now()``: the servers' clocks are never compared.

``epoch`` is the fencing number: it grows by one whenever the lease is taken
by a server that did not hold it live (a takeover, or a holder whose own lease
ran out), so a stale owner can be told from the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_ENSURE = text(
    "INSERT INTO ha_leases (link, holder, epoch, expires_at, acquired_at) "
    "VALUES (:link, '', 0, now() - interval '1 second', NULL) "
    "ON CONFLICT (link) DO NOTHING")

_TAKE = text(
    "UPDATE ha_leases SET "
    " epoch = CASE WHEN holder = :me AND expires_at >= now() THEN epoch ELSE epoch + 1 END,"
    " acquired_at = CASE WHEN holder = :me AND expires_at >= now() THEN acquired_at"
    "               ELSE now() END,"
    " holder = :me,"
    " expires_at = now() + make_interval(secs => :ttl) "
    "WHERE link = :link AND (expires_at < now() OR holder = :me) "
    "RETURNING epoch, acquired_at, expires_at")

_RELEASE = text(
    "UPDATE ha_leases SET expires_at = now() - interval '1 second' "
    "WHERE link = :link AND holder = :me AND epoch = :epoch")

_READ = text(
    "SELECT link, holder, epoch, expires_at, acquired_at, expires_at >= now() AS live "
    "FROM ha_leases ORDER BY link")


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful take or renewal."""

    link: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseRow:
    link: str
    holder: str
    epoch: int
    expires_at: datetime
    acquired_at: datetime | None
    live: bool

    def to_json(self) -> dict[str, Any]:
        return {"link": self.link, "holder": self.holder or None, "epoch": self.epoch,
                "live": self.live, "expires_at": self.expires_at.isoformat(),
                "acquired_at": self.acquired_at.isoformat() if self.acquired_at else None}


class LeaseStore:
    """The ``ha_leases`` rows, on the server's PostgreSQL engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ensure(self, links: list[str]) -> None:
        """One row per link (an expired lease nobody holds), created once."""
        async with self.engine.begin() as conn:
            for link in links:
                await conn.execute(_ENSURE, {"link": link})

    async def take(self, link: str, me: str, ttl_s: float) -> Grant | None:
        """Take or renew the lease for ``ttl_s`` from the database's now; None
        when another server holds it live."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(_TAKE, {"link": link, "me": me,
                                              "ttl": float(ttl_s)})).first()
        if row is None:
            return None
        return Grant(link, int(row.epoch), row.acquired_at, row.expires_at)

    async def release(self, link: str, me: str, epoch: int) -> bool:
        """End our lease now (a clean stop): the other server takes it at its next try."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_RELEASE, {"link": link, "me": me, "epoch": epoch})
        return bool(getattr(result, "rowcount", 0))

    async def read(self) -> list[LeaseRow]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_READ)).all()
        return [LeaseRow(r.link, r.holder, int(r.epoch), r.expires_at, r.acquired_at,
                         bool(r.live)) for r in rows]
