"""Scripted parties: callers that dial in, phones that ring.

A ``Caller`` runs its ``script`` once its call is up: ``Wait(3)`` lets time
pass, ``Press("12")`` sends DTMF, ``Say(path)`` sets what the caller speaks
(recorded by RECORD FILE / VoiceMail), ``HangUp()`` ends the call. When the
script runs out the caller stays on the line until the other side hangs up.

A ``Phone`` is an endpoint the PBX can ring (an agent's extension, a
mobile): answer after N seconds, never answer, busy, unreachable, and what
to do once answered (press digits, hang up after a while)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class Press:
    digits: str
    gap: float = 0.25


@dataclass(frozen=True, slots=True)
class Say:
    """Audio the caller speaks: a WAV file (8 kHz 16-bit mono expected) and how long it lasts."""

    wav: Path | str | None = None
    seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Step = Wait | Press | Say | HangUp


@dataclass(slots=True)
class Caller:
    number: str = "13812345678"
    name: str = ""
    did: str = "4008001234"
    script: list[Step] = field(default_factory=list)
    #: where the trunk hands the call: None = the stand-in's hotline (IVR), or
    #: "queue-entry", "voicemail-deposit" (with ``exten`` the mailbox)...
    context: str | None = None
    exten: str | None = None
    ivr_transport: str | None = None  # "asyncagi" | "fastagi"; None = the stand-in's default
    fastagi_url: str | None = None


class Answer(Enum):
    ANSWER = "answer"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNREACHABLE = "unreachable"


@dataclass(slots=True)
class Phone:
    """An endpoint reachable by extension or number."""

    number: str
    name: str = ""
    behaviour: Answer = Answer.ANSWER
    answer_after: float = 1.0
    #: once answered: steps as for a caller (Press, Wait, HangUp)
    script: list[Step] = field(default_factory=list)
    #: who picks up, as Asterisk's AMD() judges it in an outbound context: "HUMAN",
    #: "MACHINE" (a voicemail greeting, a carrier's "暂时无法接通"), "NOTSURE"
    amd: str = "HUMAN"


def sim_script(variables: dict[str, str], exten: str) -> list[Step]:
    """The ``[caller-sim]`` context of the capture rig, as a script."""

    def num(key: str, default: float) -> float:
        try:
            return float(variables.get(key) or default)
        except ValueError:
            return default

    # caller-msg, the rig's default SIM_FILE, lasts about 6 s
    if exten == "vm":
        return [Wait(num("SIM_DELAY", 2)), Say(variables.get("SIM_FILE"), 6.0), Wait(1), HangUp()]
    if exten == "wait":
        return [Wait(num("SIM_DELAY", 20)), HangUp()]
    digits = variables.get("SIM_DIGITS") or "5"
    return [Wait(num("SIM_DELAY", 3)), Press(digits), Say(variables.get("SIM_FILE"), 6.0),
            Wait(num("SIM_TAIL", 2)), HangUp()]


def rig_script(variables: dict[str, str]) -> list[Step]:
    """The ``[rig-caller]`` context of captures 08-12: ``SIM_SCRIPT`` is steps split
    by ``|``: ``w<seconds>`` waits, ``d<digits>`` presses, ``h`` hangs up."""
    steps: list[Step] = []
    for step in (variables.get("SIM_SCRIPT") or "").split("|"):
        op, arg = step[:1], step[1:]
        if op == "w":
            try:
                steps.append(Wait(float(arg or 1)))
            except ValueError:
                continue
        elif op == "d" and arg:
            steps.append(Press(arg))
        elif op == "h":
            steps.append(HangUp())
    return steps
