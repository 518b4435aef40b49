"""The escalation step table: policies, their snapshot, and what comes next.

``decide`` is a pure function from (policy, where we are, how the attempt
ended) to a typed result: ``NextAttempt`` (with its delay), ``Restart`` (the
chain is exhausted: start again from the top, alert supervisors) or ``Stop``.
The worker (``callcenter.paging.worker``) runs it against the database timers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from callcenter.paging.errors import InvalidPolicy

STEP_TARGETS = ("oncall", "backup", "supervisor", "user")
SECONDARY_CHANNELS = ("wecom", "dingtalk", "webhook", "email")
ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of the ladder.

    ``target``: ``oncall`` (primary on call for ``role``, by default the
    category's role), ``backup`` (second in that chain), ``supervisor`` (the
    chain's supervisor, else the community's supervisor staff), ``user`` (a
    named person, e.g. the project manager: ``user_id``).
    ``retries`` is how many more times the same person is tried."""

    target: str
    role: str | None = None
    user_id: int | None = None
    ring_timeout_s: int = 30
    retries: int = 1
    retry_wait_s: int = 0
    wait_s: int = 0
    channels: tuple[str, ...] = ("phone",)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """What an incident carries: the policy as it was when the incident opened."""

    steps: tuple[Step, ...]
    max_rounds: int = 3
    restart_wait_s: int = 60
    role: str = "engineer"  # the on-call role for the category
    policy_id: int | None = None
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "name": self.name,
            "role": self.role,
            "max_rounds": self.max_rounds,
            "restart_wait_s": self.restart_wait_s,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicySnapshot:
        return cls(
            steps=tuple(parse_step(s, i) for i, s in enumerate(data.get("steps") or [])),
            max_rounds=int(data.get("max_rounds", 3)),
            restart_wait_s=int(data.get("restart_wait_s", 60)),
            role=str(data.get("role") or "engineer"),
            policy_id=data.get("policy_id"),
            name=str(data.get("name") or ""),
        )


DEFAULT_STEPS: tuple[Step, ...] = (
    Step("oncall", ring_timeout_s=30, retries=1),
    Step("backup", ring_timeout_s=30, retries=1),
    Step("supervisor", ring_timeout_s=30, retries=1),
)


def _int(raw: Mapping[str, Any], key: str, default: int, where: str, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPolicy(f"{where}.{key}: expected an integer, got {value!r}",
                            field=f"{where}.{key}")
    if not lo <= value <= hi:
        raise InvalidPolicy(f"{where}.{key}: must be between {lo} and {hi}",
                            field=f"{where}.{key}")
    return value


def parse_step(raw: Any, index: int) -> Step:
    where = f"steps[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidPolicy(f"{where}: expected an object", field=where)
    unknown = set(raw) - {"target", "role", "user_id", "ring_timeout_s", "retries",
                          "retry_wait_s", "wait_s", "channels"}
    if unknown:
        raise InvalidPolicy(f"{where}: unknown keys {sorted(unknown)}", field=where)
    target = raw.get("target")
    if target == "manager":
        target = "user"
    if target not in STEP_TARGETS:
        raise InvalidPolicy(f"{where}.target: one of {', '.join(STEP_TARGETS)}",
                            field=f"{where}.target")
    user_id = raw.get("user_id")
    if target == "user" and not isinstance(user_id, int):
        raise InvalidPolicy(f"{where}.user_id: a user step names the person",
                            field=f"{where}.user_id")
    channels = raw.get("channels", ["phone"])
    if (not isinstance(channels, (list, tuple)) or not channels
            or any(c not in ("phone", *SECONDARY_CHANNELS) for c in channels)):
        raise InvalidPolicy(
            f"{where}.channels: a non-empty list of phone, {', '.join(SECONDARY_CHANNELS)}",
            field=f"{where}.channels")
    role = raw.get("role")
    if role is not None and not isinstance(role, str):
        raise InvalidPolicy(f"{where}.role: a staff role name", field=f"{where}.role")
    return Step(
        target=target,
        role=role,
        user_id=user_id if isinstance(user_id, int) else None,
        ring_timeout_s=_int(raw, "ring_timeout_s", 30, where, 5, 300),
        retries=_int(raw, "retries", 1, where, 0, 10),
        retry_wait_s=_int(raw, "retry_wait_s", 0, where, 0, 3600),
        wait_s=_int(raw, "wait_s", 0, where, 0, 3600),
        channels=tuple(str(c) for c in channels),
    )


def parse_steps(raw: Any) -> tuple[Step, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or not raw:
        raise InvalidPolicy("steps: a non-empty list", field="steps")
    return tuple(parse_step(s, i) for i, s in enumerate(raw))


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Position:
    round: int
    step: int
    try_no: int


@dataclass(frozen=True, slots=True)
class NextAttempt:
    at: Position
    delay_s: int


@dataclass(frozen=True, slots=True)
class Restart:
    at: Position
    delay_s: int


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str  # acknowledged / exhausted / closed
    alert: bool = field(default=False)


Decision = NextAttempt | Restart | Stop


def decide(policy: PolicySnapshot, pos: Position, outcome: str) -> Decision:
    """What follows an attempt at ``pos`` that ended with ``outcome``.

    Only ``accepted`` stops the page. Anything else (passed, no answer, busy,
    failed, silence, hang-up, unknown digit) retries the step while it has
    retries left, then moves on; past the last step the whole chain starts
    again (``Restart``) until ``max_rounds`` rounds have run (0 = no limit)."""
    if outcome == ACCEPTED:
        return Stop("acknowledged")
    if not policy.steps:
        return Stop("exhausted", alert=True)
    step = policy.steps[min(pos.step, len(policy.steps) - 1)]
    if pos.try_no < step.retries:
        return NextAttempt(Position(pos.round, pos.step, pos.try_no + 1), step.retry_wait_s)
    if pos.step + 1 < len(policy.steps):
        return NextAttempt(Position(pos.round, pos.step + 1, 0), step.wait_s)
    if policy.max_rounds and pos.round + 1 >= policy.max_rounds:
        return Stop("exhausted", alert=True)
    return Restart(Position(pos.round + 1, 0, 0), policy.restart_wait_s)
