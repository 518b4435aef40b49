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

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles
