"""Who may do what to a work order: the one table of actions.

Each action names the states it may start from, the state it leads to (None:
the ticket stays where it is), and who may do it: staff roles (any ticket of
their community) and *relations* to the ticket (its assignee, the head of the
department it is dispatched to). Everything that moves a ticket, the API, the
pages and the service, asks :func:`check` here; the lifecycle's
``TRANSITIONS`` are derived from this table.

    受理 new ─派单→ dispatched ─接单→ accepted ─到场→ in_progress ─完工→ resolved
      ─回访→ followed_up ─归档→ closed
    dispatched / accepted ─退单→ returned ─派单→ dispatched (改派: dispatched again)
    resolved / followed_up / closed ─重开→ reopened ─派单→ dispatched
    new / returned / reopened / dispatched ─取消→ cancelled
    any open state ─调整投诉等级→ (the same state; complaints only)

A state the action cannot start from is a 409 (whoever asks); a person the
action is not for is a 403. Both messages are Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.errors import Conflict, Forbidden

STATES: dict[str, str] = {
    "new": "新建",
    "dispatched": "已派单",
    "accepted": "已接单",
    "in_progress": "已到场处理中",
    "resolved": "已完工",
    "followed_up": "已回访",
    "closed": "已归档",
    "reopened": "已重开",
    "returned": "已退单",
    "cancelled": "已取消",
}
OPEN_STATES = frozenset({"new", "dispatched", "accepted", "in_progress", "reopened",
                         "returned"})

ASSIGNEE = "assignee"
DEPARTMENT_HEAD = "department_head"
RELATIONS = {ASSIGNEE: "处理人", DEPARTMENT_HEAD: "部门负责人"}

ROLE_LABELS = {"agent": "前台坐席", "night_duty": "夜班值班", "engineer": "工程人员",
               "supervisor": "主管", "admin": "管理员", "survey_call": "自动回访"}

FRONT_DESK = frozenset({"agent", "night_duty", "supervisor", "admin"})
"""Who takes calls and dispatches: the agents, night duty, supervisors (and admin)."""
FOLLOW_UP_DESK = frozenset({"agent", "supervisor", "admin"})
"""Who does 回访 and 归档: the day front desk (agent or supervisor)."""
SUPERVISORS = frozenset({"supervisor", "admin"})
SURVEY_CALL = "survey_call"
"""The automatic 回访 call (``callcenter.outbound``): it records the owner's keys as the
回访 and does nothing else."""
DOERS = frozenset({ASSIGNEE, DEPARTMENT_HEAD})


@dataclass(frozen=True, slots=True)
class Action:
    key: str
    label: str
    sources: frozenset[str]
    target: str | None  # None: the state does not change
    roles: frozenset[str]
    relations: frozenset[str] = frozenset()


ACTIONS: dict[str, Action] = {a.key: a for a in (
    Action("dispatch", "派单", frozenset({"new", "returned", "reopened"}), "dispatched",
           FRONT_DESK),
    Action("reassign", "改派", frozenset({"dispatched", "accepted"}), "dispatched",
           FRONT_DESK, frozenset({DEPARTMENT_HEAD})),
    Action("return", "退单", frozenset({"dispatched", "accepted"}), "returned",
           SUPERVISORS, DOERS),
    Action("accept", "接单", frozenset({"dispatched"}), "accepted", SUPERVISORS, DOERS),
    Action("arrive", "到场", frozenset({"accepted"}), "in_progress", SUPERVISORS, DOERS),
    Action("add_photo", "上传照片", frozenset({"accepted", "in_progress"}), None,
           SUPERVISORS, DOERS),
    Action("complete", "完工", frozenset({"in_progress"}), "resolved", SUPERVISORS, DOERS),
    Action("follow_up", "回访", frozenset({"resolved"}), "followed_up",
           FOLLOW_UP_DESK | {SURVEY_CALL}),
    Action("callback_done", "完成回访任务", frozenset({"followed_up"}), None, SUPERVISORS),
    Action("archive", "归档", frozenset({"followed_up"}), "closed", FOLLOW_UP_DESK),
    Action("reopen", "重开", frozenset({"resolved", "followed_up", "closed"}), "reopened",
           FOLLOW_UP_DESK),
    Action("cancel", "取消", frozenset({"new", "returned", "reopened", "dispatched"}),
           "cancelled", FRONT_DESK),
    # 投诉分级: a complaint's grade, changed with a reason while the ticket is open.
    Action("grade", "调整投诉等级", OPEN_STATES, None, FRONT_DESK),
)}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a staff user (``user_id`` None for a service token) in a role."""

    user_id: int | None
    username: str
    role: str


def allowed_actions(state: str) -> list[Action]:
    return [a for a in ACTIONS.values() if state in a.sources]


def may(action: Action, role: str, relations: frozenset[str]) -> bool:
    return role in action.roles or bool(action.relations & relations)


class ActionRefused(Forbidden):
    error_id = "action_forbidden"


class ActionNotNow(Conflict):
    error_id = "illegal_transition"


def check(action_key: str, state: str, role: str, relations: frozenset[str], *,
          ticket_id: int | None = None) -> Action:
    """The action, if it may start from ``state`` (else 409) and the actor may do it
    (else 403)."""
    action = ACTIONS[action_key]
    details: dict[str, object] = {"action": action_key, "from": state}
    if ticket_id is not None:
        details["ticket_id"] = ticket_id
    if state not in action.sources:
        raise ActionNotNow(
            f"工单当前为「{STATES.get(state, '未知状态')}」，不能{action.label}", details=details)
    if not may(action, role, relations):
        who = "、".join([ROLE_LABELS[r] for r in ROLE_LABELS if r in action.roles]
                       + [RELATIONS[r] for r in RELATIONS if r in action.relations])
        raise ActionRefused(f"只有{who}可以{action.label}", details=details)
    return action
