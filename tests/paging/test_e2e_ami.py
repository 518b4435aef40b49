"""Paging end to end over real sockets: the worker originates through the AMI
client (Async: true) to a scripted AMI server; the answered call comes back as
AsyncAGI, the page-call script plays the incident and reads the key.

The server here plays Asterisk and the phones: ``no_answer`` ends with
``OriginateResponse`` Failure (Reason 3); ``press:<d>`` answers, starts
AsyncAGI on the new channel, and presses ``d`` at the menu prompt.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.asyncagi import AsyncAgiChannel, AsyncAgiDispatcher
from callcenter.ami.client import AmiLink
from callcenter.ami.parser import Frame, encode_frame
from callcenter.bus import EventBus
from callcenter.clock import ManualClock
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.originate import PageCallRegistry
from callcenter.paging.page_call import PageCallConfig, PageCallHandler, is_page_call
from callcenter.paging.services import PagingService
from callcenter.paging.worker import EscalationWorker
from tests.ami.fakeami import FakeAmi, FakeSettings
from tests.paging.conftest import Staff, target
from tests.paging.test_escalation import leak, phone_rows

SM = async_sessionmaker[AsyncSession]


class PhoneNetwork:
    def __init__(self, ami: FakeAmi, phones: dict[str, list[str]]) -> None:
        self.ami = ami
        self.phones = {k: list(v) for k, v in phones.items()}
        self.calls: dict[str, dict[str, str]] = {}  # uniqueid → channel variables
        self.digit: dict[str, str] = {}
        self.channel: dict[str, str] = {}
        self.agi_commands: list[str] = []
        self._seq = itertools.count(1)
        ami.handlers["originate"] = self.originate
        ami.handlers["agi"] = self.agi

    def originate(self, f: Frame) -> list[bytes]:
        aid, dial = f["ActionID"], f["Channel"] or ""
        out = [encode_frame([("Response", "Success"), ("ActionID", aid),
                             ("Message", "Originate successfully queued")])]
        plan = self.phones.get(dial) or ["no_answer"]
        what = plan.pop(0) if len(plan) > 1 else plan[0]
        if what == "no_answer":
            out.append(encode_frame([("Event", "OriginateResponse"), ("ActionID", aid),
                                     ("Response", "Failure"), ("Channel", dial),
                                     ("Reason", "3")]))
            return out
        uid = f"1700000200.{next(self._seq)}"
        chan = f"{dial.split('@')[0]}-0000000{uid[-1]}"
        variables = dict(v.split("=", 1) for v in f.getall("Variable"))
        self.calls[uid], self.digit[uid], self.channel[uid] = variables, what.split(":")[1], chan
        env = quote(f"agi_request: async\nagi_channel: {chan}\nagi_uniqueid: {uid}\n"
                    f"agi_callerid: 4000\nagi_context: {f['Context']}\n\n")
        out.append(encode_frame([("Event", "AsyncAGIStart"), ("Channel", chan),
                                 ("Uniqueid", uid), ("Linkedid", uid), ("Env", env)]))
        out.append(encode_frame([("Event", "OriginateResponse"), ("ActionID", aid),
                                 ("Response", "Success"), ("Channel", chan), ("Reason", "4"),
                                 ("Uniqueid", uid)]))
        return out

    def agi(self, f: Frame) -> list[bytes]:
        aid, cid, command, chan = f["ActionID"], f["CommandID"], f["Command"] or "", f["Channel"]
        uid = next(u for u, c in self.channel.items() if c == chan)
        self.agi_commands.append(command)
        out = [encode_frame([("Response", "Success"), ("ActionID", aid),
                             ("Message", "Added AGI command to queue")])]
        result = "200 result=0"
        if command.startswith("GET VARIABLE"):
            name = command.split()[2]
            value = self.calls[uid].get(name)
            result = f"200 result=1 ({value})" if value is not None else "200 result=0"
        elif command.startswith("STREAM FILE") and "paging-menu" in command:
            result = f"200 result={ord(self.digit[uid])} endpos=4000"
        elif command.startswith("STREAM FILE"):
            result = "200 result=0 endpos=16000"
        elif command == "HANGUP":
            result = "200 result=1"
        out.append(encode_frame([("Event", "AsyncAGIExec"), ("Channel", chan), ("Uniqueid", uid),
                                 ("Result", quote(result + "\n")), ("CommandId", cid)]))
        if command == "HANGUP":
            out.append(encode_frame([("Event", "Hangup"), ("Channel", chan), ("Uniqueid", uid),
                                     ("Cause", "16")]))
        return out


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


async def test_page_over_ami_and_asyncagi(sessionmaker: SM, staff: Staff, ami: FakeAmi) -> None:
    network = PhoneNetwork(ami, {target("e1"): ["no_answer"], target("e2"): ["press:1"]})
    link = AmiLink(FakeSettings(port=ami.port), rng=random.Random(3), reconnect_base_s=0.01)
    link.start()
    await link.wait_connected(2)
    clock, bus, registry = ManualClock(), EventBus(), PageCallRegistry()
    service = PagingService(sessionmaker, clock, bus)
    handler = PageCallHandler(sessionmaker, service, registry, PageCallConfig(digit_timeout_ms=500))

    async def on_agi(chan: AsyncAgiChannel) -> None:
        # One AsyncAGI entry point for IVR and pages: the context tells them apart.
        assert is_page_call(chan)
        await handler.handle(chan)

    dispatcher = AsyncAgiDispatcher(link, on_agi, command_timeout_s=5)
    dispatcher.attach()
    worker = EscalationWorker(sessionmaker, AmiOriginator(link), clock, bus, registry)
    try:
        await service.set_policy("lakeside", "plumbing", [
            {"target": "oncall", "retries": 0}, {"target": "backup", "retries": 0}])
        opened = await service.open_incident(leak())
        await worker.run_due()
        tl = await service.timeline(opened.incident_id)
        assert phone_rows(tl) == [("工程师e1", "no_answer"), ("工程师e2", "accepted")]
        assert tl["attempts"][0]["error_code"] == "3"
        assert tl["state"] == "acknowledged" and tl["acked_by_user_id"] == staff.e2
        sent = ami.actions("Originate")
        assert [s.get("Channel") for s in sent] == [target("e1"), target("e2")]
        assert all(s.get("Async") == "true" and s.get("Context") == "callcenter-page"
                   and s.get("Exten") == str(opened.incident_id) for s in sent)
        assert sent[1].getall("Variable") == [f"CC_INCIDENT={opened.incident_id}",
                                              f"CC_PAGE_ATTEMPT={tl['attempts'][1]['id']}"]
        cmds = network.agi_commands
        assert cmds[0] == "GET VARIABLE CC_PAGE_ATTEMPT"
        assert 'SAY NUMBER 3 "12"' in cmds and 'SAY DIGITS 1203 "12"' in cmds
        assert any("paging-accepted" in c for c in cmds) and cmds[-1] == "HANGUP"
    finally:
        await worker.stop()
        await dispatcher.close()
        await link.stop()
