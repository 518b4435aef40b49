"""Departments of a community and the people in them.

Every community gets the default departments the first time it needs them
(``ensure_departments``): 工程部, 保洁部, 秩序部, 客服部, 绿化部, each with the
on-call schedule role whose person takes "the department's on-call person now".
They are changed through the API (``PUT /api/departments/{community}/{code}``);
the codes are those ``ticketing.categories`` routes categories to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.directory.models import STAFF_ROLES, StaffUser
from callcenter.errors import InvalidInput, NotFound
from ticketing.categories import DEPARTMENTS
from ticketing.models import Department, DepartmentMember

DEFAULT_ONCALL_ROLES: dict[str, str | None] = {
    "engineering": "engineer", "cleaning": None, "security": "night_duty",
    "customer_service": "agent", "greening": None,
}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: int
    name: str
    role: str
    head: bool

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "name": self.name, "role": self.role,
                "head": self.head}


@dataclass(frozen=True, slots=True)
class DepartmentView:
    id: int
    community_id: int
    code: str
    name: str
    oncall_role: str | None
    active: bool
    members: tuple[MemberView, ...]

    @property
    def heads(self) -> tuple[MemberView, ...]:
        return tuple(m for m in self.members if m.head)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "community_id": self.community_id, "code": self.code,
                "name": self.name, "oncall_role": self.oncall_role, "active": self.active,
                "members": [m.to_json() for m in self.members]}


async def ensure_departments(session: AsyncSession, community_id: int) -> None:
    """Add the default departments to a community that has none (no commit)."""
    have = (await session.scalars(select(Department.id).where(
        Department.community_id == community_id).limit(1))).first()
    if have is not None:
        return
    for code, name in DEPARTMENTS.items():
        session.add(Department(community_id=community_id, code=code, name=name,
                               oncall_role=DEFAULT_ONCALL_ROLES.get(code), active=True))
    await session.flush()


async def find_department(session: AsyncSession, community_id: int, code: str
                          ) -> Department | None:
    await ensure_departments(session, community_id)
    return (await session.scalars(
        select(Department).where(Department.community_id == community_id,
                                 Department.code == code)
        .options(selectinload(Department.members)))).first()


async def list_departments(session: AsyncSession, community_id: int) -> list[DepartmentView]:
    await ensure_departments(session, community_id)
    rows = (await session.scalars(
        select(Department).where(Department.community_id == community_id)
        .options(selectinload(Department.members)).order_by(Department.id))).all()
    users = await _users(session, [m.user_id for d in rows for m in d.members])
    return [_view(d, users) for d in rows]


async def _users(session: AsyncSession, ids: Sequence[int]) -> dict[int, StaffUser]:
    if not ids:
        return {}
    return {u.id: u for u in (await session.scalars(
        select(StaffUser).where(StaffUser.id.in_(set(ids))))).all()}


def _view(d: Department, users: dict[int, StaffUser]) -> DepartmentView:
    members = tuple(
        MemberView(m.user_id, users[m.user_id].display_name or users[m.user_id].username,
                   users[m.user_id].role, bool(m.head))
        for m in d.members if m.user_id in users)
    return DepartmentView(d.id, d.community_id, d.code, d.name, d.oncall_role, bool(d.active),
                          members)


@dataclass(frozen=True, slots=True)
class MemberInput:
    user_id: int
    head: bool = False


async def put_department(session: AsyncSession, community_id: int, code: str, *, name: str,
                         oncall_role: str | None, active: bool = True,
                         members: Sequence[MemberInput] | None = None) -> DepartmentView:
    """Create or change one department (no commit); ``members`` replaces the list
    when given. A member must be an active staff user of this community (or of all)."""
    if not _CODE.match(code):
        raise InvalidInput("部门编码只能用小写字母、数字和下划线 / code: a-z, 0-9, _",
                           field="code")
    name = name.strip()
    if not name or len(name) > 50:
        raise InvalidInput("请填写部门名称（50字以内） / name: 1-50 characters", field="name")
    if oncall_role is not None and oncall_role not in STAFF_ROLES:
        raise InvalidInput("值班角色无效 / oncall_role: one of " + ", ".join(STAFF_ROLES),
                           field="oncall_role")
    dept = await find_department(session, community_id, code)
    if dept is None:
        dept = Department(community_id=community_id, code=code, name=name)
        session.add(dept)
    dept.name, dept.oncall_role, dept.active = name, oncall_role, active
    await session.flush()
    if members is not None:
        users = await _users(session, [m.user_id for m in members])
        for i, m in enumerate(members):
            user = users.get(m.user_id)
            if user is None or not user.active or (
                    user.scope is not None and community_id not in user.scope):
                raise InvalidInput("人员不存在或不属于本小区 / no such staff user here",
                                   field=f"members[{i}].user_id")
        if len({m.user_id for m in members}) != len(members):
            raise InvalidInput("人员重复 / a user is listed twice", field="members")
        await session.refresh(dept, ["members"])
        dept.members.clear()
        await session.flush()
        dept.members.extend(DepartmentMember(user_id=m.user_id, head=m.head) for m in members)
        await session.flush()
    await session.refresh(dept, ["members"])
    users = await _users(session, [m.user_id for m in dept.members])
    return _view(dept, users)


async def department_view(session: AsyncSession, community_id: int, code: str
                          ) -> DepartmentView:
    dept = await find_department(session, community_id, code)
    if dept is None:
        raise NotFound("部门不存在 / no such department", details={"field": "department"})
    users = await _users(session, [m.user_id for m in dept.members])
    return _view(dept, users)
