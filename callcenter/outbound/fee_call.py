"""The 催缴 reminder an owner receives: which flat, how much (to the fen, as Chinese
speaks money: 一千二百三十四元五角), then 0 for a person at the front desk, 1 to hear
it again. ``AMDSTATUS`` MACHINE is not a reminder heard (tried again later)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.outbound import rules
from callcenter.outbound.dialer import Verdict, Verdicts
from callcenter.outbound.entry import MISMATCH, answered_job, deliver
from callcenter.paging.page_call import say_place
from ivr.channel import Channel
from ivr.errors import CallerHungUp
from ivr.money import money_prompts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeePrompts:
    intro: str = "callcenter/fee-reminder-intro"
    owed: str = "callcenter/fee-reminder-owed"
    menu: str = "callcenter/fee-reminder-menu"
    thanks: str = "callcenter/fee-reminder-thanks"
    agent: str = "callcenter/fee-reminder-agent"


PROMPT_TEXTS = {
    "callcenter/fee-reminder-intro": "您好，这里是物业服务中心。温馨提醒：您名下的房屋",
    "callcenter/fee-reminder-owed": "目前尚欠物业费",
    "callcenter/fee-reminder-menu": "请您及时缴纳。如有疑问请按0转人工服务，重听请按1。",
    "callcenter/fee-reminder-thanks": "感谢您的支持，再见。",
    "callcenter/fee-reminder-agent": "正在为您转接人工服务，请稍候。",
}


@dataclass(frozen=True, slots=True)
class FeeCallConfig:
    queue: str = "frontdesk"
    digit_timeout_ms: int = 5000
    plays: int = 2
    prompts: FeePrompts = FeePrompts()


PLACE_PROMPTS = ("callcenter/paging-building", "callcenter/paging-unit", "callcenter/paging-room")
"""栋, 单元, 室: the page call's own prompts (``callcenter.paging.page_call``)."""


class FeeCall:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], verdicts: Verdicts,
                 now: Callable[[], datetime], config: FeeCallConfig | None = None) -> None:
        self._sm = sessionmaker
        self._verdicts = verdicts
        self._now = now
        self.config = config or FeeCallConfig()

    async def handle(self, channel: Channel, job_id: int, attempt_id: int) -> None:
        heard: list[bool] = []

        def hung_up() -> Verdict | None:  # once the amount was said, the reminder is heard
            return Verdict(rules.ANSWERED, {"heard": True, "agent": False},
                           "听完欠费金额后挂断") if heard else None
        await deliver(self._sm, self._verdicts, attempt_id,
                      self._run(channel, job_id, attempt_id, heard), hung_up)

    async def _run(self, channel: Channel, job_id: int, attempt_id: int,
                   heard: list[bool]) -> Verdict:
        job = await answered_job(self._sm, job_id, attempt_id, self._now())
        if job is None:
            await channel.hangup()
            return MISMATCH
        payload: dict[str, Any] = dict(job.payload or {})
        if (await channel.get_variable("AMDSTATUS") or "").upper() == "MACHINE":
            await channel.hangup()
            return Verdict(rules.MACHINE, None, "语音信箱或提示音")
        p = self.config.prompts
        for _ in range(max(1, self.config.plays)):
            digit = await channel.stream_file(p.intro, "01")
            for value, prompt in zip(payload.get("place") or [], PLACE_PROMPTS, strict=False):
                digit = digit or await say_place(channel, str(value), prompt, "01")
            digit = digit or await channel.stream_file(p.owed, "01")
            for sound in money_prompts(payload.get("amount")):
                digit = digit or await channel.stream_file(sound, "01")
            heard.append(True)
            digit = digit or await channel.stream_file(p.menu, "01")
            digit = digit or await channel.wait_for_digit(self.config.digit_timeout_ms)
            if digit == "1":
                continue
            if digit == "0":
                await channel.stream_file(p.agent)
                result = {"heard": True, "agent": True}
                try:
                    await channel.exec("Queue", self.config.queue)
                except CallerHungUp:
                    pass
                return Verdict(rules.ANSWERED, result, "业主要求转人工")
            break
        try:
            await channel.stream_file(p.thanks)
            await channel.hangup()
        except CallerHungUp:
            pass
        return Verdict(rules.ANSWERED, {"heard": bool(heard), "agent": False}, "已播放提醒")
