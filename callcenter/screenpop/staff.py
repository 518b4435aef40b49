"""Which member of staff an extension or a mobile number belongs to (cached)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.console.ports import StaffRef
from callcenter.directory.models import StaffUser
from callcenter.directory.phones import try_normalize


@dataclass(frozen=True, slots=True)
class StaffEntry:
    ref: StaffRef
    notify: dict[str, str]


class StaffDirectory:
    """All active staff, re-read at most every ``ttl_s`` seconds (a few dozen rows)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 ttl_s: float = 30.0) -> None:
        self._sm = sessionmaker
        self._clock = clock
        self._ttl = ttl_s
        self._loaded_at: float | None = None
        self._by_id: dict[int, StaffEntry] = {}
        self._by_ext: dict[str, int] = {}
        self._by_mobile: dict[str, int] = {}
        self._by_name: dict[str, int] = {}

    def invalidate(self) -> None:
        self._loaded_at = None

    async def _refresh(self) -> None:
        now = self._clock.monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self._ttl:
            return
        async with self._sm() as session:
            users = (await session.scalars(select(StaffUser).where(StaffUser.active.is_(True)))).all()
        by_id: dict[int, StaffEntry] = {}
        by_ext: dict[str, int] = {}
        by_mobile: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for u in users:
            by_name[u.username] = u.id
            if u.display_name:
                by_name.setdefault(u.display_name, u.id)
            ref = StaffRef(u.id, u.username, u.display_name or u.username, u.role,
                           u.extension, u.mobile)
            by_id[u.id] = StaffEntry(ref, dict(u.notify or {}))
            if u.extension:
                by_ext[u.extension] = u.id
            if u.mobile:
                by_mobile[try_normalize(u.mobile) or u.mobile] = u.id
        self._by_id, self._by_ext, self._by_mobile = by_id, by_ext, by_mobile
        self._by_name = by_name
        self._loaded_at = now

    async def get(self, user_id: int) -> StaffEntry | None:
        await self._refresh()
        return self._by_id.get(user_id)

    async def all(self) -> list[StaffEntry]:
        await self._refresh()
        return list(self._by_id.values())

    async def find(self, extensions: Iterable[str], mobiles: Iterable[str],
                   names: Iterable[str] = ()) -> list[StaffEntry]:
        await self._refresh()
        ids: list[int] = []
        for name in names:
            if name in self._by_name:
                ids.append(self._by_name[name])
        for ext in extensions:
            if ext in self._by_ext:
                ids.append(self._by_ext[ext])
        for mobile in mobiles:
            key = try_normalize(mobile) or mobile
            if key in self._by_mobile:
                ids.append(self._by_mobile[key])
        return [self._by_id[i] for i in dict.fromkeys(ids)]
