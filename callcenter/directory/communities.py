"""The communities (小区) a site serves: their codes, names and hotline numbers.

A community's ``code`` is what settings and menus name (``default_community``,
``[[asterisk]] community``, a menu file's ``community``); its hotline numbers
are what a call's dialled number is matched against (``hotlines.py``). The
owner import finds communities by name, so one added here before an import
keeps its code, and one an import created (code ``c-…``) can be given a code
of the site's choosing afterwards.

Hotline numbers are kept in the form ``number_key`` compares (E.164, or the
digits of a short internal number), so each is listed once however it was
typed, and a number another community already has is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.hotlines import number_key
from callcenter.directory.models import Building, Community, PersonRoom, Room, Unit
from callcenter.errors import Conflict, InvalidInput, NotFound

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class CommunityRow:
    code: str
    name: str
    hotline_numbers: tuple[str, ...]
    owners: int  # people linked to one of its rooms as owner (业主)


def check_code(code: str) -> str:
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise InvalidInput(f"小区代码只能用小写字母、数字、- 和 _ / bad community code {code!r} "
                           "(lower-case letters, digits, - and _; up to 64)", field="code")
    return code


def hotline_key(raw: str) -> str:
    key = number_key(raw)
    if key is None:
        raise InvalidInput(f"不是电话号码 / not a phone number: {raw!r}", field="hotline")
    return key


async def list_communities(session: AsyncSession) -> list[CommunityRow]:
    owners: dict[int, int] = {cid: n for cid, n in (await session.execute(
        select(Building.community_id, func.count(func.distinct(PersonRoom.person_id)))
        .join(Unit, Unit.building_id == Building.id)
        .join(Room, Room.unit_id == Unit.id)
        .join(PersonRoom, PersonRoom.room_id == Room.id)
        .where(PersonRoom.role == "owner")
        .group_by(Building.community_id))).all()}
    rows = (await session.scalars(select(Community).order_by(Community.code))).all()
    return [CommunityRow(c.code, c.name, tuple(c.hotline_numbers or ()), owners.get(c.id, 0))
            for c in rows]


async def _get(session: AsyncSession, code: str) -> Community:
    community = (await session.scalars(select(Community).where(Community.code == code))).first()
    if community is None:
        known = ", ".join((await session.scalars(select(Community.code).order_by(Community.code)))
                          .all()) or "(none)"
        raise NotFound(f"没有代码为 {code} 的小区 / no community {code!r}; known: {known}",
                       details={"code": code})
    return community


async def _check_free(session: AsyncSession, keys: Iterable[str], owner_id: int | None) -> None:
    """Refuse a hotline number another community already lists."""
    wanted = set(keys)
    for other_id, other_code, numbers in (await session.execute(
            select(Community.id, Community.code, Community.hotline_numbers))).all():
        if other_id == owner_id:
            continue
        taken = wanted & {number_key(str(n)) for n in numbers or ()}
        if taken:
            raise Conflict(f"热线号码 {', '.join(sorted(taken))} 已属于小区 {other_code} / "
                           f"hotline already belongs to community {other_code!r}",
                           details={"hotline": sorted(taken), "community": other_code})


async def _check_name(session: AsyncSession, name: str, owner_id: int | None) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("小区名称不能为空 / a community needs a name", field="name")
    other = (await session.scalars(select(Community.code).where(
        Community.name == name, Community.id != (owner_id or -1)))).first()
    if other is not None:
        # The owner import finds communities by name: two of one name would be one.
        raise Conflict(f"小区 {other} 已叫 {name} / community {other!r} already has this name",
                       details={"name": name, "community": other})
    return name


async def add_community(session: AsyncSession, code: str, name: str,
                        hotlines: Sequence[str] = ()) -> CommunityRow:
    code = check_code(code)
    if (await session.scalars(select(Community.id).where(Community.code == code))).first():
        raise Conflict(f"小区代码 {code} 已存在 / community {code!r} exists", details={"code": code})
    name = await _check_name(session, name, None)
    keys = list(dict.fromkeys(hotline_key(h) for h in hotlines))
    await _check_free(session, keys, None)
    session.add(Community(code=code, name=name, hotline_numbers=keys))
    await session.flush()
    return CommunityRow(code, name, tuple(keys), 0)


async def update_community(session: AsyncSession, code: str, *, name: str | None = None,
                           new_code: str | None = None, add_hotlines: Sequence[str] = (),
                           remove_hotlines: Sequence[str] = ()) -> CommunityRow:
    community = await _get(session, code)
    if new_code is not None and new_code != community.code:
        new_code = check_code(new_code)
        if (await session.scalars(select(Community.id).where(Community.code == new_code))).first():
            raise Conflict(f"小区代码 {new_code} 已存在 / community {new_code!r} exists",
                           details={"code": new_code})
        community.code = new_code
    if name is not None:
        community.name = await _check_name(session, name, community.id)
    numbers = [str(n) for n in community.hotline_numbers or ()]
    drop = {hotline_key(h) for h in remove_hotlines}
    missing = drop - {number_key(n) for n in numbers}
    if missing:
        raise NotFound(f"小区 {community.code} 没有热线 {', '.join(sorted(missing))} / "
                       "not a hotline of this community", details={"hotline": sorted(missing)})
    numbers = [n for n in numbers if number_key(n) not in drop]
    add = [k for k in dict.fromkeys(hotline_key(h) for h in add_hotlines)
           if k not in {number_key(n) for n in numbers}]
    await _check_free(session, add, community.id)
    community.hotline_numbers = numbers + add  # a new list: JSON columns see reassignment only
    await session.flush()
    owners = {r.code: r.owners for r in await list_communities(session)}
    return CommunityRow(community.code, community.name, tuple(community.hotline_numbers),
                        owners.get(community.code, 0))


async def spreadsheet_name(session: AsyncSession, community: str | None) -> str | None:
    """What the owner import fills an empty 小区 cell with: the name of the
    community whose code this is (``default_community`` is a code), else the
    text itself (``--community 滨江花园``)."""
    if not community:
        return community
    name = (await session.scalars(select(Community.name).where(Community.code == community))).first()
    return name or community


async def missing_codes(session: AsyncSession, codes: Iterable[str | None]) -> list[str]:
    """The codes among ``codes`` that name no community (None and "" skipped)."""
    wanted = {c for c in codes if c}
    if not wanted:
        return []
    known = set((await session.scalars(select(Community.code).where(
        Community.code.in_(wanted)))).all())
    return sorted(wanted - known)
