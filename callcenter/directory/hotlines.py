"""Which community a call is for: the number the caller dialled.

Each community lists its hotline numbers (``Community.hotline_numbers``); a call's
dialled number (``agi_dnid``, else ``agi_extension`` when the dialplan runs on the
DID) finds the community. Failing that, the community of the Asterisk the call
came from (``[[asterisk]] community``), then ``default_community``. The numbers
are held in memory (``Snapshot``): a call costs no database query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.directory.models import Community
from callcenter.directory.phones import try_normalize
from callcenter.snapshot import Snapshot

log = logging.getLogger(__name__)


def number_key(raw: str) -> str | None:
    """The form both sides are compared in: E.164 when it parses, else the digits
    (a short internal number such as ``8000``); None for ``s``, ``unknown`` ..."""
    raw = (raw or "").strip()
    e164 = try_normalize(raw) if raw else None
    if e164:
        return e164
    digits = "".join(c for c in raw if c.isdigit())
    return digits if digits and len(digits) == len(raw.replace("-", "").replace(" ", "")) \
        else None


class HotlineDirectory:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 ttl_s: float = 60.0) -> None:
        self._sm = sessionmaker
        self._snapshot = Snapshot(self._load, clock, ttl_s=ttl_s, name="hotline numbers")

    def invalidate(self) -> None:
        self._snapshot.invalidate()

    async def close(self) -> None:
        await self._snapshot.close()

    async def _load(self) -> dict[str, str]:
        async with self._sm() as session:
            rows = (await session.execute(select(Community.code, Community.hotline_numbers)
                                          .order_by(Community.id))).all()
        numbers: dict[str, str] = {}
        for code, hotlines in rows:
            for raw in hotlines or ():
                key = number_key(str(raw))
                if key is None:
                    continue
                if key in numbers and numbers[key] != code:
                    log.warning("hotline %s is listed by both %s and %s; calls go to %s",
                                raw, numbers[key], code, numbers[key])
                    continue
                numbers[key] = code
        return numbers

    async def community_for(self, dialled: Iterable[str]) -> str | None:
        numbers = await self._snapshot.get()
        for raw in dialled:
            key = number_key(raw)
            if key is not None and key in numbers:
                return numbers[key]
        return None


@dataclass(frozen=True, slots=True)
class CommunityChoice:
    code: str | None
    rule: str  # "dialled number", "asterisk link", "default"


class CommunityResolver:
    def __init__(self, hotlines: HotlineDirectory, default: str | None) -> None:
        self.hotlines = hotlines
        self.default = default

    async def for_call(self, env: dict[str, str], link_community: str | None = None
                       ) -> CommunityChoice:
        code = await self.hotlines.community_for(
            (env.get("agi_dnid", ""), env.get("agi_extension", "")))
        if code is not None:
            return CommunityChoice(code, "dialled number")
        if link_community:
            return CommunityChoice(link_community, "asterisk link")
        return CommunityChoice(self.default, "default")
