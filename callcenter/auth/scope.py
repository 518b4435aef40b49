"""Community scope: a person bound to a community (``StaffUser.community_id``) sees
only its data. ``Identity.sees`` decides for a row with a community id; this
gives the community's code, for rows that carry the code (calls, rooms)."""

from __future__ import annotations

from aiohttp import web

from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.middleware import current_identity
from callcenter.directory.models import Community


async def scope_code(request: web.Request) -> str | None:
    """The code of the signed-in person's community; None when they see every community
    ("" when theirs is gone: nothing matches it)."""
    ident = current_identity(request)
    if ident is None or ident.community_id is None:
        return None
    async with request.app[SESSIONMAKER]() as session:
        comm = await session.get(Community, ident.community_id)
    return comm.code if comm else ""


def in_scope(scope: str | None, community: str | None, default: str | None) -> bool:
    """Is a row of ``community`` (a code; None: the site's ``default`` one) in ``scope``?"""
    return scope is None or (community or default) == scope
