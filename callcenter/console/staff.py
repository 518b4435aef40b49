"""The signed-in person as the console's ports see them (``StaffRef``)."""

from __future__ import annotations

from aiohttp import web

from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.identity import Identity
from callcenter.console.ports import StaffRef
from callcenter.directory.models import StaffUser
from callcenter.errors import Forbidden, NotFound


async def staff_ref(request: web.Request, ident: Identity) -> StaffRef:
    """The person behind ``ident``: a 403 for a service token bound to nobody (it has
    no extension, queue or state), a 404 for a user since removed."""
    if ident.user_id is None:
        raise Forbidden("此操作需要以坐席身份登录 / sign in as a person")
    async with request.app[SESSIONMAKER]() as session:
        user = await session.get(StaffUser, ident.user_id)
    if user is None:
        raise NotFound("用户不存在 / no such user", details={"user_id": ident.user_id})
    return StaffRef(user.id, user.username, user.display_name or user.username, user.role,
                    user.extension, user.mobile)
