"""The call an engineer receives: what happened, where, and 1 to accept, 2 to pass.

Runs over any ``AgiChannel`` (FastAGI or AsyncAGI). The Originate set
``CC_PAGE_ATTEMPT`` (and ``CC_INCIDENT``) on the channel; the script reads them,
plays the incident (category prompt, then building / unit / room with SAY
NUMBER or SAY DIGITS) and waits for a key. Only 1 acknowledges. Every other
ending (2, silence, an unknown key, hanging up) is a clear outcome that the
escalation treats as "try the next one".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.logs import bind_call
from callcenter.paging.errors import IncidentClosed
from callcenter.paging.models import Incident, PageAttempt
from callcenter.paging.originate import NO_PAGE_CALL, PageCallRegistry, PageResponse
from callcenter.paging.services import PagingService
from ivr.channel import Channel
from ivr.errors import CallerHungUp, IvrError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PagePrompts:
    """Sound files (without extension) under Asterisk's sounds directory."""

    intro: str = "callcenter/paging-emergency"  # 紧急事件
    category_prefix: str = "callcenter/paging-category-"  # + plumbing, elevator ...
    category_fallback: str = "callcenter/paging-category-other"
    building: str = "callcenter/paging-building"  # 楼栋 (after the number: 3 栋)
    unit: str = "callcenter/paging-unit"  # 单元
    room: str = "callcenter/paging-room"  # 室
    menu: str = "callcenter/paging-menu"  # 接警请按1，转给他人请按2
    accepted: str = "callcenter/paging-accepted"  # 已确认接警，请尽快到场
    passed: str = "callcenter/paging-passed"  # 已转给下一位
    already: str = "callcenter/paging-already-acked"  # 该事件已有人接警
    invalid: str = "callcenter/paging-invalid"  # 输入有误


# What each prompt says, for whoever records or synthesises them (zh-CN).
PROMPT_TEXTS: dict[str, str] = {
    "callcenter/paging-emergency": "紧急事件通知。",
    "callcenter/paging-category-plumbing": "漏水或水管爆裂，",
    "callcenter/paging-category-electrical": "停电或电气故障，",
    "callcenter/paging-category-elevator": "电梯困人，",
    "callcenter/paging-category-gas": "燃气泄漏，",
    "callcenter/paging-category-fire": "火警，",
    "callcenter/paging-category-door_access": "门禁门锁故障，",
    "callcenter/paging-category-public_facility": "公共设施故障，",
    "callcenter/paging-category-security": "治安事件，",
    "callcenter/paging-category-other": "其他紧急情况，",
    "callcenter/paging-building": "栋，",
    "callcenter/paging-unit": "单元，",
    "callcenter/paging-room": "室。",
    "callcenter/paging-menu": "接警请按1，转给下一位请按2。",
    "callcenter/paging-accepted": "您已接警，报警人将被告知您正在赶往现场，请尽快到场。",
    "callcenter/paging-passed": "已转给下一位值班人员。",
    "callcenter/paging-already-acked": "该事件已有同事接警，谢谢。",
    "callcenter/paging-invalid": "输入有误，将转给下一位值班人员。",
}

KNOWN_CATEGORIES = ("plumbing", "electrical", "elevator", "gas", "fire", "door_access",
                    "public_facility", "security", "other")


@dataclass(frozen=True, slots=True)
class PageCallConfig:
    digit_timeout_ms: int = 6000
    plays: int = 2  # the incident is played at most this many times on silence
    prompts: PagePrompts = PagePrompts()


async def say_place(channel: Channel, value: str, prompt: str,
                    escape: str = "12") -> str | None:
    """Say "3 栋" and the like (short numbers as numbers, room numbers digit by digit,
    names letter by letter); a key of ``escape`` pressed meanwhile stops it and is
    returned. The fee reminder says the flat the same way."""
    if not value:
        return None
    if value.isdigit() and len(value) <= 2:
        digit = await channel.say_number(int(value), escape)
    elif value.isdigit():
        digit = await channel.say_digits(value, escape)
    else:
        res = await channel.exec("SayAlpha", value)
        digit = res.digit
    return digit or await channel.stream_file(prompt, escape)


PAGE_CONTEXT = "callcenter-page"


def is_page_call(channel: Channel, context: str = PAGE_CONTEXT) -> bool:
    """For the AGI entry point shared with the IVR: does this AGI session come
    from the paging context (AsyncAGI: ``agi_context``; FastAGI: the
    ``agi_network_script`` is ``page``)?"""
    env = channel.env
    return env.get("agi_context") == context or env.get("agi_network_script", "") in (
        "page", "paging")


