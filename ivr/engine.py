"""The IVR engine: walks a caller through the menus over any AGI channel.

Everything the hotline does beyond prompts and keys (queues, on-call routing,
voicemail, incidents, tickets, fees) goes through ``IvrServices``, which the
composition root implements with the real domains. Any failure inside sends
the caller to the mode's safe fallback (apology, then front desk or duty
person); a caller who hangs up ends the session quietly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

import structlog

from ivr.channel import Channel
from ivr.errors import CallerHungUp
from ivr.menus import Action, Menu, MenuSet, MenuStore
from ivr.money import money_prompts, to_fen
from ivr.outages.prompts import PRESS_1, is_outage_prompt

log = logging.getLogger(__name__)

SORRY = "sorry-system"
MAX_DEPTH = 8
UNKNOWN_MODE = "night"
"""The mode a call runs in when the time conditions fail: its fallback is the
person on duty, who answers at any hour (the front desk may be empty)."""
LAST_RESORT = Action("route_oncall", MappingProxyType({"role": "night_duty"}), "值班人员")
"""Where a call goes when not even the menus could be loaded."""
NOTICE_WAIT_MS = 4000
"""After the notices and 按1仍需人工服务: how long a caller has to press 1."""
QUEUE_UNANSWERED = frozenset({"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL",
                              "LEAVEUNAVAIL"})
"""Asterisk's ``QUEUESTATUS`` when ``Queue()`` returns with nobody having answered:
the caller is offered the message box instead of being hung up on."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class TimeModeSource(Protocol):
    """``ivr.timeconditions.TimeModes`` / ``TimeConditions``, or the lead's own."""

    def mode_for(self, community: str | None, now: datetime) -> str: ...


@dataclass(frozen=True, slots=True)
class RoomRef:
    room_id: int
    label: str


@dataclass(frozen=True, slots=True)
class CallerInfo:
    name: str | None = None
    rooms: Sequence[RoomRef] = field(default_factory=tuple)

    @property
    def known(self) -> bool:
        return self.name is not None


@dataclass(frozen=True, slots=True)
class VoicemailContext:
    """What the IVR knows when a caller leaves a message, for the ticket made of it."""

    call_id: str
    caller_number: str
    caller_name: str | None
    room: RoomRef | None
    path: tuple[str, ...]

    @property
    def path_text(self) -> str:
        return " → ".join(self.path)


@dataclass(frozen=True, slots=True)
class Announcement:
    """A notice a caller hears right after the greeting (停水停电通知)."""

    prompt: str  # the sound file
    label: str  # its step on the call's IVR path: 停水通知


class IvrServices(Protocol):
    async def identify_caller(self, number: str) -> CallerInfo: ...
    async def outage_notices(self, community: str | None, caller: CallerInfo
                             ) -> Sequence[Announcement]:
        """The live notices covering the caller's rooms, and the community's notices
        for every caller (an unknown caller hears only these)."""
        ...
    async def queue(self, channel: Channel, queue: str) -> str | None:
        """Put the caller in the queue; returns ``QUEUESTATUS`` once ``Queue()`` returns."""
        ...
    async def route_oncall(self, channel: Channel, community: str | None, role: str,
                           context: VoicemailContext | None = None) -> str:
        """Ring the chain on call for ``role``; ``context`` travels with the message
        left when nobody answers."""
        ...
    async def voicemail(self, channel: Channel, mailbox: str,
                        context: VoicemailContext | None = None) -> None:
        """Leave a message in ``mailbox`` ("" = the site's repair-intake mailbox)."""
        ...
    async def emergency(self, channel: Channel, *, community: str | None, category: str,
                        caller: str, room: RoomRef | None, call_id: str) -> None: ...
    async def transfer(self, channel: Channel, extension: str) -> None: ...
    async def ticket_status(self, digits: str) -> str | None: ...
    async def fee_balance(self, room_id: int) -> Decimal | None: ...
    async def find_rooms(self, community: str | None, building: str, room: str,
                         unit: str | None = None) -> Sequence[RoomRef]:
        """Rooms with this building and number (and unit, if given); a few at most."""
        ...
    async def record_choice(self, call_id: str, label: str) -> None: ...


