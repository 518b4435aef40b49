"""The life of a ticket: which state may follow which.

    new → dispatched → in_progress → resolved → followed_up → closed
    resolved / followed_up / closed → reopened → dispatched / in_progress
    new / dispatched / in_progress → cancelled
"""

from __future__ import annotations

from ticketing.errors import IllegalTransition

STATES: dict[str, str] = {
    "new": "新建",
    "dispatched": "已派单",
    "in_progress": "处理中",
    "resolved": "已解决",
    "followed_up": "已回访",
    "closed": "已关闭",
    "reopened": "已重开",
    "cancelled": "已取消",
}
INITIAL_STATE = "new"

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"dispatched", "cancelled"}),
    "dispatched": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"resolved", "cancelled"}),
    "resolved": frozenset({"followed_up", "reopened"}),
    "followed_up": frozenset({"closed", "reopened"}),
    "closed": frozenset({"reopened"}),
    "reopened": frozenset({"dispatched", "in_progress"}),
    "cancelled": frozenset(),
}

OPEN_STATES = frozenset({"new", "dispatched", "in_progress", "reopened"})


def allowed_next(state: str) -> frozenset[str]:
    return TRANSITIONS.get(state, frozenset())


def check_transition(from_state: str, to_state: str, *, ticket_id: int | None = None) -> None:
    """Raise ``IllegalTransition`` unless ``from_state → to_state`` is allowed."""
    if to_state not in allowed_next(from_state):
        raise IllegalTransition(from_state, to_state, ticket_id=ticket_id)
