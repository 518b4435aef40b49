"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: int | None
    username: str
    role: str
    via: str  # "token" or "session"
    display_name: str = ""
    csrf_token: str = ""
    # A web session's: what it is known by (the token's hash) and when it ends, so a
    # WebSocket opened with it can be closed when it ends.
    session_key: str = ""
    expires_at: datetime | None = None
    # The ids of the communities the person works for (``StaffUser.scope``); None: every
    # one (a person who sees all of them, or a service token bound to no person).
    communities: frozenset[int] | None = None

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles

    @property
    def scoped(self) -> bool:
        """Is this identity limited to some communities?"""
        return self.communities is not None

    @property
    def only_community(self) -> int | None:
        """The community of a person who works for exactly one (what a form defaults to)."""
        if self.communities is not None and len(self.communities) == 1:
            return next(iter(self.communities))
        return None

    def sees(self, community_id: int | None) -> bool:
        """May this identity see (or change) data of ``community_id``? A person bound
        to communities sees only their rows, not even those of no community."""
        return self.communities is None or (
            community_id is not None and community_id in self.communities)
