"""The router rings the chain over the caller's own AGI channel."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.clock import ManualClock
from callcenter.oncall.models import OnCallAttempt
from callcenter.oncall.router import (
    AgiDialer,
    DialOutcome,
    OnCallRouter,
    RouterConfig,
    dial_targets,
    national_number,
)
from callcenter.oncall.services import OnCallPerson
from ivr.agi import AgiChannel, AgiResult, parse_agi_result
from tests.oncall.test_who_is_on_call import local, seed

SM = async_sessionmaker[AsyncSession]


class CallerChannel(AgiChannel):
    """The caller's channel: each Dial ends with the next scripted DIALSTATUS."""

    def __init__(self, statuses: list[str], hangup_after_dials: int | None = None) -> None:
        self.env = {"agi_uniqueid": "1700000100.5", "agi_callerid": "13911112222"}
        self.statuses = list(statuses)
        self.commands: list[str] = []
        self._status = ""
        self.hangup_after = hangup_after_dials

    async def send_command(self, command: str) -> AgiResult:
        self.commands.append(command)
        if command.startswith("EXEC Dial"):
            if self.hangup_after is not None and self.hangup_after <= 0:
                return parse_agi_result("HANGUP")
            if self.hangup_after is not None:
                self.hangup_after -= 1
            self._status = self.statuses.pop(0) if self.statuses else "NOANSWER"
            return parse_agi_result("200 result=0")
        if command == "GET VARIABLE DIALSTATUS":
            return parse_agi_result(f"200 result=1 ({self._status})")
        return parse_agi_result("200 result=0")


async def test_fails_over_from_primary_to_backup_on_no_answer(sessionmaker: SM) -> None:
    await seed(sessionmaker)
    clock = ManualClock(local(2026, 11, 23, 22))
    router = OnCallRouter(sessionmaker, AgiDialer(), clock,
                          RouterConfig(ring_timeout_s=15, voicemail_box="8000@default"))
    call = CallerChannel(["NOANSWER", "ANSWER"])
    result = await router.route(call, "lakeside", "night_duty")
    assert result.outcome == "answered" and result.answered_by is not None
    assert result.answered_by.name == "li" and result.attempts == 2
    dials = [c for c in call.commands if c.startswith("EXEC Dial")]
    # Extension and mobile ring together for each person, 15 s each.
    assert dials == ['EXEC Dial "PJSIP/802&PJSIP/13800000002@trunk,15"',
                     'EXEC Dial "PJSIP/803&PJSIP/13800000003@trunk,15"']
    async with sessionmaker() as s:
        rows = (await s.scalars(select(OnCallAttempt).order_by(OnCallAttempt.id))).all()
    assert [(r.position, r.outcome, r.dial_status) for r in rows] == [
        (0, "no_answer", "NOANSWER"), (1, "answered", "ANSWER")]
    assert all(r.call_id == "1700000100.5" and r.ended_at is not None for r in rows)


async def test_nobody_answers_goes_to_voicemail(sessionmaker: SM) -> None:
    await seed(sessionmaker)
    router = OnCallRouter(sessionmaker, AgiDialer(), ManualClock(local(2026, 11, 23, 22)),
                          RouterConfig(voicemail_box="8000@default"))
    call = CallerChannel(["NOANSWER", "BUSY", "CHANUNAVAIL"])
    result = await router.route(call, "lakeside", "night_duty")
    assert result.outcome == "voicemail" and result.attempts == 3
    assert call.commands[-1] == 'EXEC VoiceMail "8000@default,u"'
    async with sessionmaker() as s:
        rows = (await s.scalars(select(OnCallAttempt).order_by(OnCallAttempt.id))).all()
    assert [r.outcome for r in rows] == ["no_answer", "busy", "failed"]


async def test_caller_hanging_up_stops_the_chain(sessionmaker: SM) -> None:
    await seed(sessionmaker)
    router = OnCallRouter(sessionmaker, AgiDialer(), ManualClock(local(2026, 11, 23, 22)),
                          RouterConfig(voicemail_box="8000@default"))
    call = CallerChannel(["NOANSWER"], hangup_after_dials=1)
    result = await router.route(call, "lakeside", "night_duty")
    assert result.outcome == "caller_gone" and result.attempts == 2
    assert not any("VoiceMail" in c for c in call.commands)
    async with sessionmaker() as s:
        rows = (await s.scalars(select(OnCallAttempt).order_by(OnCallAttempt.id))).all()
    assert [r.outcome for r in rows] == ["no_answer", "caller_gone"]


def test_dial_targets_and_numbers() -> None:
    person = OnCallPerson(1, "张三", "primary", "801", "8613812345678")
    assert national_number("8613812345678") == "13812345678"
    assert national_number("+86 755 8888 1234") == "075588881234"
    assert dial_targets(person, RouterConfig(prefer="mobile")) == [
        "PJSIP/13812345678@trunk", "PJSIP/801"]
    assert dial_targets(person, RouterConfig(prefer="extension", extension_channel="SIP/{extension}")) == [
        "SIP/801", "PJSIP/13812345678@trunk"]
    assert dial_targets(OnCallPerson(2, "x", "backup", None, None), RouterConfig()) == []
    assert DialOutcome.from_dialstatus("CONGESTION") is DialOutcome.FAILED
    assert DialOutcome.from_dialstatus("CANCEL") is DialOutcome.CALLER_GONE
