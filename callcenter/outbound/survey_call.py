"""The 回访 survey call an owner receives after a repair is finished.

The dialer's Originate set ``CC_OUTBOUND_JOB`` and ``CC_OUTBOUND_ATTEMPT``; the
printed ``[callcenter-outbound]`` context ran ``AMD()`` before handing the call
over, so ``AMDSTATUS`` tells a person from an answering machine or a carrier's
recorded message ("您拨打的用户暂时无法接通"): those are not a survey, the
attempt is ``machine`` and the job is tried again later.

A person hears what was repaired and presses 1–5 (5 很满意 … 1 很不满意) or 0
(问题没有解决). The answer goes onto the ticket as its 回访 through the work
order's own action (``follow_up``: a low score makes the supervisor's callback
task, "not fixed" reopens it), by the actor 自动回访. Silence twice, or hanging
up before a key, is not an answer (``hung_up``: retried, then the front desk's
manual list).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.outbound import rules
from callcenter.outbound.dialer import Verdict, Verdicts
from callcenter.outbound.entry import MISMATCH, answered_job, deliver
from ivr.channel import Channel
from ivr.errors import CallerHungUp

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class SurveyPrompts:
    intro: str = "callcenter/survey-intro"
    category_prefix: str = "callcenter/survey-category-"
    category_fallback: str = "callcenter/survey-category-other"
    menu: str = "callcenter/survey-menu"
    thanks: str = "callcenter/survey-thanks"
    sorry: str = "callcenter/survey-sorry"
    invalid: str = "callcenter/survey-invalid"


SURVEY_CATEGORIES = {"plumbing": "漏水和水管", "electrical": "电路", "elevator": "电梯",
                     "gas": "燃气", "door_access": "门禁门锁", "public_facility": "公共设施",
                     "cleaning": "保洁", "greening": "绿化", "security": "安全",
                     "noise": "噪音", "parking": "停车", "other": ""}

PROMPT_TEXTS: dict[str, str] = {
    "callcenter/survey-intro": "您好，这里是物业服务中心。您报修的",
    **{f"callcenter/survey-category-{k}": f"{v}问题" if v else "问题"
       for k, v in SURVEY_CATEGORIES.items()},
    "callcenter/survey-menu": "已处理完毕。请为本次服务评分：非常满意请按5，满意请按4，一般请按3，"
                              "不满意请按2，非常不满意请按1；如果问题还没有解决，请按0。",
    "callcenter/survey-thanks": "感谢您的评价，祝您生活愉快，再见。",
    "callcenter/survey-sorry": "很抱歉问题还没有解决，我们会尽快安排人员再次处理，再见。",
    "callcenter/survey-invalid": "输入有误。",
}

KEYS = "012345"


class FollowUp(Protocol):
    """Records the 回访 on the ticket (``WorkOrders.act(..., "follow_up", ...)``)."""

    async def __call__(self, ticket_id: int, score: int, resolved: bool,
                       comment: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SurveyConfig:
    digit_timeout_ms: int = 6000
    plays: int = 2
    prompts: SurveyPrompts = SurveyPrompts()


class SurveyCall:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], verdicts: Verdicts,
                 follow_up: FollowUp, now: Callable[[], datetime],
                 category_of: Callable[[int], Awaitable[str | None]],
                 config: SurveyConfig | None = None) -> None:
        self._sm = sessionmaker
        self._verdicts = verdicts
        self._follow_up = follow_up
        self._now = now
        self._category_of = category_of
        self.config = config or SurveyConfig()

    async def handle(self, channel: Channel, job_id: int, attempt_id: int) -> None:
        await deliver(self._sm, self._verdicts, attempt_id,
                      self._run(channel, job_id, attempt_id))

    async def _run(self, channel: Channel, job_id: int, attempt_id: int) -> Verdict:
        job = await answered_job(self._sm, job_id, attempt_id, self._now())
        if job is None:
            await channel.hangup()
            return MISMATCH
        ticket_id = job.ticket_id
        amd = (await channel.get_variable("AMDSTATUS") or "").upper()
        if amd == "MACHINE":
            cause = await channel.get_variable("AMDCAUSE") or ""
            await channel.hangup()
            return Verdict(rules.MACHINE, None, f"语音信箱或提示音（{cause.split('-')[0]}）"
                           if cause else "语音信箱或提示音")
        if ticket_id is None:
            await channel.hangup()
            return Verdict(rules.FAILED, None, "工单已不存在")
        p = self.config.prompts
        category = await self._category_of(ticket_id)
        cat_prompt = p.category_prefix + category if category in SURVEY_CATEGORIES else \
            p.category_fallback
        digit: str | None = None
        for _ in range(max(1, self.config.plays)):
            digit = await channel.stream_file(p.intro, KEYS)
            digit = digit or await channel.stream_file(cat_prompt, KEYS)
            digit = digit or await channel.stream_file(p.menu, KEYS)
            digit = digit or await channel.wait_for_digit(self.config.digit_timeout_ms)
            if digit is not None and digit in KEYS:
                break
            if digit is not None:
                await channel.stream_file(p.invalid)
            digit = None
        if digit is None:
            if amd == "NOTSURE":  # a recording that never stops talking, most likely
                await channel.hangup()
                return Verdict(rules.MACHINE, None, "无法确认是否本人接听，未按键")
            await channel.hangup()
            return Verdict(rules.HUNG_UP, None, "接听后未按键")
        resolved = digit != "0"
        score = int(digit) if resolved else 1
        comment = f"电话回访按键：{digit}" + ("（问题未解决）" if not resolved else "")
        await self._follow_up(ticket_id, score, resolved, comment)
        verdict = Verdict(rules.ANSWERED, {"score": score, "resolved": resolved, "key": digit},
                          comment)
        try:  # the answer is on the ticket: a hang-up from here on changes nothing
            await channel.stream_file(p.thanks if resolved else p.sorry)
            await channel.hangup()
        except CallerHungUp:
            pass
        return verdict
