"""API tokens: random, printed once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.identity import Identity
from callcenter.auth.models import ApiToken
from callcenter.db.base import utcnow
from callcenter.directory.models import STAFF_ROLES, StaffUser
from callcenter.errors import InvalidInput

TOKEN_PREFIX = "cct_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, *, role: str, name: str = "",
                       user_id: int | None = None) -> str:
    """Create a token and return it in clear: the only time it is ever seen."""
    if role not in STAFF_ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(STAFF_ROLES)}", field="role")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token), user_id=user_id))
    await session.commit()
    return token


async def verify_token(session: AsyncSession, token: str) -> Identity | None:
    row = (
        await session.scalars(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
        )
    ).first()
    if row is None:
        return None
    row.last_used_at = utcnow()
    await session.commit()
    # A token bound to a person is scoped as that person is; a service token is not.
    user = await session.get(StaffUser, row.user_id) if row.user_id is not None else None
    return Identity(user_id=row.user_id, username=row.name or f"token-{row.id}", role=row.role,
                    via="token", communities=user.scope if user else None)


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    row = await session.get(ApiToken, token_id)
    if row is None:
        return False
    row.revoked = True
    await session.commit()
    return True
