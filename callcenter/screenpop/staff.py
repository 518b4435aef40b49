"""Which member of staff an extension or a mobile number belongs to (cached)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.console.ports import StaffRef
from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.directory.phones import try_normalize
from callcenter.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class StaffEntry:
    ref: StaffRef
    notify: dict[str, str]
    # The codes of the communities the person works for; None: every one.
    scope: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class _Staff:
    by_id: dict[int, StaffEntry]
    by_ext: dict[str, int]
    by_mobile: dict[str, int]
    by_name: dict[str, int]


class StaffDirectory:
    """All active staff (a few dozen rows), held in a ``Snapshot``: re-read in the
    background every ``ttl_s`` seconds, at once after ``invalidate()``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *,
                 ttl_s: float = 30.0) -> None:
        self._sm = sessionmaker
        self._snapshot = Snapshot(self._load, clock, ttl_s=ttl_s, name="staff directory")

    def invalidate(self) -> None:
        self._snapshot.invalidate()

    async def close(self) -> None:
        await self._snapshot.close()

    async def _load(self) -> _Staff:
        async with self._sm() as session:
            users = (await session.scalars(
                select(StaffUser).where(StaffUser.active.is_(True)))).all()
            codes: dict[int, set[str]] = {}
            for uid, code in (await session.execute(
                    select(StaffCommunity.user_id, Community.code)
                    .join(Community, Community.id == StaffCommunity.community_id))).all():
                codes.setdefault(uid, set()).add(code)
        staff = _Staff({}, {}, {}, {})
        for u in users:
            staff.by_name[u.username] = u.id
            if u.display_name:
                staff.by_name.setdefault(u.display_name, u.id)
            ref = StaffRef(u.id, u.username, u.display_name or u.username, u.role,
                           u.extension, u.mobile)
            scope = None if u.all_communities else frozenset(codes.get(u.id, ()))
            staff.by_id[u.id] = StaffEntry(ref, dict(u.notify or {}), scope)
            if u.extension:
                staff.by_ext[u.extension] = u.id
            if u.mobile:
                staff.by_mobile[try_normalize(u.mobile) or u.mobile] = u.id
        return staff

    async def get(self, user_id: int) -> StaffEntry | None:
        return (await self._snapshot.get()).by_id.get(user_id)

    async def all(self) -> list[StaffEntry]:
        return list((await self._snapshot.get()).by_id.values())

    async def find(self, extensions: Iterable[str], mobiles: Iterable[str],
                   names: Iterable[str] = ()) -> list[StaffEntry]:
        staff = await self._snapshot.get()
        ids: list[int] = []
        for name in names:
            if name in staff.by_name:
                ids.append(staff.by_name[name])
        for ext in extensions:
            if ext in staff.by_ext:
                ids.append(staff.by_ext[ext])
        for mobile in mobiles:
            key = try_normalize(mobile) or mobile
            if key in staff.by_mobile:
                ids.append(staff.by_mobile[key])
        return [staff.by_id[i] for i in dict.fromkeys(ids)]
