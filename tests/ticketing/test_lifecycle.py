"""The ticket lifecycle: every legal transition passes, illegal ones raise 409s."""

from __future__ import annotations

import pytest

from callcenter.errors import Conflict, DomainError
from ticketing.errors import IllegalTransition
from ticketing.lifecycle import STATES, TRANSITIONS, allowed_next, check_transition

# By hand from the issue: 受理 → 派单 → 接单 → 到场 → 完工 → 回访 → 归档; 退单 back to
# 派单; 改派 from 接单 is a new 派单; 重开 after 完工 / 回访 / 归档; cancel before work starts.
LEGAL = [
    ("new", "dispatched"),
    ("dispatched", "accepted"),
    ("accepted", "in_progress"),
    ("in_progress", "resolved"),
    ("resolved", "followed_up"),
    ("followed_up", "closed"),
    ("dispatched", "returned"),
    ("accepted", "returned"),
    ("returned", "dispatched"),
    ("accepted", "dispatched"),
    ("resolved", "reopened"),
    ("followed_up", "reopened"),
    ("closed", "reopened"),
    ("reopened", "dispatched"),
    ("new", "cancelled"),
    ("dispatched", "cancelled"),
    ("returned", "cancelled"),
    ("reopened", "cancelled"),
]


def test_the_table_holds_exactly_the_documented_transitions() -> None:
    table = {(a, b) for a, nexts in TRANSITIONS.items() for b in nexts}
    assert table == set(LEGAL)
    assert set(TRANSITIONS) == set(STATES)


@pytest.mark.parametrize(("src", "dst"), LEGAL)
def test_legal_transition_passes(src: str, dst: str) -> None:
    check_transition(src, dst)
    assert dst in allowed_next(src)


ILLEGAL = [
    (a, b)
    for a in STATES
    for b in STATES
    if (a, b) not in set(LEGAL)
]


@pytest.mark.parametrize(("src", "dst"), ILLEGAL)
def test_every_other_pair_is_illegal(src: str, dst: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(src, dst, ticket_id=7)
    err = info.value
    assert isinstance(err, DomainError) and isinstance(err, Conflict)
    assert err.error_id == "illegal_transition"
    assert err.http_status == 409
    assert err.details == {"from": src, "to": dst, "ticket_id": 7}


def test_cancelled_and_skipping_ahead_are_refused() -> None:
    assert allowed_next("cancelled") == frozenset()
    for skip in ("accepted", "in_progress", "resolved", "closed"):
        with pytest.raises(IllegalTransition):
            check_transition("new", skip)
    with pytest.raises(IllegalTransition):
        check_transition("resolved", "cancelled")
    with pytest.raises(IllegalTransition):
        check_transition("in_progress", "cancelled")  # someone is on site
    with pytest.raises(IllegalTransition):
        check_transition("unknown-state", "new")
