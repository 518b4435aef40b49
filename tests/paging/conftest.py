"""Test doubles for paging: a scripted phone network (Originator) whose answered
calls run the real page-call script over a scripted AGI channel."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import ManualClock
from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.oncall.services import ChainSpec, ShiftInput, create_schedule
from callcenter.paging.originate import (
    OriginateOutcome,
    OriginateStatus,
    PageCallRegistry,
)
from callcenter.paging.page_call import PageCallConfig, PageCallHandler
from callcenter.paging.services import PagingConfig, PagingService
from callcenter.paging.worker import EscalationWorker, WorkerConfig
from ivr.agi import AgiChannel, AgiResult, parse_agi_result


class ScriptedAgiChannel(AgiChannel):
    """A callee's phone as AGI sees it. ``digit`` is pressed at the menu
    prompt (None: silence); ``hangup_on`` hangs up when that command starts."""

    def __init__(self, variables: Mapping[str, str], *, digit: str | None,
                 hangup_on: str | None = None, press_at: str = "paging-menu") -> None:
        self.env = {"agi_uniqueid": "1700000000.1", "agi_callerid": "4000"}
        self.variables = dict(variables)
        self.digit = digit
        self.hangup_on = hangup_on
        self.press_at = press_at
        self.commands: list[str] = []
        self.hung_up = False

    async def send_command(self, command: str) -> AgiResult:
        self.commands.append(command)
        if self.hung_up or (self.hangup_on and self.hangup_on in command):
            self.hung_up = True
            return parse_agi_result("HANGUP")
        if command.startswith("GET VARIABLE "):
            name = command.split()[2]
            if name in self.variables:
                return parse_agi_result(f"200 result=1 ({self.variables[name]})")
            return parse_agi_result("200 result=0")
        if (command.startswith(("STREAM FILE", "SAY ")) and self.press_at in command
                and self.digit):
            return parse_agi_result(f"200 result={ord(self.digit)} endpos=8000")
        if command.startswith("WAIT FOR DIGIT"):
            return parse_agi_result("200 result=0")
        if command.startswith("HANGUP"):
            self.hung_up = True
            return parse_agi_result("200 result=1")
        return parse_agi_result("200 result=0 endpos=16000")


@dataclass
class Behaviour:
    """What a phone does when paged: ``answer`` (then press ``digit``), or
    ``no_answer`` / ``busy`` / ``off`` (the Originate fails)."""

    kind: str
    digit: str | None = None
    hangup_on: str | None = None
    press_at: str = "paging-menu"


def answer(digit: str | None, hangup_on: str | None = None,
           press_at: str = "paging-menu") -> Behaviour:
    return Behaviour("answer", digit, hangup_on, press_at)


NO_ANSWER = Behaviour("no_answer")
BUSY = Behaviour("busy")
OFF = Behaviour("off")


@dataclass
class Dial:
    channel: str
    variables: dict[str, str]
    timeout: float


class ScriptedOriginator:
    """Plays each target's behaviours in order (then ``default``)."""

    def __init__(self, script: Mapping[str, list[Behaviour]] | None = None, *,
                 default: Behaviour = NO_ANSWER, dial_log: list[Dial] | None = None) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default
        self.dials: list[Dial] = dial_log if dial_log is not None else []
        self.handler: PageCallHandler | None = None
        self.channels: list[ScriptedAgiChannel] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.block: asyncio.Event | None = None  # set: originate hangs until the event
        self.entered = asyncio.Event()

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str], timeout: float,  # noqa: ASYNC109
                        *, community: str | None = None) -> OriginateOutcome:
        self.dials.append(Dial(channel, dict(variables), timeout))
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        queue = self.script.get(channel)
        behaviour = queue.pop(0) if queue else self.default
        if behaviour.kind == "no_answer":
            return OriginateOutcome(OriginateStatus.NO_ANSWER, "3")
        if behaviour.kind == "busy":
            return OriginateOutcome(OriginateStatus.BUSY, "5")
        if behaviour.kind == "off":
            return OriginateOutcome(OriginateStatus.FAILED, "8")
        assert self.handler is not None
        chan = ScriptedAgiChannel(variables, digit=behaviour.digit, hangup_on=behaviour.hangup_on,
                                  press_at=behaviour.press_at)
        self.channels.append(chan)
        # As in Asterisk: OriginateResponse first, then the dialplan starts AGI.
        task = asyncio.get_running_loop().create_task(self.handler.handle(chan))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return OriginateOutcome(OriginateStatus.ANSWERED, "4")


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[DomainEvent] = []
        bus.subscribe("incident.*", self._on)

    async def _on(self, event: DomainEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@dataclass
class Staff:
    community_id: int
    e1: int
    e2: int
    e3: int
    sup: int
    mgr: int
    ids: dict[str, int] = field(default_factory=dict)


MOBILES = {"e1": "8613800000001", "e2": "13800000002", "e3": "13800000003",
           "sup": "13900000009", "mgr": "13700000007"}


def target(name: str) -> str:
    return f"PJSIP/{MOBILES[name].removeprefix('86')}@trunk"


async def seed_staff(sm: async_sessionmaker[AsyncSession]) -> Staff:
    async with sm() as session:
        comm = Community(code="lakeside", name="湖畔花园", timezone="Asia/Shanghai",
                         hotline_numbers=[])
        session.add(comm)
        await session.flush()
        users = {}
        for name, role in (("e1", "engineer"), ("e2", "engineer"), ("e3", "engineer"),
                           ("sup", "supervisor"), ("mgr", "admin")):
            u = StaffUser(username=name, display_name=f"工程师{name}", role=role,
                          extension=None, mobile=MOBILES[name],
                          memberships=[StaffCommunity(community_id=comm.id)],
                          active=True, notify={})
            session.add(u)
            await session.flush()
            users[name] = u.id
        await session.commit()
    async with sm() as session:
        # 24-hour duty (00:00 to 00:00), e1 then e2 weekly from Monday 2026-11-23.
        await create_schedule(session, community="lakeside", role="engineer", shifts=[
            ShiftInput("全天", "00:00", "00:00", [users["e1"], users["e2"]], date(2026, 11, 23)),
        ], chain=[ChainSpec(0, "primary", "rotation", 0), ChainSpec(1, "backup", "rotation", 1),
                  ChainSpec(2, "supervisor", "user", user_id=users["sup"])])
    return Staff(comm.id, users["e1"], users["e2"], users["e3"], users["sup"], users["mgr"], users)


@dataclass
class Paging:
    clock: ManualClock
    bus: EventBus
    service: PagingService
    worker: EscalationWorker
    originator: ScriptedOriginator
    registry: PageCallRegistry
    events: EventLog

    async def close(self) -> None:
        await self.worker.stop()
        await self.bus.drain()


def make_paging(sm: async_sessionmaker[AsyncSession], *, clock: ManualClock | None = None,
                originator: ScriptedOriginator | None = None, notifiers: Any = (),
                worker_config: WorkerConfig | None = None, worker_id: str | None = None,
                config: PagingConfig | None = None, user_notifiers: Any = None) -> Paging:
    clock = clock or ManualClock()
    bus = EventBus()
    registry = PageCallRegistry()
    service = PagingService(sm, clock, bus, config)
    originator = originator or ScriptedOriginator()
    worker = EscalationWorker(sm, originator, clock, bus, registry, notifiers=notifiers,
                              user_notifiers=user_notifiers,
                              config=worker_config or WorkerConfig(answer_wait_s=60),
                              worker_id=worker_id)
    service.set_wakeup(worker.wake)
    originator.handler = PageCallHandler(sm, service, registry,
                                         PageCallConfig(digit_timeout_ms=100))
    return Paging(clock, bus, service, worker, originator, registry, EventLog(bus))


@pytest.fixture
async def staff(sessionmaker: async_sessionmaker[AsyncSession]) -> Staff:
    return await seed_staff(sessionmaker)
