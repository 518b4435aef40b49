"""Pages leave through the incident's own community's PBX, over real sockets.

Two Asterisk stand-ins, two ``[[asterisk]]`` links (湖畔花园 on ``pbx-a``, 滨江苑 on
``pbx-b``), one escalation worker whose originator is the site's ``PbxRoute``. Each
engineer's phone exists on their own community's stand-in only, so a page that went
through the wrong PBX rings nobody. Then ``pbx-a`` is stopped for real (its socket
closes, the link reconnects in vain) and ``[paging] fallback`` decides: another
PBX, the person's notifiers, or waiting; the timeline says so in Chinese.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher
from callcenter.ami.client import AmiLink
from callcenter.ami.errors import ActionNotSent
from callcenter.bus import EventBus
from callcenter.directory.models import Community, StaffCommunity, StaffUser
from callcenter.notify.robots import JsonWebhook
from callcenter.oncall.router import national_number
from callcenter.oncall.services import (
    ChainSpec,
    OnCallPerson,
    ShiftInput,
    create_schedule,
    who_is_on_call,
)
from callcenter.paging.originate import (
    NOTIFY_INSTEAD,
    OriginateOutcome,
    OriginateStatus,
    PageCallRegistry,
)
from callcenter.paging.page_call import PageCallConfig, PageCallHandler
from callcenter.paging.pbx_route import Dialling, Fallback, PbxRoute, route_from_settings
from callcenter.paging.services import PagingService
from callcenter.paging.worker import EscalationWorker, WorkerConfig
from callcenter.settings import AsteriskSettings
from callcenter.simulator import AsteriskStandIn, Phone, Press, ScaledClock, Wait
from tests.ami.fakeami import FakeSettings
from tests.paging.conftest import Staff
from tests.paging.test_escalation import leak, phone_rows

SM = async_sessionmaker[AsyncSession]
B_PHONE = "13600000001"
LINKS = (AsteriskSettings(name="pbx-a", community="lakeside"),
         AsteriskSettings(name="pbx-b", community="binjiang"))


@dataclass
class Pbx:
    standin: AsteriskStandIn
    link: AmiLink
    dispatcher: AsyncAgiDispatcher

    def originates(self) -> int:
        """Calls this stand-in placed (a page's Local channel dials the phone once)."""
        return sum(1 for e in self.standin.events if ("Event", "DialBegin") in e)


@dataclass
class Site:
    sm: SM
    pbx: dict[str, Pbx]
    service: PagingService
    handler: PageCallHandler
    registry: PageCallRegistry
    bus: EventBus
    clock: ScaledClock
    hook_url: str
    hooks: list[dict[str, Any]]
    http: aiohttp.ClientSession

    def worker(self, fallback: str) -> EscalationWorker:
        route = route_from_settings(LINKS, fallback, lambda name: self.pbx[name].link,
                                    sessionmaker=lambda: self.sm)
        return EscalationWorker(
            self.sm, route, self.clock, self.bus, self.registry,
            config=WorkerConfig(trunk="Local/{number}@phones"),
            fallback_notifiers=lambda notify: [JsonWebhook(self.http, notify["webhook"])]
            if notify.get("webhook") else [])


async def _seed_binjiang(sm: SM) -> None:
    async with sm() as s:
        comm = Community(code="binjiang", name="滨江苑", hotline_numbers=[])
        s.add(comm)
        await s.flush()
        eng = StaffUser(username="b1", display_name="滨江工程师", role="engineer",
                        mobile="+86" + B_PHONE, active=True, notify={},
                        memberships=[StaffCommunity(community_id=comm.id)])
        s.add(eng)
        await s.commit()
        eng_id = eng.id
    async with sm() as s:
        await create_schedule(s, community="binjiang", role="engineer", shifts=[
            ShiftInput("全天", "00:00", "00:00", [eng_id], date(2026, 11, 23))],
            chain=[ChainSpec(0, "primary", "rotation", 0)])


async def _pbx(name: str, tmp_path: Path, clock: ScaledClock, handler: PageCallHandler) -> Pbx:
    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / name, clock=clock,
                              hotline_context="callcenter-page", prompt_seconds=0.5)
    await standin.start()
    link = AmiLink(replace(FakeSettings(name=name, port=standin.ami_port), secret="ccsecret"),
                   rng=random.Random(5), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(5)

    async def on_agi(chan: AsyncAgiChannel) -> None:
        await handler.handle(chan)

    dispatcher = AsyncAgiDispatcher(link, on_agi, command_timeout_s=10)
    dispatcher.attach()
    return Pbx(standin, link, dispatcher)


@pytest.fixture
async def site(sessionmaker: SM, staff: Staff, tmp_path: Path) -> AsyncIterator[Site]:
    await _seed_binjiang(sessionmaker)
    clock = ScaledClock(50)
    bus, registry = EventBus(), PageCallRegistry()
    service = PagingService(sessionmaker, clock, bus)
    handler = PageCallHandler(sessionmaker, service, registry,
                              PageCallConfig(digit_timeout_ms=4000))
    hooks: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        hooks.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    pbx = {s.name: await _pbx(s.name, tmp_path, clock, handler) for s in LINKS}
    async with aiohttp.ClientSession() as http:
        try:
            yield Site(sessionmaker, pbx, service, handler, registry, bus, clock,
                       f"http://127.0.0.1:{port}/hook", hooks, http)
        finally:
            for p in pbx.values():
                await p.dispatcher.close()
                await p.link.stop()
                await p.standin.stop()
            await runner.cleanup()


def accepts(number: str) -> Phone:
    return Phone(number, answer_after=1, script=[Wait(1), Press("1")])


async def on_duty(s: Site) -> OnCallPerson:
    """湖畔花园's engineer on call now (e1 and e2 take turns by the week)."""
    async with s.sm() as db:
        return (await who_is_on_call(db, "lakeside", "engineer", s.clock.now())).people[0]


def number_of(person: OnCallPerson) -> str:
    assert person.mobile
    return national_number(person.mobile)


async def _policies(s: Site) -> None:
    for code in ("lakeside", "binjiang"):
        await s.service.set_policy(code, "plumbing", [{"target": "oncall", "retries": 0}],
                                   max_rounds=1)


async def test_each_communitys_page_leaves_through_its_own_pbx(site: Site) -> None:
    s = site
    a_eng = await on_duty(s)
    s.pbx["pbx-a"].standin.add_phone(accepts(number_of(a_eng)))
    s.pbx["pbx-b"].standin.add_phone(accepts(B_PHONE))
    await _policies(s)
    worker = s.worker("wait")
    a = await s.service.open_incident(leak())
    await worker.run_due()
    assert (s.pbx["pbx-a"].originates(), s.pbx["pbx-b"].originates()) == (1, 0)
    b = await s.service.open_incident(leak(community="binjiang", building="8", room="0808"))
    await worker.run_due()
    assert (s.pbx["pbx-a"].originates(), s.pbx["pbx-b"].originates()) == (1, 1)
    for incident_id, who in ((a.incident_id, a_eng.name), (b.incident_id, "滨江工程师")):
        tl = await s.service.timeline(incident_id)
        assert phone_rows(tl) == [(who, "accepted")] and tl["state"] == "acknowledged"
        assert tl["attempts"][0]["detail"] == ""  # nothing unusual to say


async def test_a_community_whose_pbx_is_down_is_paged_through_the_configured_other(
        site: Site) -> None:
    s = site
    a_eng = await on_duty(s)
    s.pbx["pbx-b"].standin.add_phone(accepts(number_of(a_eng)))  # B's trunk reaches it too
    await _policies(s)
    await s.pbx["pbx-a"].standin.stop()  # a real socket closed: the link is down
    opened = await s.service.open_incident(leak())
    await s.worker("pbx:pbx-b").run_due()
    tl = await s.service.timeline(opened.incident_id)
    assert phone_rows(tl) == [(a_eng.name, "accepted")] and tl["state"] == "acknowledged"
    assert s.pbx["pbx-b"].originates() == 1
    assert tl["attempts"][0]["detail"] == "本小区线路（湖畔花园的线路）不可用，改由滨江苑的线路呼叫"


async def test_a_community_whose_pbx_is_down_gets_its_pages_through_the_notifiers(
        site: Site) -> None:
    s = site
    a_eng = await on_duty(s)
    async with s.sm() as db:
        eng = await db.get(StaffUser, a_eng.user_id)
        assert eng is not None
        eng.notify = {"webhook": s.hook_url}
        await db.commit()
    await _policies(s)
    await s.pbx["pbx-a"].standin.stop()
    opened = await s.service.open_incident(leak())
    worker = s.worker("notifiers")
    await worker.run_due()
    await worker.drain_side_tasks()
    tl = await s.service.timeline(opened.incident_id)
    phone = [a for a in tl["attempts"] if a["channel"] == "phone" and a["person"] == a_eng.name]
    assert phone and phone[-1]["error_code"] == NOTIFY_INSTEAD
    assert phone[-1]["detail"] == "本小区线路（湖畔花园的线路）不可用，改由消息通知"
    sent = [a for a in tl["attempts"] if a["channel"] == "webhook"]
    assert sent and sent[0]["outcome"] == "sent"
    assert any("改由消息通知" in str(h) for h in s.hooks)
    assert s.pbx["pbx-b"].originates() == 0  # no other PBX was asked


async def test_a_community_without_a_link_waits_and_says_so(site: Site, sessionmaker: SM
                                                            ) -> None:
    s = site
    async with sessionmaker() as db:
        db.add(Community(code="nolink", name="无线路小区", hotline_numbers=[]))
        await db.commit()
    async with sessionmaker() as db:
        await create_schedule(db, community="nolink", role="engineer", shifts=[
            ShiftInput("全天", "00:00", "00:00", [1], date(2026, 11, 23))],
            chain=[ChainSpec(0, "primary", "rotation", 0)])
    await s.service.set_policy("nolink", "plumbing", [{"target": "oncall", "retries": 0}])
    opened = await s.service.open_incident(leak(community="nolink"))
    await s.worker("wait").run_due()
    tl = await s.service.timeline(opened.incident_id)
    assert [a["outcome"] for a in tl["attempts"]] == ["deferred"]
    assert tl["attempts"][0]["detail"].startswith("本小区没有配置电话线路，等线路恢复后再呼叫")
    assert tl["next_step"], "the step is due again"
    assert s.pbx["pbx-a"].originates() == s.pbx["pbx-b"].originates() == 0


class _Recording:
    """An originator that says the PBX is down, or answers, and notes each channel."""

    def __init__(self, status: OriginateStatus, reason: str = "") -> None:
        self.status, self.reason = status, reason
        self.channels: list[str] = []

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str], timeout: float,  # noqa: ASYNC109
                        *, community: str | None = None) -> OriginateOutcome:
        self.channels.append(channel)
        return OriginateOutcome(self.status, self.reason)


async def test_a_page_through_another_pbx_uses_that_pbxs_trunk() -> None:
    down = _Recording(OriginateStatus.UNAVAILABLE, ActionNotSent.error_id)
    up = _Recording(OriginateStatus.ANSWERED, "4")
    route = PbxRoute({"pbx-a": down, "pbx-b": up}, {"lakeside": "pbx-a", "binjiang": "pbx-b"},
                     Fallback.parse("pbx:pbx-b"),
                     dialling={"pbx-a": Dialling("PJSIP/{number}@trunk-a", "PJSIP/{extension}"),
                               "pbx-b": Dialling("SIP/b-trunk/{number}", "SIP/{extension}")},
                     source=Dialling("PJSIP/{number}@trunk-a", "PJSIP/{extension}"))
    for channel in ("PJSIP/13800000001@trunk-a", "PJSIP/8010"):
        result = await route.originate(channel, "callcenter-page", "1", {}, 30,
                                       community="lakeside")
        assert result.status is OriginateStatus.ANSWERED
    assert down.channels == ["PJSIP/13800000001@trunk-a", "PJSIP/8010"]
    assert up.channels == ["SIP/b-trunk/13800000001", "SIP/8010"]
    assert "改由pbx-b线路呼叫" in result.note
