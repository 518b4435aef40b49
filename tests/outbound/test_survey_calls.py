"""回访 survey calls end to end: a repair's 完工 queues a call two hours later, the
dialer rings the owner through the Asterisk stand-in, the survey runs over AsyncAGI,
and the owner's key becomes the ticket's 回访, through the work order's own action."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from callcenter.directory.models import Person, PersonPhone
from callcenter.oncall.router import national_number
from callcenter.simulator import Answer, HangUp, Phone, Press, Wait
from tests.outbound.world import Outbound, outbound
from tests.ticketing.workorder_world import world
from ticketing.models import CallbackTask, Ticket, TicketEvent

__all__ = ["outbound", "world"]

OWNER = "13912345678"


def answers(key: str | None, *, amd: str = "HUMAN", number: str = OWNER) -> Phone:
    steps = [Wait(1), Press(key), Wait(3), HangUp()] if key else [Wait(30), HangUp()]
    return Phone(number, answer_after=1, script=steps, amd=amd)


async def test_a_finished_repair_is_surveyed_two_hours_later_and_the_key_is_its_follow_up(
        outbound: Outbound) -> None:
    o = outbound
    o.standin.add_phone(answers("5"))
    tid = await o.resolved_ticket()
    assert await o.run() == 0  # queued, not yet due
    [job] = await o.jobs()
    assert (job.kind, job.state, job.number, job.ticket_id) == ("survey", "queued", OWNER, tid)
    assert await o.run(hours=2) == 1
    [job] = await o.jobs()
    assert job.state == "done" and job.result == {"score": 5, "resolved": True, "key": "5"}
    async with o.w.sm() as s:
        t = await s.get(Ticket, tid)
        assert t is not None
        assert (t.state, t.followup_score, t.followup_resolved) == ("followed_up", 5, True)
        ev = (await s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == tid, TicketEvent.action == "follow_up"))).one()
        assert ev.actor == "自动回访" and ev.actor_role == "survey_call"
    [attempt] = await o.attempts(job.id)
    assert attempt.outcome == "answered" and attempt.answered_at is not None
    assert len(o.dials()) == 1
    # the community's own number was presented, the owner's phone heard the survey
    shown = {dict(e).get("CallerIDNum") for e in o.standin.events
             if dict(e).get("Event") == "NewCallerid"
             and str(dict(e).get("Channel", "")).endswith(";2")}
    assert shown == {"4008001234"}


async def test_not_fixed_reopens_the_ticket_and_a_low_score_makes_the_callback_task(
        outbound: Outbound) -> None:
    o = outbound
    o.standin.add_phone(answers("0"))
    o.standin.add_phone(answers("2", number="13900001111"))
    not_fixed = await o.resolved_ticket()
    unhappy = await o.resolved_ticket(number="13900001111")
    assert await o.run(hours=2) == 2
    async with o.w.sm() as s:
        t1, t2 = await s.get(Ticket, not_fixed), await s.get(Ticket, unhappy)
        assert t1 is not None and t2 is not None
        assert t1.state == "reopened" and t1.followup_resolved is False
        assert t2.state == "followed_up" and t2.followup_score == 2
        task = (await s.scalars(select(CallbackTask).where(
            CallbackTask.ticket_id == unhappy))).one()
        assert task.done_at is None and "2 分" in task.reason


async def test_an_answering_machine_is_not_a_survey_and_the_owner_lands_on_the_manual_list(
        outbound: Outbound) -> None:
    """AMD() says MACHINE: tried again two hours later, then the front desk calls."""
    from callcenter.outbound.survey import manual_list

    o = outbound
    o.standin.add_phone(answers(None, amd="MACHINE"))
    tid = await o.resolved_ticket()
    assert await o.run(hours=2) == 1
    [job] = await o.jobs()
    assert (job.state, job.outcome, job.attempts) == ("queued", "machine", 1)
    assert await o.run(hours=1) == 0  # the machine rule waits two hours
    assert await o.run(hours=1.1) == 1
    [job] = await o.jobs()
    assert (job.state, job.outcome, job.attempts) == ("unreached", "machine", 2)
    async with o.w.sm() as s:
        t = await s.get(Ticket, tid)
        assert t is not None and t.state == "resolved"  # no 回访 was made up
        [entry] = await manual_list(s, None)
        assert entry.ticket_id == tid and entry.attempts == 2
        assert await manual_list(s, ["binjiang"]) == []  # another community's desk
    assert len(o.dials()) == 2


async def test_no_answer_is_retried_then_given_up_and_silence_is_not_an_answer(
        outbound: Outbound) -> None:
    o = outbound
    o.standin.add_phone(Phone(OWNER, behaviour=Answer.NO_ANSWER))
    o.standin.add_phone(answers(None, number="13900001111"))  # picks up, says nothing
    await o.resolved_ticket()
    await o.resolved_ticket(number="13900001111")
    await o.run(hours=2)
    for _ in range(3):
        await o.run(hours=0.6)
    jobs = await o.jobs()
    assert [(j.state, j.outcome, j.attempts) for j in jobs] == [
        ("unreached", "no_answer", 3), ("unreached", "hung_up", 2)]


async def test_do_not_call_and_a_bad_number_are_never_dialled(outbound: Outbound) -> None:
    o = outbound
    w = o.w
    async with w.sm() as s:
        owner, phone = (await s.execute(select(Person, PersonPhone.number).join(
            PersonPhone, PersonPhone.person_id == Person.id).limit(1))).one()
        owner.do_not_call = True  # 勿扰, set after nothing else: the number is the owner's
        await s.commit()
    quiet = await o.resolved_ticket(number=national_number(phone))
    bad = await o.resolved_ticket(number="12345")
    await o.run(hours=2)
    jobs = {j.ticket_id: j for j in await o.jobs()}
    # the job of the do-not-call owner was queued before the flag mattered; it ends unsent
    assert jobs[quiet].state == "skipped" and "勿扰" in jobs[quiet].note
    assert (jobs[bad].state, jobs[bad].outcome) == ("invalid", "invalid_number")
    assert o.dials() == []


async def test_a_repair_finished_in_the_evening_is_surveyed_the_next_morning(
        outbound: Outbound) -> None:
    o = outbound
    o.w.clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 20:00 in Shanghai, a Monday
    o.standin.add_phone(answers("4"))
    await o.resolved_ticket()
    [job] = await o.jobs()
    # 22:00 is in the quiet hours (21:00–08:30): the next morning at 08:30
    assert job.due_at == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    assert await o.run(hours=12) == 0  # 08:00
    assert await o.run(hours=0.6) == 1
    [job] = await o.jobs()
    assert job.state == "done"


async def test_a_survey_the_desk_already_did_is_not_dialled(outbound: Outbound) -> None:
    o = outbound
    tid = await o.resolved_ticket()
    status, body = await o.w.act(tid, "agent", "follow_up", score=5, resolved=True)
    assert status == 200, body
    await o.run(hours=2)
    [job] = await o.jobs()
    assert job.state == "skipped" and o.dials() == []
