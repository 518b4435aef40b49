"""Ring the person on call, then the next in the chain, then voicemail.

The router works on the caller's own channel through a ``Dialer``: the IVR's
AGI channel runs ``EXEC Dial(...)`` and reads ``DIALSTATUS``, which works the
same over FastAGI and AsyncAGI. Each ring is an ``oncall_attempts`` row under
the call's Linkedid, so the call log shows it with the call.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import Clock
from callcenter.errors import DomainError
from callcenter.logs import bind_call
from callcenter.oncall.models import OnCallAttempt
from callcenter.oncall.services import OnCallPerson, find_community, who_is_on_call
from ivr.channel import Channel
from ivr.errors import CallerHungUp

log = logging.getLogger(__name__)


class DialOutcome(enum.StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # CHANUNAVAIL, CONGESTION, an invalid target
    CALLER_GONE = "caller_gone"

    @classmethod
    def from_dialstatus(cls, status: str | None) -> DialOutcome:
        s = (status or "").strip().upper()
        if s == "ANSWER":
            return cls.ANSWERED
        if s == "NOANSWER":
            return cls.NO_ANSWER
        if s == "BUSY":
            return cls.BUSY
        if s == "CANCEL":
            return cls.CALLER_GONE
        return cls.FAILED


@dataclass(frozen=True, slots=True)
class DialResult:
    outcome: DialOutcome
    dial_status: str = ""


class Dialer(Protocol):
    """Connect the caller on ``channel`` to ``target`` (an Asterisk Dial string)."""

    async def dial(self, channel: Channel, target: str, timeout_s: int) -> DialResult: ...


class AgiDialer:
    """``EXEC Dial(target,timeout,options)`` then ``GET VARIABLE DIALSTATUS``.

    Dial returns when the bridged call ends, so an answered ring blocks for the
    length of the conversation; that is the caller's call, not a wait to bound.
    When the callee hangs up first Asterisk answers ``result=-1`` with the caller
    still there: ``AgiChannel.exec`` checks the channel, so the verdict is
    ``DIALSTATUS`` (ANSWER) and only a caller really gone is ``caller_gone``."""

    def __init__(self, options: str = "") -> None:
        self.options = options

    async def dial(self, channel: Channel, target: str, timeout_s: int) -> DialResult:
        args = f"{target},{int(timeout_s)}"
        if self.options:
            args += f",{self.options}"
        await channel.exec("Dial", args)
        status = await channel.get_variable("DIALSTATUS")
        return DialResult(DialOutcome.from_dialstatus(status), status or "")


@dataclass(frozen=True, slots=True)
class RouterConfig:
    ring_timeout_s: int = 20
    trunk: str = "PJSIP/{number}@trunk"
    extension_channel: str = "PJSIP/{extension}"
    prefer: str = "both"  # both (ring extension and mobile together), extension, mobile
    voicemail_box: str = ""  # e.g. "8000@default"; empty → no voicemail step
    voicemail_options: str = "u"


@dataclass(frozen=True, slots=True)
class RouteResult:
    outcome: str  # answered / voicemail / nobody / caller_gone
    answered_by: OnCallPerson | None
    attempts: int


class RouterError(DomainError):
    error_id = "oncall_route_failed"


def national_number(number: str) -> str:
    """Digits a mainland trunk dials: ``8613812345678`` → ``13812345678``."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        return digits[2:]
    if digits.startswith("86") and len(digits) > 11:
        return "0" + digits[2:]
    return digits


def dial_targets(person: OnCallPerson, config: RouterConfig) -> list[str]:
    """Asterisk channel strings that reach ``person`` in preference order."""
    ext = (config.extension_channel.format(extension=person.extension)
           if person.extension else None)
    mob = (config.trunk.format(number=national_number(person.mobile))
           if person.mobile else None)
    if config.prefer == "extension":
        order = [ext, mob]
    elif config.prefer == "mobile":
        order = [mob, ext]
    else:
        return ["&".join(t for t in (ext, mob) if t)] if (ext or mob) else []
    return [t for t in order if t]


