"""催缴 fee reminders end to end: a campaign built from the directory's arrears, the
owners called through the stand-in, the amount read to the fen, 0 for a person, the
results per owner for the finance office, and nobody called twice in the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from callcenter.directory.models import FeeAccount
from callcenter.outbound.fees import FeeRules, build_campaign, outcome_rows
from callcenter.simulator import HangUp, Phone, Press, Wait
from ivr.money import money_prompts
from tests.ha.pair import until
from tests.outbound.world import Outbound, outbound
from tests.ticketing.workorder_world import world

__all__ = ["outbound", "world"]

WANG, LI = "13912345678", "13800000002"


async def _arrears(o: Outbound) -> None:
    seeded, long_ago = o.w.seeded, datetime(2026, 9, 1, tzinfo=UTC)
    async with o.w.sm() as s:
        s.add_all([
            FeeAccount(room_id=seeded.room_3_2_1201, arrears=Decimal("1234.50"),
                       last_payment_at=long_ago),
            FeeAccount(room_id=seeded.room_5_1_801, arrears=Decimal("300")),
            FeeAccount(room_id=seeded.room_7_1_502, arrears=Decimal("50.05")),
            # another community's owner: never in 湖畔花园's campaign
            FeeAccount(room_id=seeded.room_other_1_1_101, arrears=Decimal("999")),
        ])
        await s.commit()


async def _campaign(o: Outbound, community: str = "hupan") -> object:
    async with o.w.sm() as s:
        return await build_campaign(s, o.dialer.hours, community=community,
                                    rules=FeeRules(Decimal("100"), 30), by="赵主管",
                                    now=o.w.clock.now())


def _commands(o: Outbound) -> list[str]:
    return [str(dict(e).get("Command", "")) for e in o.standin.events
            if dict(e).get("Event") == "AGIExecStart"]


async def test_owners_in_arrears_hear_the_amount_and_the_office_gets_the_results(
        outbound: Outbound) -> None:
    o = outbound
    await _arrears(o)
    o.standin.add_phone(Phone(WANG, answer_after=1, script=[Wait(40), HangUp()]))
    o.standin.add_phone(Phone(LI, answer_after=1, script=[Wait(6), Press("0"), Wait(3),
                                                          HangUp()]))
    built = await _campaign(o)
    assert built.queued == 2 and built.already_called == 0  # type: ignore[attr-defined]
    jobs = {j.number: j for j in await o.jobs()}
    assert set(jobs) == {"+86" + WANG, "+86" + LI}  # nobody of 滨江小区
    assert jobs["+86" + WANG].payload["amount"] == "1234.50"  # type: ignore[index]
    # 李四's 7-1-502 owes less than the minimum: his reminder is for 5-1-801 only
    assert jobs["+86" + LI].payload["amount"] == "300.00"  # type: ignore[index]
    assert await o.run() == 2
    jobs = {j.number: j for j in await o.jobs()}
    assert jobs["+86" + WANG].state == "done"
    assert jobs["+86" + WANG].result == {"heard": True, "agent": False}
    assert jobs["+86" + LI].result == {"heard": True, "agent": True}
    commands = _commands(o)
    for sound in money_prompts(Decimal("1234.50")):  # 一千二百三十四元五角, to the jiao
        assert any(sound in c for c in commands), sound
    assert any(c.startswith("EXEC Queue") and "frontdesk" in c for c in commands)
    async with o.w.sm() as s:
        rows = await outcome_rows(s, built.campaign, show=lambda n: n,  # type: ignore[attr-defined]
                                  local=lambda at: at.isoformat())
    assert rows[0][:4] == ["房号", "业主", "号码", "欠费金额（元）"]
    by_owner = {r[1]: r for r in rows[1:]}
    assert by_owner["王小明"][0] == "3栋2单元1201" and by_owner["王小明"][5] == "已接听，听完提醒"
    assert by_owner["李四"][5] == "已接听，转人工"


async def test_nobody_is_called_twice_in_a_period_and_who_paid_is_not_called(
        outbound: Outbound) -> None:
    o = outbound
    await _arrears(o)
    first = await _campaign(o)
    again = await _campaign(o)  # a second campaign of the same month
    assert again.queued == 0 and again.already_called == 2  # type: ignore[attr-defined]
    async with o.w.sm() as s:  # 王小明 pays before his call
        await s.execute(update(FeeAccount).where(
            FeeAccount.room_id == o.w.seeded.room_3_2_1201).values(arrears=Decimal("0")))
        await s.commit()
    o.standin.add_phone(Phone(LI, answer_after=1, script=[Wait(40), HangUp()]))
    assert await o.run() == 1
    jobs = {j.number: j for j in await o.jobs()}
    assert jobs["+86" + WANG].state == "skipped" and "缴清" in jobs["+86" + WANG].note
    assert jobs["+86" + LI].state == "done"
    assert [d for d in o.dials() if WANG in d] == []
    assert first.campaign.id != again.campaign.id  # type: ignore[attr-defined]


async def test_a_paused_campaign_is_not_dialled_and_resumes(outbound: Outbound) -> None:
    from callcenter.outbound.fees import set_state

    o = outbound
    await _arrears(o)
    built = await _campaign(o)
    cid = built.campaign.id  # type: ignore[attr-defined]
    async with o.w.sm() as s:
        await set_state(s, cid, "paused", None, o.w.clock.now())
    o.dialer._holds_read_at = -1e9  # the next turn reads the pause at once
    assert await o.run() == 0
    async with o.w.sm() as s:
        await set_state(s, cid, "active", None, o.w.clock.now())
    o.dialer._holds_read_at = -1e9
    o.standin.add_phone(Phone(WANG, answer_after=1, script=[Wait(40), HangUp()]))
    o.standin.add_phone(Phone(LI, answer_after=1, script=[Wait(40), HangUp()]))
    assert await o.run() == 2


async def test_an_owner_who_paid_recently_is_not_reminded_yet(outbound: Outbound) -> None:
    """The minimum age: a payment last week (some still owed) is no reason to call."""
    o = outbound
    await _arrears(o)
    async with o.w.sm() as s:
        await s.execute(update(FeeAccount).where(
            FeeAccount.room_id == o.w.seeded.room_3_2_1201).values(
            last_payment_at=o.w.clock.now() - timedelta(days=7)))
        await s.commit()
    built = await _campaign(o)
    assert built.queued == 1  # type: ignore[attr-defined]
    assert [j.number for j in await o.jobs()] == ["+86" + LI]


async def test_a_pbx_restart_mid_campaign_calls_nobody_twice_once_heard(
        outbound: Outbound) -> None:
    """Asterisk restarts while both reminders ring (capture 11's ``core restart now``):
    the rings it cut are not calls the owners missed, nothing is sent while it is down,
    and once it is back each owner hears their reminder once."""
    import asyncio

    o = outbound
    o.standin.restart_shutdown_s, o.standin.restart_downtime = 0.3, 0.3
    await _arrears(o)
    o.standin.add_phone(Phone(WANG, answer_after=60, script=[Wait(40), HangUp()]))
    o.standin.add_phone(Phone(LI, answer_after=60, script=[Wait(40), HangUp()]))
    await _campaign(o)
    assert await o.dialer.tick() == 2
    await until(lambda: len(o.dials()) == 2, 5.0, "the two reminders never rang")
    # after the restart both pick up at once
    o.standin.add_phone(Phone(WANG, answer_after=1, script=[Wait(40), HangUp()]))
    o.standin.add_phone(Phone(LI, answer_after=1, script=[Wait(40), HangUp()]))
    await o.standin.restart()
    await o.dialer.drain()
    jobs = await o.jobs()
    assert [j.state for j in jobs] == ["queued", "queued"]  # the cut rings count for nothing
    assert all(j.attempts == 0 for j in jobs)
    await o.link.wait_connected(10)
    for _ in range(50):  # the link logs in again; the next turns dial once it is up
        await o.w.clock.advance(15)
        await o.dialer.tick()
        await o.dialer.drain()
        if all(j.state == "done" for j in await o.jobs()):
            break
        await asyncio.sleep(0.1)
    jobs = await o.jobs()
    assert [(j.state, j.attempts) for j in jobs] == [("done", 1), ("done", 1)]
    for j in jobs:
        assert [a.outcome for a in await o.attempts(j.id)] == ["answered"]


async def test_paused_surveys_never_keep_a_campaign_waiting(outbound: Outbound) -> None:
    """More paused surveys are due than one turn reads: the reminders still go out."""
    from callcenter.outbound.models import OutboundHold
    from tests.outbound.world import make_dialer

    o = outbound
    o.dialer = make_dialer(o.w, o.link, o.survey._verdicts, batch=2)
    for i in range(3):
        await o.resolved_ticket(number=f"1370000000{i}")
    await o.w.clock.advance(2 * 3600)
    async with o.w.sm() as s:
        s.add(OutboundHold(kind="survey", held_by="赵主管"))
        await s.commit()
    await _arrears(o)
    await _campaign(o)
    o.standin.add_phone(Phone(WANG, answer_after=1, script=[Wait(40), HangUp()]))
    o.standin.add_phone(Phone(LI, answer_after=1, script=[Wait(40), HangUp()]))
    assert await o.run() == 2
    states = sorted((j.kind, j.state) for j in await o.jobs())
    assert states == [("fee", "done")] * 2 + [("survey", "queued")] * 3