@dataclass
class _Call:
    channel: Channel
    call_id: str
    community: str | None
    menus: MenuSet | None = None
    mode: str = UNKNOWN_MODE
    caller: CallerInfo = field(default_factory=CallerInfo)
    path: list[str] = field(default_factory=list)

    @property
    def path_text(self) -> str:
        return " → ".join(self.path)


class IvrEngine:
    """Runs one hotline call per ``run()``.

    ``time_modes`` answers ``mode_for(community, now)`` with "office", "night",
    "weekend" or "holiday" (``ivr.timeconditions.TimeConditions``).
    """

    def __init__(self, store: MenuStore, services: IvrServices, time_modes: TimeModeSource, *,
                 clock: Clock) -> None:
        self.store = store
        self.services = services
        self.time_modes = time_modes
        self.clock = clock

    async def run(self, channel: Channel, *, call_id: str, community: str | None = None) -> None:
        ids = {"uniqueid": channel.uniqueid or call_id}
        linkedid = channel.env.get("agi_linkedid")
        if linkedid:
            ids["linkedid"] = linkedid
        outer = structlog.contextvars.get_contextvars()
        try:
            with structlog.contextvars.bound_contextvars(**ids):
                await self._run(_Call(channel, call_id, community))
        finally:
            # _run may bind the linkedid it learns from Asterisk: leave the context as found.
            if "linkedid" in outer:
                structlog.contextvars.bind_contextvars(linkedid=outer["linkedid"])
            else:
                structlog.contextvars.unbind_contextvars("linkedid")

    async def _run(self, call: _Call) -> None:
        channel = call.channel
        try:
            # The community's own menus, else the shared ones; kept to the end of the call.
            call.menus = self.store.current(call.community)
            try:
                call.mode = str(self.time_modes.mode_for(call.community, self.clock.now()))
            except Exception:
                log.exception("time conditions failed; running the %s menus", UNKNOWN_MODE)
            await channel.answer()
            if "agi_linkedid" not in channel.env:
                linkedid = await channel.get_variable("CHANNEL(linkedid)")
                if linkedid:
                    structlog.contextvars.bind_contextvars(linkedid=linkedid)
            call.caller = await self.services.identify_caller(channel.caller_number)
            # Never the caller's number: the call log has it, keyed by the linkedid.
            log.info("IVR call, %s caller, for %s, %s mode, menus v%d of %s",
                     "known" if call.caller.known else "unknown",
                     call.community or "-", call.mode, call.menus.version,
                     call.menus.community or "all communities")
            entry = call.menus.entry_menu(call.mode)
            # Callers who know the menu press their key during the greeting: it counts.
            typed = await self._play(call, "welcome-owner" if call.caller.known else "welcome",
                                     "".join(entry.options))
            notices = await self._notices(call)
            if notices:
                # The notice answers most calls of an outage: it plays even to a caller
                # who keyed during the greeting; 1 then reaches a person.
                typed = await self._hear_notices(call, notices, entry)
                if typed == "1":
                    await self._step(call, "转人工")
                    await self._act(call, self._fallback_action(call), 0)
                    log.info("IVR done: %s", call.path_text)
                    return
                if typed not in entry.options:
                    typed = None
            await self._menu(call, entry, depth=0, first=typed or None)
            log.info("IVR done: %s", call.path_text)
        except CallerHungUp:
            log.info("caller hung up after %s", call.path_text or "the greeting")
        except Exception:
            log.exception("IVR failed after %s; sending the caller to the safe fallback",
                          call.path_text or "the start")
            await self._safe_fallback(call)

    # ------------------------------------------------------------------ pieces
    async def _notices(self, call: _Call) -> Sequence[Announcement]:
        """The notices this caller hears; none when they cannot be read (the call goes on)."""
        try:
            return await self.services.outage_notices(call.community, call.caller)
        except CallerHungUp:
            raise
        except Exception:
            log.exception("outage notices could not be read; going on to the menu")
            return ()

    async def _hear_notices(self, call: _Call, notices: Sequence[Announcement],
                            entry: Menu) -> str | None:
        """Each notice, then 按1仍需人工服务; the key pressed (1: a person), if any."""
        keys = "1" + "".join(k for k in entry.options if k != "1")
        for notice in notices:
            await self._step(call, notice.label)
            digit = await self._play(call, notice.prompt, keys)
            if digit:
                return digit
        digit = await self._play(call, PRESS_1, keys)
        return digit or await call.channel.wait_for_digit(NOTICE_WAIT_MS)

    async def _play(self, call: _Call, prompt: str, escape: str = "") -> str | None:
        if call.menus is None or (prompt not in call.menus.prompts
                                  and not is_outage_prompt(prompt)):
            log.warning("prompt %r is not declared; skipped", prompt)
            return None
        return await call.channel.stream_file(prompt, escape)

    async def _choose(self, call: _Call, menu: Menu, first: str | None = None) -> str | None:
        if first:
            return first
        keys = "".join(menu.options)
        for prompt in menu.prompts:
            digit = await self._play(call, prompt, keys)
            if digit:
                return digit
        return await call.channel.wait_for_digit(int(menu.timeout_s * 1000))

    async def _menu(self, call: _Call, menu: Menu, depth: int, first: str | None = None) -> None:
        if depth > MAX_DEPTH:
            raise RuntimeError(f"menus nest deeper than {MAX_DEPTH} at {menu.name!r}")
        failures = 0
        while True:
            digit = await self._choose(call, menu, first)
            first = None
            action = menu.options.get(digit) if digit else None
            if action is not None:
                await self._step(call, action.label or digit or "")
                await self._act(call, action, depth)
                return
            failures += 1
            if failures > menu.max_retries:
                await self._step(call, "超时转接" if digit is None else "输入错误转接")
                await self._act(call, menu.fallback, depth)
                return
            retry_prompt = menu.timeout_prompt if digit is None else menu.invalid_prompt
            if retry_prompt:
                await self._play(call, retry_prompt)

    async def _step(self, call: _Call, label: str) -> None:
        call.path.append(label)
        try:
            await self.services.record_choice(call.call_id, label)
        except CallerHungUp:
            raise
        except Exception:
            # The call log misses a step; the caller must not notice.
            log.exception("could not record the IVR choice %r", label)

    async def _act(self, call: _Call, action: Action, depth: int) -> None:
        s, ch = self.services, call.channel
        match action.kind:
            case "menu":
                assert call.menus is not None
                await self._menu(call, call.menus.menus[action.arg("menu")], depth + 1)
            case "queue":
                status = await s.queue(ch, action.arg("queue"))
                if status in QUEUE_UNANSWERED:
                    # Nobody at the front desk picked up in time: never hang up on the caller.
                    log.info("queue %s not answered (%s): the caller leaves a message",
                             action.arg("queue"), status)
                    await self._step(call, "无人接听留言")
                    await self._play(call, "queue-no-answer")
                    await s.voicemail(ch, action.args.get("mailbox", ""), self._context(call))
            case "route_oncall":
                await s.route_oncall(ch, call.community, action.arg("role"), self._context(call))
            case "voicemail":
                if "prompt" in action.args:
                    await self._play(call, action.arg("prompt"))
                await s.voicemail(ch, action.arg("mailbox"), self._context(call))
            case "emergency":
                await self._play(call, "emergency-connecting")
                await s.emergency(ch, community=call.community, category=action.arg("category"),
                                  caller=ch.caller_number, room=self._known_room(call),
                                  call_id=call.call_id)
            case "transfer":
                await self._play(call, "transferring")
                await s.transfer(ch, action.arg("extension"))
            case "ticket_status":
                await self._ticket_status(call)
            case "fee_balance":
                await self._fee_balance(call)
            case "hangup":
                await self._play(call, "goodbye")
                await ch.hangup()

    async def _ticket_status(self, call: _Call) -> None:
        digits = await call.channel.get_data("enter-ticket", 8000, 16)
        state = await self.services.ticket_status(digits) if digits else None
        if state is None:
            await self._play(call, "ticket-not-found")
        else:
            prompt = f"ticket-state-{state}"
            known = call.menus is not None and prompt in call.menus.prompts
            await self._play(call, prompt if known else "ticket-state-other")
        await self._play(call, "goodbye")
        await call.channel.hangup()

    def _context(self, call: _Call) -> VoicemailContext:
        return VoicemailContext(call.call_id, call.channel.caller_number, call.caller.name,
                                self._known_room(call), tuple(call.path))

    @staticmethod
    def _known_room(call: _Call) -> RoomRef | None:
        """The room a call is about without asking: the caller's only room."""
        return call.caller.rooms[0] if len(call.caller.rooms) == 1 else None

    async def _room(self, call: _Call) -> RoomRef | None:
        """The caller's room: theirs if one, a choice if several, keyed in if unknown."""
        rooms = list(call.caller.rooms)
        if len(rooms) == 1:
            return rooms[0]
        if len(rooms) > 1:
            await self._play(call, "choose-room")
            for i, _room in enumerate(rooms[:9], start=1):
                await call.channel.say_digits(str(i))
            await self._play(call, "room-option")
            digit = await call.channel.wait_for_digit(6000)
            if digit and digit.isdigit() and 1 <= int(digit) <= min(len(rooms), 9):
                return rooms[int(digit) - 1]
            return None
        building = await call.channel.get_data("enter-building", 8000, 4)
        number = await call.channel.get_data("enter-room", 8000, 6) if building else ""
        if not building or not number:
            return None
        found = await self.services.find_rooms(call.community, building, number)
        if len(found) > 1:
            # Room numbers repeat in each unit of a building (3栋1单元1201, 3栋2单元1201).
            unit = await call.channel.get_data("enter-unit", 8000, 3)
            found = (await self.services.find_rooms(call.community, building, number, unit)
                     if unit else [])
        return found[0] if len(found) == 1 else None

    async def _fee_balance(self, call: _Call) -> None:
        room = await self._room(call)
        if room is None:
            await self._play(call, "room-not-found")
            await self._act(call, self._fallback_action(call), 0)
            return
        await self._step(call, room.label)
        arrears = await self.services.fee_balance(room.room_id)
        if arrears is None or to_fen(arrears) <= 0:
            await self._play(call, "fee-none")
        else:
            # To the fen, as Chinese speaks money (一千二百八十元五角): one
            # sound file per character; SAY NUMBER has no 元, 角 or 分.
            await self._play(call, "fee-arrears")
            for sound in money_prompts(arrears):
                await call.channel.stream_file(sound)
        await self._play(call, "goodbye")
        await call.channel.hangup()

    async def _safe_fallback(self, call: _Call) -> None:
        """Apologise and hand the caller to a person. If even that fails, hang up
        politely rather than leave the caller in silence."""
        try:
            if call.menus is None:
                await call.channel.stream_file(SORRY)  # not even the menus: play it blind
            else:
                await self._play(call, SORRY)
            await self._step(call, "系统故障转接")
            await self._act(call, self._fallback_action(call), 0)
        except CallerHungUp:
            return
        except Exception:
            log.exception("the safe fallback failed too; hanging up")
            try:
                await self._play(call, "goodbye")
                await call.channel.hangup()
            except Exception:
                log.debug("could not hang up either", exc_info=True)

    @staticmethod
    def _fallback_action(call: _Call) -> Action:
        if call.menus is None:
            return LAST_RESORT
        return call.menus.safe_fallback.get(call.mode, LAST_RESORT)
