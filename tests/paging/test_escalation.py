"""Escalation end to end on the database: who is phoned, in which order, what
stops it, and what every attempt leaves in the audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.paging.models import PageAttempt, PagingTimer
from callcenter.paging.services import IncidentRequest
from tests.ha.pair import until
from tests.paging.conftest import (
    BUSY,
    NO_ANSWER,
    OFF,
    ScriptedOriginator,
    Staff,
    answer,
    make_paging,
    target,
)

SM = async_sessionmaker[AsyncSession]


def leak(**kw: Any) -> IncidentRequest:
    base: dict[str, Any] = dict(community="lakeside", category="plumbing", source="ivr",
                                building="3", unit="2", room="1203",
                                caller_number="13911112222", call_id="1700000000.9")
    base.update(kw)
    return IncidentRequest(**base)


def phone_rows(timeline: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["person"], a["outcome"]) for a in timeline["attempts"] if a["channel"] == "phone"]


async def test_first_engineer_accepts(sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator({target("e1"): [answer("1")]}))
    opened = await p.service.open_incident(leak())
    assert opened.created
    assert await p.worker.run_due() == 1
    await p.bus.drain()

    tl = await p.service.timeline(opened.incident_id)
    assert tl["state"] == "acknowledged"
    assert tl["acked_by_user_id"] == staff.e1 and tl["acked_via"] == "phone"
    assert tl["acked_at"] is not None
    assert phone_rows(tl) == [("工程师e1", "accepted")]
    assert tl["next_step"] == []
    # The Originate carried the incident and the attempt to the page-call script.
    dial = p.originator.dials[0]
    assert dial.channel == "PJSIP/13800000001@trunk"
    assert dial.variables["CC_INCIDENT"] == str(opened.incident_id)
    assert dial.variables["CC_PAGE_ATTEMPT"] == str(tl["attempts"][0]["id"])
    # The callee heard the incident: category prompt, building number, room digits, menu.
    cmds = p.originator.channels[0].commands
    assert any("paging-category-plumbing" in c for c in cmds)
    assert "SAY NUMBER 3 \"12\"" in cmds and "SAY DIGITS 1203 \"12\"" in cmds
    assert any("paging-accepted" in c for c in cmds)
    acked = [e for e in p.events.events if e.name == "incident.acknowledged"]
    assert len(acked) == 1 and acked[0].data["call_ids"] == ["1700000000.9"]
    assert acked[0].data["acked_by_user_id"] == staff.e1
    await p.close()


async def test_a_key_pressed_after_the_worker_stopped_waiting_still_counts_on_its_attempt(
        sessionmaker: SM, staff: Staff) -> None:
    """The engineer answers, the worker waits ``answer_wait_s`` for the call's verdict and
    moves on (a stalled server, a slow prompt); then the engineer's 1 arrives. The
    incident is theirs, and their attempt says accepted, not failed."""
    from callcenter.paging.worker import WorkerConfig

    p = make_paging(sessionmaker, originator=ScriptedOriginator({target("e1"): [answer("1")]}),
                    worker_config=WorkerConfig(answer_wait_s=5, db_poll_s=1))
    handler = p.originator.handler
    assert handler is not None
    late = asyncio.Event()

    class LateCall:
        async def handle(self, chan: Any) -> Any:
            await late.wait()
            return await handler.handle(chan)
    p.originator.handler = LateCall()  # type: ignore[assignment]
    opened = await p.service.open_incident(leak())
    run = asyncio.ensure_future(p.worker.run_due())
    await until(lambda: bool(p.originator.dials), 5.0, "no page call placed")
    for _ in range(40):  # past answer_wait_s on the worker's clock
        await p.clock.advance(1)
        await asyncio.sleep(0.005)
    tl = await p.service.timeline(opened.incident_id)
    assert phone_rows(tl)[0] == ("工程师e1", "failed")  # the worker gave up on the verdict
    late.set()
    await until(lambda: bool(p.originator.channels) and p.originator.channels[0].hung_up,
                5.0, "the late call never ended")
    await p.clock.advance(600)
    await run
    tl = await p.service.timeline(opened.incident_id)
    assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == staff.e1
    first = tl["attempts"][0]
    assert (first["person"], first["outcome"]) == ("工程师e1", "accepted")
    await p.close()


async def test_no_answer_then_backup_accepts(sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(
        {target("e1"): [NO_ANSWER, NO_ANSWER], target("e2"): [answer("1")]}))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 1, "ring_timeout_s": 25, "wait_s": 60},
        {"target": "backup", "retries": 0},
    ])
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    tl = await p.service.timeline(opened.incident_id)
    # Primary tried twice, then the backup waits for the step's 60 s.
    assert phone_rows(tl) == [("工程师e1", "no_answer"), ("工程师e1", "no_answer")]
    assert tl["state"] == "open" and len(tl["next_step"]) == 1
    assert await p.worker.run_due() == 0
    await p.clock.advance(59)
    assert await p.worker.run_due() == 0
    await p.clock.advance(1)
    assert await p.worker.run_due() == 1
    tl = await p.service.timeline(opened.incident_id)
    assert phone_rows(tl)[-1] == ("工程师e2", "accepted")
    assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == staff.e2
    assert [d.timeout for d in p.originator.dials] == [25.0, 25.0, 30.0]
    await p.close()


async def test_pressing_2_passes_to_the_next_step(sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(
        {target("e1"): [answer("2")], target("e2"): [answer("1")]}))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0}])
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    tl = await p.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [("工程师e1", "passed"), ("工程师e2", "accepted")]
    assert tl["acked_by_user_id"] == staff.e2
    assert any("paging-passed" in c for c in p.originator.channels[0].commands)
    await p.close()


async def test_clear_outcomes_for_hangup_unknown_digit_silence_busy_and_phone_off(
        sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator({
        target("e1"): [answer("1", hangup_on="paging-category"), answer("7"), answer(None)],
        target("e2"): [BUSY, OFF],
        target("sup"): [answer("1")],
    }))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 2}, {"target": "backup", "retries": 1},
        {"target": "supervisor", "retries": 0}])
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    tl = await p.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [
        ("工程师e1", "hung_up"), ("工程师e1", "unknown_digit"), ("工程师e1", "no_input"),
        ("工程师e2", "busy"), ("工程师e2", "failed"), ("工程师sup", "accepted"),
    ]
    codes = [a["error_code"] for a in tl["attempts"]]
    assert codes[3:5] == ["5", "8"]
    assert tl["acked_by_user_id"] == staff.sup
    # Hanging up during the prompt means the menu was never reached.
    assert not any("paging-menu" in c for c in p.originator.channels[0].commands)
    # Silence: the incident was played twice before giving up.
    assert sum("paging-menu" in c for c in p.originator.channels[2].commands) == 2
    await p.close()


async def test_whole_chain_exhausted_restarts_and_alerts_supervisors(
        sessionmaker: SM, staff: Staff) -> None:
    sent: list[Any] = []

    class Robot:
        channel = "wecom"

        async def send(self, message: Any) -> None:
            sent.append(message)

    p = make_paging(sessionmaker, originator=ScriptedOriginator(default=NO_ANSWER),
                    notifiers=[Robot()])
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0},
    ], max_rounds=2, restart_wait_s=120)
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    await p.worker.drain_side_tasks()
    await p.bus.drain()
    assert [d.channel for d in p.originator.dials] == [target("e1"), target("e2")]
    assert "incident.restarted" in p.events.names()
    assert len(sent) == 1 and "第2轮" in sent[0].text and sent[0].title == "紧急事件：漏水/水管爆裂"
    await p.clock.advance(120)
    await p.worker.run_due()
    await p.worker.drain_side_tasks()
    await p.bus.drain()
    assert [d.channel for d in p.originator.dials] == [target(n) for n in ("e1", "e2") * 2]
    tl = await p.service.timeline(opened.incident_id)
    assert [a["round"] for a in tl["attempts"] if a["channel"] == "phone"] == [0, 0, 1, 1]
    assert tl["state"] == "open" and tl["stop_reason"] == "exhausted"
    assert "incident.exhausted" in p.events.names() and len(sent) == 2
    alerts = [a for a in tl["attempts"] if a["channel"] == "wecom"]
    assert [a["outcome"] for a in alerts] == ["sent", "sent"] and alerts[0]["step"] == -1
    await p.clock.advance(3600)
    assert await p.worker.run_due() == 0
    await p.close()


async def test_acknowledging_from_the_console_stops_the_escalation(
        sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(default=NO_ANSWER))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0, "wait_s": 300}, {"target": "backup"}])
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    await p.service.acknowledge(opened.incident_id, user_id=staff.sup, via="console")
    await p.clock.advance(301)
    assert await p.worker.run_due() == 0
    assert len(p.originator.dials) == 1
    async with sessionmaker() as session:
        pending = await session.scalar(select(func.count()).select_from(PagingTimer).where(
            PagingTimer.done.is_(False)))
    assert pending == 0
    await p.close()


async def test_a_page_answered_after_someone_took_it_says_so_and_is_not_a_pass(
        sessionmaker: SM, staff: Staff) -> None:
    originator = ScriptedOriginator({target("e1"): [answer("1")]})
    originator.block = asyncio.Event()  # the phone rings while the console acknowledges
    p = make_paging(sessionmaker, originator=originator)
    opened = await p.service.open_incident(leak())
    running = asyncio.create_task(p.worker.run_due())
    await originator.entered.wait()
    await p.service.acknowledge(opened.incident_id, user_id=staff.sup, name="主管", via="console")
    originator.block.set()
    await running
    await p.bus.drain()
    for _ in range(100):  # the page call's script runs after the Originate returns
        tl = await p.service.timeline(opened.incident_id)
        if phone_rows(tl)[0][1] is not None:
            break
        await asyncio.sleep(0.01)
    # the engineer heard that it is taken; the timeline does not say they passed it on
    assert phone_rows(tl) == [("工程师e1", "already_handled")]
    assert tl["acked_by"] == "主管" and tl["acked_via"] == "console"
    assert any("paging-already" in c for c in originator.channels[0].commands)
    await p.close()


async def test_step_with_nobody_to_call_is_recorded_and_skipped(
        sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator({target("e1"): [answer("1")]}))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "role": "plumber", "retries": 0},
        {"target": "oncall", "retries": 0}])
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    async with sessionmaker() as session:
        rows = (await session.scalars(select(PageAttempt).order_by(PageAttempt.id))).all()
    assert [(r.outcome, r.error_code) for r in rows] == [("failed", "no_target"), ("accepted", "")]
    assert (await p.service.get(opened.incident_id)).state == "acknowledged"
    await p.close()


async def test_caller_on_hold_hears_when_someone_accepts(sessionmaker: SM, staff: Staff) -> None:
    import asyncio

    p = make_paging(sessionmaker, originator=ScriptedOriginator({target("e1"): [answer("1")]}))
    opened = await p.service.open_incident(leak())
    holding = asyncio.get_running_loop().create_task(
        p.service.wait_acknowledged(opened.incident_id, 300))
    await asyncio.sleep(0)
    await p.worker.run_due()
    assert await asyncio.wait_for(holding, 5) == "工程师e1"
    # Already acknowledged: answers at once.
    assert await p.service.wait_acknowledged(opened.incident_id, 300) == "工程师e1"
    # Nobody accepts within the wait: None, on the injected clock.
    other = await p.service.open_incident(leak(building="8"))
    waiting = asyncio.get_running_loop().create_task(
        p.service.wait_acknowledged(other.incident_id, 60))
    await asyncio.sleep(0.01)
    await p.clock.advance(61)
    assert await asyncio.wait_for(waiting, 5) is None
    await p.close()


async def test_editing_the_policy_does_not_change_a_running_page(
        sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(default=NO_ANSWER))
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "oncall", "retries": 0, "wait_s": 30}, {"target": "backup", "retries": 0}],
        max_rounds=1)
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    await p.service.set_policy("lakeside", "plumbing", [
        {"target": "user", "user_id": staff.mgr, "retries": 0}], max_rounds=1)
    await p.clock.advance(30)
    await p.worker.run_due()
    assert [d.channel for d in p.originator.dials] == [target("e1"), target("e2")]
    # A new incident takes the edited policy.
    await p.service.open_incident(leak(building="4"))
    await p.worker.run_due()
    assert p.originator.dials[-1].channel == target("mgr")
    tl = await p.service.timeline(opened.incident_id)
    assert [s["target"] for s in tl["policy"]["steps"]] == ["oncall", "backup"]
    await p.close()


def test_every_prompt_the_page_call_plays_has_a_text() -> None:
    from dataclasses import fields

    from callcenter.paging.page_call import KNOWN_CATEGORIES, PROMPT_TEXTS, PagePrompts

    prompts = PagePrompts()
    names = {getattr(prompts, f.name) for f in fields(prompts) if f.name != "category_prefix"}
    names |= {prompts.category_prefix + c for c in KNOWN_CATEGORIES}
    assert names == set(PROMPT_TEXTS)
    assert all(text and not text.isascii() for text in PROMPT_TEXTS.values())


async def test_a_key_pressed_while_the_place_is_spoken_counts(sessionmaker: SM, staff: Staff) -> None:
    p = make_paging(sessionmaker, originator=ScriptedOriginator(
        {target("e1"): [answer("1", press_at="SAY NUMBER 3")]}))
    opened = await p.service.open_incident(leak())
    await p.worker.run_due()
    assert (await p.service.get(opened.incident_id)).state == "acknowledged"
    cmds = p.originator.channels[0].commands
    # Nothing more of the incident is played once the key is pressed.
    assert not any("paging-menu" in c or "SAY DIGITS" in c for c in cmds)
    await p.close()


async def test_a_page_logs_with_the_linkedid_of_the_call_that_raised_it(sessionmaker: SM,
                                                                         staff: Staff) -> None:
    seen: list[str | None] = []

    class Watching(ScriptedOriginator):
        async def originate(self, *args: Any, **kw: Any) -> Any:
            seen.append(structlog.contextvars.get_contextvars().get("linkedid"))
            return await super().originate(*args, **kw)

    p = make_paging(sessionmaker, originator=Watching({target("e1"): [answer("1")]}))
    await p.service.open_incident(leak())
    assert await p.worker.run_due() == 1
    await p.bus.drain()
    assert seen == ["1700000000.9"]
    assert "linkedid" not in structlog.contextvars.get_contextvars()  # the step's task only
    await p.close()
