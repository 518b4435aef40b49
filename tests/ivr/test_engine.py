"""The IVR engine over a scripted channel: choices, retries, time modes,
fallbacks, hang-ups at every step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.clock import ManualClock
from ivr.channel import Channel
from ivr.engine import Announcement, CallerInfo, IvrEngine, RoomRef, VoicemailContext
from ivr.menus import DEFAULT_MENUS, MenuStore
from ivr.timeconditions import TimeModes
from tests.ivr.scripted import ScriptedChannel

SH = ZoneInfo("Asia/Shanghai")
OFFICE = datetime(2026, 11, 23, 10, 0, tzinfo=SH)      # a Monday
NIGHT = datetime(2026, 11, 23, 23, 0, tzinfo=SH)
NATIONAL_DAY = datetime(2026, 10, 1, 10, 0, tzinfo=SH)
SWAPPED_SATURDAY = datetime(2026, 10, 10, 10, 0, tzinfo=SH)  # 调休: a working Saturday


@dataclass
class Services:
    caller: CallerInfo = field(default_factory=CallerInfo)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    arrears: Decimal | None = Decimal("1280.40")
    voicemail_context: VoicemailContext | None = None

    def _note(self, *what: str) -> None:
        if what[0] in self.broken:
            raise RuntimeError(f"{what[0]} is broken")
        self.calls.append(what)

    async def identify_caller(self, number: str) -> CallerInfo:
        return self.caller

    notices: list[Announcement] = field(default_factory=list)

    async def outage_notices(self, community: str | None, caller: CallerInfo
                             ) -> list[Announcement]:
        if "outage_notices" in self.broken:
            raise RuntimeError("outage notices are broken")
        return self.notices

    queue_status: str | None = "CONTINUE"

    async def queue(self, channel: Channel, queue: str) -> str | None:
        self._note("queue", queue)
        return self.queue_status

    route_context: VoicemailContext | None = None

    async def route_oncall(self, channel: Channel, community: str | None, role: str,
                           context: VoicemailContext | None = None) -> str:
        self._note("route_oncall", role)
        self.route_context = context
        return "answered"

    async def voicemail(self, channel: Channel, mailbox: str,
                        context: VoicemailContext | None = None) -> None:
        self._note("voicemail", mailbox)
        self.voicemail_context = context

    async def emergency(self, channel: Channel, *, community: str | None, category: str,
                        caller: str, room: RoomRef | None, call_id: str) -> None:
        self._note("emergency", category, room.label if room else "")

    async def transfer(self, channel: Channel, extension: str) -> None:
        self._note("transfer", extension)

    async def ticket_status(self, digits: str) -> str | None:
        self._note("ticket_status", digits)
        return "in_progress" if digits == "202611220001" else None

    async def fee_balance(self, room_id: int) -> Decimal | None:
        self._note("fee_balance", str(room_id))
        return self.arrears

    async def find_rooms(self, community: str | None, building: str, room: str,
                         unit: str | None = None) -> list[RoomRef]:
        """Building 3 has one room of each number; building 5 two units of 1201."""
        self._note("find_rooms", building, room, *([unit] if unit is not None else []))
        if building == "3":
            return [RoomRef(7, f"{building}栋{room}室")]
        if building == "5" and room == "1201":
            both = [RoomRef(51, "5栋1单元1201室"), RoomRef(52, "5栋2单元1201室")]
            return both if unit is None else [r for r in both if r.label[2] == unit]
        return []

    async def record_choice(self, call_id: str, label: str) -> None:
        self.choices.append(label)


def _engine(services: Services, when: datetime) -> IvrEngine:
    return IvrEngine(MenuStore(), services, TimeModes(), clock=ManualClock(when))


OWNER = CallerInfo("王建国", (RoomRef(1, "湖畔花园3栋2单元1201室"),))
TWO_ROOMS = CallerInfo("王建国", (RoomRef(1, "3栋1201室"), RoomRef(2, "B栋301室")))


async def test_known_owner_reports_a_water_repair_in_office_hours() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1", "1"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.calls == [("queue", "frontdesk")]
    assert s.choices == ["报修", "水电"]
    assert ch.played()[0] == "welcome-owner" and "main-office" in ch.played()


async def test_a_key_pressed_during_the_greeting_chooses_in_the_top_menu() -> None:
    """Regular callers press 1 while the greeting plays: it counts, the top menu's
    prompt is skipped, and the greeting is interruptible by the top menu's keys only."""
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1"], typeahead="1")
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.choices == ["报修", "水电"] and s.calls == [("queue", "frontdesk")]
    assert "main-office" not in ch.played()
    welcome = next(c for c in ch.commands if c.startswith("STREAM FILE welcome-owner"))
    top_keys = "".join(MenuStore().current().entry_menu("office").options)
    assert welcome == f'STREAM FILE welcome-owner "{top_keys}"'


