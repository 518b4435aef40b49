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
    # The community the person works for (``StaffUser.community_id``); None: every one.
    community_id: int | None = None

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles

    def sees(self, community_id: int | None) -> bool:
        """May this identity see (or change) data of ``community_id``? A person bound
        to a community sees only its rows, not even those of no community."""
        return self.community_id is None or community_id == self.community_id
