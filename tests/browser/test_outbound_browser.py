"""The 外呼回访 page in a real Chromium at a desk size and a phone size: the front
desk's manual 回访 list, the jobs with their attempts in Chinese (no codes, local
times), a 催缴 campaign with its progress and its export links for the supervisor,
and the agent's read-only view with the owner's number masked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER
from callcenter.calls.models import CallLog
from callcenter.outbound.models import OutboundAttempt, OutboundCampaign, OutboundJob
from tests.browser.site import OWNER_MASKED, OWNER_MOBILE, SIZES, Site, check
from ticketing.models import Ticket
from ticketing.services import NewTicket, TicketService

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SEEDED: dict[str, int] = {}


async def _jobs(site: Site) -> None:
    if SEEDED:
        return
    app, sm = site.app, site.app[SESSIONMAKER]
    now = app[CLOCK].now()
    service = TicketService(sm, app[BUS], app[CLOCK], timezone="Asia/Shanghai")
    made = await service.create(NewTicket(
        source="agent", category="plumbing", summary="卫生间地漏返水", priority="normal",
        caller_number=OWNER_MOBILE, caller_name="张伟", created_by="xiaoli"))
    async with sm() as s:
        await s.execute(update(Ticket).where(Ticket.id == made.id).values(state="resolved"))
        unreached = OutboundJob(key="b-survey-1", kind="survey", community="hupan",
                                number="+86" + OWNER_MOBILE, ticket_id=made.id,
                                state="unreached", outcome="no_answer", attempts=3,
                                due_at=now - timedelta(hours=3), note="3 次呼叫未接通（无人接听）",
                                updated_at=now - timedelta(minutes=20))
        queued = OutboundJob(key="b-survey-2", kind="survey", community="hupan",
                             number="+8613700002222", state="queued", attempts=1,
                             outcome="busy", due_at=now + timedelta(minutes=10),
                             note="占线，稍后重拨", updated_at=now - timedelta(minutes=5))
        campaign = OutboundCampaign(kind="fee", community="hupan", name="12月物业费催缴",
                                    period="2026-12", state="active", rules={},
                                    created_by="赵主管")
        s.add_all([unreached, queued, campaign])
        await s.flush()
        s.add(OutboundJob(key="b-fee-1", kind="fee", community="hupan",
                          number="+86" + OWNER_MOBILE, campaign_id=campaign.id, state="done",
                          outcome="answered", attempts=1, due_at=now - timedelta(hours=1),
                          result={"heard": True, "agent": False}, note="已播放提醒",
                          payload={"amount": "1280.50", "room": "3栋1单元1201", "owner": "张伟"},
                          updated_at=now - timedelta(minutes=30)))
        for minutes in (180, 150, 120):
            s.add(OutboundAttempt(job_id=unreached.id, number="+86" + OWNER_MOBILE,
                                  link="pbx1", started_at=now - timedelta(minutes=minutes),
                                  ended_at=now - timedelta(minutes=minutes - 1),
                                  outcome="no_answer"))
        # a reminder the server placed, answered: the history says 呼出, not 语音自助
        s.add(CallLog(linkedid="b-out-1", asterisk="pbx1", community="hupan",
                      did="13700003333", ivr_path=[], rung=[], direction="out",
                      started_at=now - timedelta(minutes=40),
                      ended_at=now - timedelta(minutes=39), wait_s=4.0, outcome="ivr_only"))
        await s.commit()
        SEEDED["ticket"] = made.id


@pytest.mark.parametrize("size", SIZES)
async def test_the_supervisor_sees_the_manual_list_the_jobs_and_the_campaign(
        site: Site, size: str, tmp_path: Path) -> None:
    await _jobs(site)
    await check(site, "boss", size, "/outbound?state=all", tmp_path / f"outbound-{size}.png",
                primary="form.campaign-new button",
                labels=("外呼回访", "需人工回访", "3 次", "无人接听", "回访调查", "等待呼叫",
                        "占线，稍后重拨", "物业费催缴", "12月物业费催缴", "进行中",
                        "1 / 1 户已结束", "导出 Excel", "发起催缴", "暂停回访外呼",
                        "免打扰时段"),
                hidden=("survey", "unreached", "no_answer"))


@pytest.mark.parametrize("size", SIZES)
async def test_the_agent_reads_the_list_with_numbers_masked(
        site: Site, size: str, tmp_path: Path) -> None:
    await _jobs(site)
    await check(site, "xiaoli", size, "/outbound?state=all",
                tmp_path / f"outbound-agent-{size}.png", primary=None,
                labels=("需人工回访", OWNER_MASKED, "回访调查", "催缴提醒"),
                hidden=(OWNER_MOBILE, "发起催缴", "导出 Excel", "暂停回访外呼"))


@pytest.mark.parametrize("size", SIZES)
async def test_a_call_the_server_placed_reads_as_outgoing_in_the_history(
        site: Site, size: str, tmp_path: Path) -> None:
    await _jobs(site)
    # the number it dialled stands where an incoming call shows its caller
    await check(site, "boss", size, "/history?all=1", tmp_path / f"history-outgoing-{size}.png",
                primary=None, labels=("通话记录", "呼出（已接通）", "13700003333"))