class PageCallHandler:
    """Hand it the AGI channel of an answered page call."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], service: PagingService,
                 registry: PageCallRegistry, config: PageCallConfig | None = None) -> None:
        self._sm = sessionmaker
        self._service = service
        self._registry = registry
        self.config = config or PageCallConfig()

    async def handle(self, channel: Channel) -> PageResponse:
        with bind_call(uniqueid=channel.uniqueid,
                       linkedid=getattr(channel, "linkedid", None)
                       or channel.env.get("agi_linkedid") or channel.uniqueid):
            return await self._handle(channel)

    async def _handle(self, channel: Channel) -> PageResponse:
        attempt_id: int | None = None
        response = PageResponse.FAILED
        try:
            raw = await channel.get_variable("CC_PAGE_ATTEMPT")
            if not raw or not raw.strip().isdigit():
                log.warning("page call without CC_PAGE_ATTEMPT on %s", channel.uniqueid)
                await channel.hangup()
                return PageResponse.FAILED
            attempt_id = int(raw.strip())
            response = await self._converse(channel, attempt_id)
        except CallerHungUp:
            response = PageResponse.HUNG_UP
        except IvrError as exc:
            log.warning("page call %s: AGI error %s", attempt_id, exc)
            response = PageResponse.FAILED
        if attempt_id is not None:
            await self._finish(attempt_id, response)
        return response

    async def _converse(self, channel: Channel, attempt_id: int) -> PageResponse:
        async with self._sm() as session:
            attempt = await session.get(PageAttempt, attempt_id)
            incident = await session.get(Incident, attempt.incident_id) if attempt else None
        if attempt is None or incident is None:
            await channel.hangup()
            return PageResponse.FAILED
        p = self.config.prompts
        await channel.answer()
        if incident.state != "open":
            await channel.stream_file(p.already)
            await channel.hangup()
            return PageResponse.ALREADY
        category = (p.category_prefix + incident.category
                    if incident.category in KNOWN_CATEGORIES else p.category_fallback)
        for _ in range(max(1, self.config.plays)):
            digit = await channel.stream_file(p.intro, "12")
            digit = digit or await channel.stream_file(category, "12")
            for value, prompt in ((incident.building, p.building), (incident.unit, p.unit),
                                  (incident.room, p.room)):
                digit = digit or await say_place(channel, value, prompt)
            digit = digit or await channel.stream_file(p.menu, "12")
            digit = digit or await channel.wait_for_digit(self.config.digit_timeout_ms)
            if digit is None:
                continue
            if digit == "1":
                try:
                    await self._service.acknowledge(incident.id, user_id=attempt.user_id,
                                                    name=attempt.person_name, via="phone",
                                                    attempt_id=attempt_id)
                except IncidentClosed:
                    await channel.stream_file(p.already)
                    await channel.hangup()
                    return PageResponse.ALREADY
                await self._store(attempt_id, PageResponse.ACCEPTED)
                await channel.stream_file(p.accepted)
                await channel.hangup()
                return PageResponse.ACCEPTED
            if digit == "2":
                await self._store(attempt_id, PageResponse.PASSED)
                await channel.stream_file(p.passed)
                await channel.hangup()
                return PageResponse.PASSED
            await channel.stream_file(p.invalid)
            await channel.hangup()
            return PageResponse.UNKNOWN_DIGIT
        await channel.hangup()
        return PageResponse.NO_INPUT

    async def _store(self, attempt_id: int, response: PageResponse) -> None:
        """The call's verdict on its attempt, once. An acceptance also replaces the
        worker's "answered, no verdict" (``no_page_call``: it stopped waiting before
        the key came, e.g. on a stalled server): the incident is acknowledged by this
        call, and its attempt must not say it failed."""
        async with self._sm() as session:
            row = await session.get(PageAttempt, attempt_id)
            if row is None:
                return
            if row.outcome is None:
                row.outcome = response.value
            elif response is PageResponse.ACCEPTED and row.error_code == NO_PAGE_CALL:
                row.outcome, row.error_code = response.value, ""
                row.detail = "确认晚于等待时限到达"
            else:
                return
            await session.commit()

    async def _finish(self, attempt_id: int, response: PageResponse) -> None:
        """Record the verdict (once) and wake the worker waiting for it."""
        try:
            await self._store(attempt_id, response)
        except Exception:
            log.exception("page call %s: could not store %s", attempt_id, response)
        self._registry.resolve(attempt_id, response)
