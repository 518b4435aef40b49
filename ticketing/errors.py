"""Errors of the ticketing domain."""

from __future__ import annotations

from callcenter.errors import Conflict
from ticketing.workflow import STATES


class IllegalTransition(Conflict):
    """A state change the ticket lifecycle does not allow (HTTP 409)."""

    error_id = "illegal_transition"

    def __init__(self, from_state: str, to_state: str, *, ticket_id: int | None = None) -> None:
        details: dict[str, object] = {"from": from_state, "to": to_state}
        if ticket_id is not None:
            details["ticket_id"] = ticket_id
        super().__init__(
            f"工单不能从{STATES.get(from_state, '未知状态')}变为{STATES.get(to_state, '未知状态')}"
            f" / illegal transition {from_state} -> {to_state}",
            details=details,
        )
        self.from_state = from_state
        self.to_state = to_state
