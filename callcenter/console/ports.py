"""What the console asks of the telephony side, as protocols the lead wires to AMI.

* ``AgentStatusPort``: an agent went ready / paused (with a reason) / wrap-up;
  the AMI side sends ``QueuePause`` for the agent's interface on the front-desk
  queue (ready → ``Paused: false``; paused → ``Paused: true, Reason: <reason>``;
  wrap_up → ``Paused: true, Reason: wrap-up``).
  ``sign_out``: the agent is gone (logged out, session expired, disabled):
  ``QueueRemove``.
* ``OriginatePort``: click-to-call. Ring the agent's own phone first; when the
  agent answers, dial the owner (``Originate`` to ``PJSIP/<extension>`` with
  the owner's number as the dialled extension / Local channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

AGENT_STATES = ("ready", "paused", "wrap_up")
NOT_READY = "not_ready"  # signed in, not (yet) taking calls: the state at sign-in
PAUSE_REASONS = ("休息", "用餐", "培训", "会议", "其他")


@dataclass(frozen=True, slots=True)
class StaffRef:
    user_id: int
    username: str
    display_name: str
    role: str
    extension: str | None
    mobile: str | None


class AgentStatusPort(Protocol):
    async def set_status(self, agent: StaffRef, state: str, reason: str) -> None:
        """Apply the state on the PBX; raise a DomainError (e.g. Unavailable) on failure."""

    async def sign_out(self, agent: StaffRef) -> None:
        """The agent signed out (or their session expired, or they were disabled): take
        them out of the queue (``QueueRemove``) so callers do not ring an empty desk.
        Not being in the queue is no error."""


class OriginatePort(Protocol):
    async def click_to_call(self, agent: StaffRef, number: str, *,
                            community: str | None = None) -> str:
        """Ring ``agent.extension``, then ``number`` (E.164). Return an id for the attempt
        (the Originate ActionID). Raise a DomainError on failure."""


class RecordingAgentStatus:
    """Keeps the last state per agent in memory: the default when no PBX is wired,
    and a test double."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def set_status(self, agent: StaffRef, state: str, reason: str) -> None:
        self.calls.append((agent.username, state, reason))

    async def sign_out(self, agent: StaffRef) -> None:
        self.calls.append((agent.username, "signed_out", ""))
