"""Community scope: a person bound to communities (``StaffUser.scope``) sees only
their data. ``Identity.sees`` decides for a row with a community id; these give the
communities' codes, for rows that carry the code (calls, rooms, pops)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.appkeys import SESSIONMAKER
from callcenter.auth.identity import Identity
from callcenter.auth.middleware import current_identity
from callcenter.directory.models import Community

# The codes of the communities an identity sees; None: every one.
Scope = frozenset[str] | None


async def codes_of(sessionmaker: async_sessionmaker[AsyncSession],
                   ident: Identity | None) -> Scope:
    """The codes of ``ident``'s communities; None when they see every community (an
    empty set when theirs are gone, or none: nothing matches it)."""
    if ident is None or ident.communities is None:
        return None
    if not ident.communities:
        return frozenset()
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Community.code).where(Community.id.in_(sorted(ident.communities))))
        return frozenset(rows.all())


async def scope_codes(request: web.Request) -> Scope:
    """The codes of the signed-in person's communities (see ``codes_of``)."""
    return await codes_of(request.app[SESSIONMAKER], current_identity(request))


def in_scope(scope: Scope, community: str | None, default: str | None) -> bool:
    """Is a row of ``community`` (a code; None: the site's ``default`` one) in ``scope``?"""
    if scope is None:
        return True
    code = community or default
    return code is not None and code in scope
