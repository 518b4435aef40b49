"""The life of a ticket: which state may follow which.

Derived from the one table of actions (``ticketing.workflow.ACTIONS``), which
also says who may take each step; this module answers only "may this state
follow that one" for code that moves a ticket on its own (no person's rights).
"""

from __future__ import annotations

from ticketing.errors import IllegalTransition
from ticketing.workflow import ACTIONS, OPEN_STATES, STATES

__all__ = ["INITIAL_STATE", "OPEN_STATES", "STATES", "TRANSITIONS", "allowed_next",
           "check_transition"]

INITIAL_STATE = "new"

TRANSITIONS: dict[str, frozenset[str]] = {
    state: frozenset(a.target for a in ACTIONS.values()
                     if state in a.sources and a.target is not None and a.target != state)
    for state in STATES
}


def allowed_next(state: str) -> frozenset[str]:
    return TRANSITIONS.get(state, frozenset())


def check_transition(from_state: str, to_state: str, *, ticket_id: int | None = None) -> None:
    """Raise ``IllegalTransition`` unless ``from_state → to_state`` is allowed."""
    if to_state not in allowed_next(from_state):
        raise IllegalTransition(from_state, to_state, ticket_id=ticket_id)