async def test_unknown_caller_hears_the_plain_greeting() -> None:
    s = Services()
    ch = ScriptedChannel(["0"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ch.played()[0] == "welcome" and s.calls == [("queue", "frontdesk")]


@pytest.mark.parametrize(("when", "menu"), [(NATIONAL_DAY, "main-holiday"), (NIGHT, "main-night"),
                                            (SWAPPED_SATURDAY, "main-office")])
async def test_the_top_menu_follows_the_time_mode(when: datetime, menu: str) -> None:
    ch = ScriptedChannel(["1"])
    s = Services(caller=OWNER)
    await _engine(s, when).run(ch, call_id="c1")
    assert menu in ch.played()


async def test_night_repair_goes_to_voicemail_after_the_instructions() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1"])
    await _engine(s, NIGHT).run(ch, call_id="c1")
    assert s.calls == [("voicemail", "8000")]
    assert ch.played()[-1] == "repair-leave-message"


async def test_invalid_keys_until_the_retries_run_out_reach_the_fallback() -> None:
    s = Services()
    ch = ScriptedChannel(["7", "8", "5"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ch.played().count("invalid") == 2
    assert s.calls == [("queue", "frontdesk")] and s.choices == ["输入错误转接"]


async def test_silence_until_the_timeouts_run_out_reaches_the_night_duty() -> None:
    s = Services()
    ch = ScriptedChannel([])
    await _engine(s, NIGHT).run(ch, call_id="c1")
    assert ch.played().count("no-input") == 2
    assert s.calls == [("route_oncall", "night_duty")]
    assert sum(c.startswith("WAIT FOR DIGIT 6000") for c in ch.commands) == 3


async def test_a_broken_action_sends_the_caller_to_the_safe_fallback_with_an_apology() -> None:
    s = Services(caller=OWNER, broken={"voicemail"})
    ch = ScriptedChannel(["1"])
    await _engine(s, NIGHT).run(ch, call_id="c1")
    assert "sorry-system" in ch.played()
    assert s.calls == [("route_oncall", "night_duty")]


async def test_if_even_the_fallback_fails_the_caller_is_hung_up_politely() -> None:
    s = Services(caller=OWNER, broken={"voicemail", "route_oncall"})
    ch = ScriptedChannel(["1"])
    await _engine(s, NIGHT).run(ch, call_id="c1")
    assert ch.played()[-1] == "goodbye" and ch.commands[-1] == "HANGUP"


@pytest.mark.parametrize(("keys", "choices"), [
    (["hangup"], []),                      # during the main menu
    (["1", "hangup"], ["报修"]),           # during the repair menu
    (["4", "hangup"], ["工单查询"]),       # while keying a ticket number
    (["3", "hangup"], ["物业费"]),         # unknown caller keying a building
    (["7", "hangup"], []),                 # after an invalid key
])
async def test_hanging_up_at_any_step_ends_cleanly(keys: list[str], choices: list[str]) -> None:
    s = Services()
    ch = ScriptedChannel(keys)
    before = asyncio.all_tasks()
    await _engine(s, OFFICE).run(ch, call_id="c1")
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before
    assert s.choices == choices
    assert s.calls == []                    # nothing acted on for a caller who left
    assert "sorry-system" not in ch.played()


async def test_fee_balance_says_the_arrears_of_the_only_room() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["3"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("fee_balance", "1") in s.calls
    assert "money/jiao" in ch.played()  # 1280.40 to the fen: tests/ivr/test_money.py
    assert s.choices == ["物业费", "湖畔花园3栋2单元1201室"]


async def test_an_owner_of_two_rooms_chooses_one() -> None:
    s = Services(caller=TWO_ROOMS, arrears=Decimal("0"))
    ch = ScriptedChannel(["3", "2"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("fee_balance", "2") in s.calls and "fee-none" in ch.played()


async def test_an_unknown_caller_keys_in_building_and_room() -> None:
    s = Services()
    ch = ScriptedChannel(["3", "3", "1201"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("find_rooms", "3", "1201") in s.calls and ("fee_balance", "7") in s.calls
    assert not any(c.startswith("GET DATA enter-unit") for c in ch.commands)


async def test_an_unknown_caller_is_asked_the_unit_when_the_number_repeats() -> None:
    s = Services()
    ch = ScriptedChannel(["3", "5", "1201", "2"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("find_rooms", "5", "1201", "2") in s.calls and ("fee_balance", "52") in s.calls
    assert any(c.startswith("GET DATA enter-unit") for c in ch.commands)


async def test_a_wrong_unit_is_room_not_found() -> None:
    s = Services()
    ch = ScriptedChannel(["3", "5", "1201", "7"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert not any(c[0] == "fee_balance" for c in s.calls)
    assert "room-not-found" in ch.played()


async def test_ticket_status_is_read_back() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["4", "202611220001"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert "ticket-state-in_progress" in ch.played()
    ch = ScriptedChannel(["4", "999"])
    await _engine(s, OFFICE).run(ch, call_id="c2")
    assert "ticket-not-found" in ch.played()


async def test_emergency_opens_an_incident_with_the_callers_room() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["9"])
    await _engine(s, NIGHT).run(ch, call_id="c1")
    assert s.calls == [("emergency", "other", "湖畔花园3栋2单元1201室")]
    assert "emergency-connecting" in ch.played()


SUNDAY = datetime(2026, 11, 22, 10, 0, tzinfo=SH)


async def test_a_weekend_call_hears_the_weekend_menu_and_a_water_leak_rings_the_engineer() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1", "1"])
    await _engine(s, SUNDAY).run(ch, call_id="c1")
    assert "main-weekend" in ch.played()
    assert s.calls == [("route_oncall", "engineer")] and s.choices == ["报修", "水电"]


async def test_a_missing_sound_file_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1", "1"], missing={"welcome-owner", "main-office"})
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.calls == [("queue", "frontdesk")]       # the call went on
    assert "sorry-system" not in ch.played()
    assert "could not be played" in caplog.text


async def test_log_lines_carry_the_calls_uniqueid_and_linkedid() -> None:
    import structlog

    seen: list[dict[str, object]] = []

    class Spy(Services):
        async def identify_caller(self, number: str) -> CallerInfo:
            seen.append(structlog.contextvars.get_contextvars())
            return OWNER

    ch = ScriptedChannel(["0"], linkedid="1700000000.0")
    await _engine(Spy(), OFFICE).run(ch, call_id="c1")
    assert seen[0]["uniqueid"] == "1700000000.1" and seen[0]["linkedid"] == "1700000000.0"
    assert "linkedid" not in structlog.contextvars.get_contextvars()  # unbound after the call


async def test_the_voicemail_gets_the_readable_path_and_the_room() -> None:
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["1", "4"])
    await _engine(s, OFFICE).run(ch, call_id="c9")
    ctx = s.voicemail_context
    assert ctx is not None and ctx.path_text == "报修 → 其他"
    assert ctx.room == OWNER.rooms[0] and ctx.call_id == "c9"


async def test_failing_time_conditions_run_the_night_menus() -> None:
    class Broken:
        def mode_for(self, community: str | None, now: datetime) -> str:
            raise RuntimeError("holiday table unavailable")

    s = Services(caller=OWNER)
    ch = ScriptedChannel(["0"])
    await IvrEngine(MenuStore(), s, Broken(), clock=ManualClock(OFFICE)).run(ch, call_id="c1")
    assert "main-night" in ch.played() and s.calls == [("route_oncall", "night_duty")]


async def test_menus_that_cannot_load_still_reach_the_duty_person(tmp_path: Path) -> None:
    bad = tmp_path / "menus.toml"
    bad.write_text("[menus\n", encoding="utf-8")
    s = Services(caller=OWNER)
    ch = ScriptedChannel([])
    await IvrEngine(MenuStore(bad), s, TimeModes(), clock=ManualClock(OFFICE)).run(ch, call_id="c1")
    assert ch.played() == ["sorry-system"] and s.calls == [("route_oncall", "night_duty")]


async def test_a_failing_call_log_does_not_disturb_the_caller() -> None:
    class NoLog(Services):
        async def record_choice(self, call_id: str, label: str) -> None:
            raise RuntimeError("database is locked")

    s = NoLog(caller=OWNER)
    ch = ScriptedChannel(["1", "1"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert s.calls == [("queue", "frontdesk")] and "sorry-system" not in ch.played()


async def test_a_call_finishes_on_the_menus_it_started_with(tmp_path: Path) -> None:
    path = tmp_path / "menus.toml"
    text = DEFAULT_MENUS.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    store = MenuStore(path)
    store.current()

    class ReloadMidCall(Services):
        async def record_choice(self, call_id: str, label: str) -> None:
            await super().record_choice(call_id, label)
            if label == "报修":  # an operator edits the repair menu while the caller is in it
                path.write_text(text.replace('"1" = { label = "水电", action = "queue", queue = "frontdesk" }',
                                             '"1" = { label = "水电", action = "transfer", extension = "8001" }'),
                                encoding="utf-8")
                store.reload()

    s = ReloadMidCall(caller=OWNER)
    await IvrEngine(store, s, TimeModes(), clock=ManualClock(OFFICE)).run(
        ScriptedChannel(["1", "1"]), call_id="c1")
    assert s.calls == [("queue", "frontdesk")]          # the old version, to the end
    s.calls.clear()
    await IvrEngine(store, s, TimeModes(), clock=ManualClock(OFFICE)).run(
        ScriptedChannel(["1", "1"]), call_id="c2")
    assert s.calls == [("transfer", "8001")]            # the next call, the new one


@pytest.mark.parametrize("status", ["TIMEOUT", "JOINEMPTY", "LEAVEEMPTY", "FULL"])
async def test_a_queue_nobody_answers_ends_in_a_message_not_a_hang_up(status: str) -> None:
    """Queue() returns with QUEUESTATUS TIMEOUT (and the like) when no agent picked up:
    the caller hears why and leaves a message in the repair-intake mailbox."""
    s = Services(caller=OWNER, queue_status=status)
    ch = ScriptedChannel(["2"])  # 投诉 → front desk
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("queue", "frontdesk") in s.calls and ("voicemail", "") in s.calls
    assert "queue-no-answer" in ch.played()
    assert s.choices[-1] == "无人接听留言"
    assert s.voicemail_context is not None and s.voicemail_context.path[-1] == "无人接听留言"


@pytest.mark.parametrize("status", ["CONTINUE", None])
async def test_a_queue_call_that_was_answered_is_not_sent_to_voicemail(status: str | None) -> None:
    s = Services(caller=OWNER, queue_status=status)
    ch = ScriptedChannel(["2"])
    await _engine(s, OFFICE).run(ch, call_id="c1")
    assert ("queue", "frontdesk") in s.calls
    assert not any(c[0] == "voicemail" for c in s.calls)


async def test_routing_to_the_duty_person_carries_the_call_for_a_message() -> None:
    """If nobody on call answers, the router takes a message: it must know the room
    and the path as a message left from the menu does."""
    s = Services(caller=OWNER)
    ch = ScriptedChannel(["0"])
    await _engine(s, NIGHT).run(ch, call_id="c7")
    assert s.route_context is not None
    assert s.route_context.call_id == "c7" and s.route_context.path == ("值班人员",)
    assert s.route_context.room == OWNER.rooms[0]