async def call_log_id(call: Channel) -> str:
    """The call's Linkedid (the call log's key): from the AsyncAGI frame or the
    AGI environment, else asked of Asterisk (FastAGI does not send it); the
    channel's uniqueid when Asterisk does not say. A hang-up propagates."""
    linkedid = getattr(call, "linkedid", "") or call.env.get("agi_linkedid", "")
    if not linkedid:
        try:
            linkedid = await call.get_variable("CHANNEL(linkedid)") or ""
        except CallerHungUp:
            raise
        except Exception as exc:  # the attempts are still stored, under the uniqueid
            log.warning("linkedid of %s not read: %s", call.uniqueid, exc)
            linkedid = ""
    return linkedid or call.uniqueid or ""


class OnCallRouter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], dialer: Dialer,
                 clock: Clock, config: RouterConfig | None = None) -> None:
        self._sm = sessionmaker
        self._dialer = dialer
        self._clock = clock
        self.config = config or RouterConfig()

    async def route(self, call: Channel, community: str | int | None, role: str) -> RouteResult:
        """Ring the chain in order; voicemail (if configured) when nobody answers."""
        try:
            call_id = await call_log_id(call)
        except CallerHungUp:
            return RouteResult("caller_gone", None, 0)
        with bind_call(uniqueid=call.uniqueid, linkedid=call_id):
            return await self._route(call, community, role, call_id)

    async def _route(self, call: Channel, community: str | int | None, role: str,
                     call_id: str) -> RouteResult:
        async with self._sm() as session:
            comm = await find_community(session, community)
            answer = await who_is_on_call(session, comm, role, self._clock.now())
            comm_id = comm.id
        return await self.ring_people(call, answer.people, community_id=comm_id, role=role,
                                      call_id=call_id)

    async def ring_people(self, call: Channel, people: Sequence[OnCallPerson], *,
                          community_id: int | None, role: str,
                          call_id: str | None = None) -> RouteResult:
        """Ring ``people`` in order. Each attempt is stored under ``call_id`` (the
        call's Linkedid, which keys the call log; the channel's uniqueid if not given)."""
        key = call_id or call.uniqueid or ""
        attempts = 0
        for position, person in enumerate(people):
            for target in dial_targets(person, self.config):
                attempts += 1
                result = await self._ring(call, key, person, target, position, community_id, role)
                if result.outcome is DialOutcome.ANSWERED:
                    return RouteResult("answered", person, attempts)
                if result.outcome is DialOutcome.CALLER_GONE:
                    return RouteResult("caller_gone", None, attempts)
        if self.config.voicemail_box:
            try:
                await call.exec("VoiceMail",
                                f"{self.config.voicemail_box},{self.config.voicemail_options}")
            except CallerHungUp:
                return RouteResult("caller_gone", None, attempts)
            return RouteResult("voicemail", None, attempts)
        return RouteResult("nobody", None, attempts)

    async def _ring(self, call: Channel, call_id: str, person: OnCallPerson, target: str,
                    position: int, community_id: int | None, role: str) -> DialResult:
        async with self._sm() as session:
            row = OnCallAttempt(call_id=call_id, community_id=community_id,
                                role=role, position=position, user_id=person.user_id,
                                target=target, started_at=self._clock.now())
            session.add(row)
            await session.commit()
            row_id = row.id
        try:
            result = await self._dialer.dial(call, target, self.config.ring_timeout_s)
        except CallerHungUp:
            result = DialResult(DialOutcome.CALLER_GONE, "HANGUP")
        except Exception as exc:  # a broken transport must not stop the chain
            log.warning("dial %s failed: %s", target, exc)
            result = DialResult(DialOutcome.FAILED, type(exc).__name__)
        async with self._sm() as session:
            stored = await session.get(OnCallAttempt, row_id)
            if stored is not None:
                stored.ended_at = self._clock.now()
                stored.outcome = result.outcome.value
                stored.dial_status = result.dial_status[:32]
                await session.commit()
        return result
