"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: int | None
    username: str
    role: str
    via: str  # "token" or "session"
    display_name: str = ""
    csrf_token: str = ""

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles
