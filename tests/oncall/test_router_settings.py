"""The router as the server builds it: ring time and voicemail fallback from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.appkeys import SESSIONMAKER
from callcenter.clock import ManualClock
from callcenter.ivr_services import HotlineServices
from callcenter.oncall.models import OnCallAttempt
from callcenter.oncall.setup import ONCALL_ROUTER, setup_oncall
from callcenter.settings import SettingsError, settings_from_mapping
from tests.oncall.test_router import CallerChannel
from tests.oncall.test_who_is_on_call import local, seed


@asynccontextmanager
async def started(raw: dict[str, Any]) -> AsyncIterator[web.Application]:
    """An app built from a settings mapping, started as the server starts it."""
    settings = settings_from_mapping(raw, "callcenter.toml")
    app = create_core_app(settings, clock=ManualClock(local(2026, 11, 23, 22)))
    setup_oncall(app)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def test_a_chain_nobody_answers_ends_in_the_repair_mailbox_by_default(db_url: str) -> None:
    async with started({"database": {"url": db_url}}) as app:
        await seed(app[SESSIONMAKER])
        call = CallerChannel(["NOANSWER", "NOANSWER", "NOANSWER"])
        result = await app[ONCALL_ROUTER].route(call, "lakeside", "night_duty")
        async with app[SESSIONMAKER]() as s:
            rows = (await s.scalars(select(OnCallAttempt).order_by(OnCallAttempt.id))).all()
    assert result.outcome == "voicemail" and result.attempts == 3
    dials = [c for c in call.commands if c.startswith("EXEC Dial")]
    # Primary, backup, supervisor, 20 s each, then the first mailbox in [voicemail].
    assert dials == ['EXEC Dial "PJSIP/802&PJSIP/13800000002@trunk,20"',
                     'EXEC Dial "PJSIP/803&PJSIP/13800000003@trunk,20"',
                     'EXEC Dial "PJSIP/805&PJSIP/13800000005@trunk,20"']
    assert call.commands[-1] == 'EXEC VoiceMail "8000@default,u"'
    assert [r.outcome for r in rows] == ["no_answer"] * 3


async def test_ring_time_mailbox_and_patterns_come_from_settings(db_url: str) -> None:
    raw = {"database": {"url": db_url},
           "voicemail": {"context": "wuye", "mailboxes": ["8000", "8100"]},
           "oncall": {"ring_timeout_s": 12, "voicemail_mailbox": "8100", "prefer": "mobile"},
           "asterisk": [{"trunk": "SIP/gw/{number}"}]}
    async with started(raw) as app:
        await seed(app[SESSIONMAKER])
        call = CallerChannel(["NOANSWER", "BUSY", "NOANSWER", "NOANSWER", "FAILED", "NOANSWER"])
        result = await app[ONCALL_ROUTER].route(call, "lakeside", "night_duty")
    assert result.outcome == "voicemail"
    dials = [c for c in call.commands if c.startswith("EXEC Dial")]
    assert dials[:2] == ['EXEC Dial "SIP/gw/13800000002,12"', 'EXEC Dial "PJSIP/802,12"']
    assert call.commands[-1] == 'EXEC VoiceMail "8100@wuye,u"'


async def test_with_the_fallback_off_nobody_answering_ends_the_call(db_url: str) -> None:
    raw = {"database": {"url": db_url}, "oncall": {"voicemail_fallback": False}}
    async with started(raw) as app:
        await seed(app[SESSIONMAKER])
        call = CallerChannel([])
        result = await app[ONCALL_ROUTER].route(call, "lakeside", "night_duty")
    assert result.outcome == "nobody"
    assert not any("VoiceMail" in c for c in call.commands)


@pytest.mark.parametrize(("oncall", "voicemail", "key"), [
    ({"ring_timeout_s": 0}, {}, "oncall.ring_timeout_s"),
    ({"ring_timeout_s": 600}, {}, "oncall.ring_timeout_s"),
    ({"queue_wait_s": 0}, {}, "oncall.queue_wait_s"),
    ({"queue_wait_s": 7200}, {}, "oncall.queue_wait_s"),
    ({"prefer": "pager"}, {}, "oncall.prefer"),
    ({"voicemail_mailbox": "9999"}, {}, "oncall.voicemail_mailbox"),
    ({}, {"mailboxes": []}, "oncall.voicemail_mailbox"),
])
def test_bad_oncall_settings_stop_the_start_naming_the_key(
        oncall: dict[str, Any], voicemail: dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_mapping({"oncall": oncall, "voicemail": voicemail}, "callcenter.toml")
    assert info.value.key == key and "callcenter.toml" in str(info.value)


def test_no_mailbox_is_fine_when_the_fallback_is_off() -> None:
    settings = settings_from_mapping({"oncall": {"voicemail_fallback": False},
                                      "voicemail": {"mailboxes": []}})
    assert settings.oncall.voicemail_fallback is False


async def test_the_front_desk_queue_waits_as_long_as_the_settings_say(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """``oncall.queue_wait_s`` is Queue()'s timeout: after it the IVR takes a message."""
    settings = settings_from_mapping({"database": {"url": db_url},
                                      "oncall": {"queue_wait_s": 45}}, "callcenter.toml")
    services = HotlineServices(settings, sessionmaker, links=None,
                               router=cast(Any, None), paging=cast(Any, None))
    call = CallerChannel([])
    await services.queue(call, "frontdesk")
    assert call.commands[0] == 'EXEC Queue "frontdesk,r,,,45"'
    assert call.commands[1] == "GET VARIABLE QUEUESTATUS"
    assert settings_from_mapping({}).oncall.queue_wait_s == 300
