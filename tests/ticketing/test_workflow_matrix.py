"""Who may do what to a work order, in full: every state × every action × every kind
of person, over HTTP on SQLite and PostgreSQL.

``HAND`` is written by hand from the issue's words, not from ``ticketing.workflow``:
"only the assignee (or their department head, or a supervisor) moves it through
接单, 到场, 完工; only the front desk (agent/supervisor) does 回访 and 归档"; 派单
and 取消 are the front desk's (night duty included: it takes the night's calls);
改派 also the department head's; the callback after a poor 回访 a supervisor's;
调整投诉等级 the front desk's while the ticket is open (受理 to 到场处理中, 退单, 重开).
The first test holds the table to it; the HTTP tests then prove the server
refuses every combination the hand list forbids (409 when the state does not
allow the action, else 403, a Chinese message, nothing changed) and lets every
allowed one through."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData

from tests.ticketing.workorder_world import JPEG, KINDS, World, world
from ticketing.workflow import ACTIONS, ASSIGNEE, DEPARTMENT_HEAD, STATES, may

__all__ = ["world"]

FRONT_DESK = {"agent", "night_duty", "supervisor", "admin"}
DAY_DESK = {"agent", "supervisor", "admin"}
DOERS = {"assignee", "head", "supervisor", "admin"}
SUPERVISORS = {"supervisor", "admin"}
OPEN = {"new", "dispatched", "accepted", "in_progress", "returned", "reopened"}
HAND: dict[str, tuple[set[str], set[str]]] = {
    # action: (the states it starts from, who may do it)
    "dispatch": ({"new", "returned", "reopened"}, FRONT_DESK),
    "reassign": ({"dispatched", "accepted"}, FRONT_DESK | {"head"}),
    "return": ({"dispatched", "accepted"}, DOERS),
    "accept": ({"dispatched"}, DOERS),
    "arrive": ({"accepted"}, DOERS),
    "add_photo": ({"accepted", "in_progress"}, DOERS),
    "complete": ({"in_progress"}, DOERS),
    "follow_up": ({"resolved"}, DAY_DESK),
    "callback_done": ({"followed_up"}, SUPERVISORS),
    "archive": ({"followed_up"}, DAY_DESK),
    "reopen": ({"resolved", "followed_up", "closed"}, DAY_DESK),
    "cancel": ({"new", "dispatched", "returned", "reopened"}, FRONT_DESK),
    "grade": (OPEN, FRONT_DESK),
}
# Where each allowed action leads (a resolved 回访 with a good score: 已回访).
LEADS_TO = {"dispatch": "dispatched", "reassign": "dispatched", "return": "returned",
            "accept": "accepted", "arrive": "in_progress", "complete": "resolved",
            "follow_up": "followed_up", "archive": "closed", "reopen": "reopened",
            "cancel": "cancelled"}
# The issue's own examples of what must be refused.
SPOT_REFUSALS = [
    ("resolved", "follow_up", "assignee"),  # "an engineer can mark it 已回访"
    ("resolved", "follow_up", "head"),
    ("resolved", "follow_up", "engineer"),
    ("followed_up", "archive", "assignee"),
    ("dispatched", "accept", "engineer"),  # not theirs
    ("dispatched", "accept", "agent"),
    ("in_progress", "complete", "night_duty"),
    ("new", "accept", "assignee"),  # 派单 first
    ("in_progress", "follow_up", "agent"),  # 完工 first
    ("followed_up", "callback_done", "agent"),
    ("accepted", "grade", "assignee"),  # the engineer does not grade the complaint
    ("new", "grade", "head"),
    ("resolved", "grade", "supervisor"),  # 完工: the grade is settled
    ("closed", "grade", "agent"),
]
KIND_ROLE = {"agent": "agent", "night_duty": "night_duty", "engineer": "engineer",
             "assignee": "engineer", "head": "engineer", "supervisor": "supervisor",
             "admin": "admin"}
KIND_RELATIONS = {"assignee": frozenset({ASSIGNEE}), "head": frozenset({DEPARTMENT_HEAD})}


def allowed_by_hand(state: str, action: str, kind: str) -> bool:
    states, who = HAND[action]
    return state in states and kind in who


def allowed_by_table(state: str, action: str, kind: str) -> bool:
    a = ACTIONS[action]
    return state in a.sources and may(a, KIND_ROLE[kind],
                                      KIND_RELATIONS.get(kind, frozenset()))


ALL = [(s, a, k) for s in STATES for a in ACTIONS for k in KINDS]


def test_the_table_says_what_the_issue_says() -> None:
    assert set(HAND) == set(ACTIONS)
    differ = [c for c in ALL if allowed_by_hand(*c) != allowed_by_table(*c)]
    assert differ == []
    for case in SPOT_REFUSALS:
        assert not allowed_by_hand(*case) and not allowed_by_table(*case), case
    assert sum(allowed_by_hand(*c) for c in ALL) > 60  # the matrix is not empty


def body_for(w: World, action: str) -> dict[str, Any]:
    """A valid body: a refusal must never hinge on bad input."""
    return {"dispatch": {"assignee_id": w.users["assignee"]},
            "reassign": {"assignee_id": w.users["head"]},
            "return": {"reason": "不属于本部门"}, "complete": {"note": "已修复"},
            "follow_up": {"score": 5, "resolved": True}, "callback_done": {"note": "已回电"},
            "reopen": {"note": "业主说又漏了"}, "cancel": {"note": "重复报修"},
            "grade": {"complaint_grade": "important", "reason": "业主第二次投诉"}}.get(action, {})


async def attempt(w: World, ticket_id: int, action: str, kind: str) -> tuple[int, Any]:
    if action == "add_photo":
        form = FormData()
        form.add_field("photo", JPEG, filename="p.jpg", content_type="image/jpeg")
        return await w.call("POST", f"/api/tickets/{ticket_id}/photos", kind=kind, data=form)
    return await w.act(ticket_id, kind, action, **body_for(w, action))


@pytest.mark.parametrize("state", list(STATES))
async def test_every_forbidden_action_by_every_kind_is_refused(world: World, state: str
                                                                ) -> None:
    w = world
    tid = (await w.new_ticket())["id"]
    await w.force(tid, state, callback=state == "followed_up")
    _, before = await w.call("GET", f"/api/tickets/{tid}", kind="supervisor")
    refused = 0
    for action in ACTIONS:
        for kind in KINDS:
            if allowed_by_hand(state, action, kind):
                continue
            status, err = await attempt(w, tid, action, kind)
            expected = 409 if state not in HAND[action][0] else 403
            assert status == expected, (state, action, kind, status, err)
            assert any(w in err["message"] for w in ("不能", "只有")), err
            assert not err["message"].isascii()
            refused += 1
    _, after = await w.call("GET", f"/api/tickets/{tid}", kind="supervisor")
    assert after["state"] == state and after["events"] == before["events"]
    assert after["photos"] == [] and refused >= len(ACTIONS) * len(KINDS) // 2


@pytest.mark.parametrize("state", list(STATES))
async def test_every_allowed_action_by_every_kind_goes_through(world: World, state: str
                                                               ) -> None:
    w = world
    cases = [(a, k) for a in ACTIONS for k in KINDS if allowed_by_hand(state, a, k)]
    for action, kind in cases:
        # 调整投诉等级 is for complaints (on another ticket it is a 400, see
        # test_complaint_grades); every other action is tried on a 报修.
        tid = (await w.new_ticket(**({"category": "complaint"} if action == "grade"
                                     else {})))["id"]
        await w.force(tid, state, callback=action == "callback_done")
        status, t = await attempt(w, tid, action, kind)
        assert status == 200, (state, action, kind, t)
        assert t["state"] == LEADS_TO.get(action, state), (state, action, kind)
        last = t["events"][-1]
        assert (last["action"], last["actor_role"]) == (action, KIND_ROLE[kind])
        if action == "grade":
            assert t["complaint_grade"] == "important"
            assert last["data"] == {"grade": "important", "previous_grade": "general"}
    if state in ("closed", "cancelled"):
        assert [a for a, _ in cases] == (["reopen"] * 3 if state == "closed" else [])
