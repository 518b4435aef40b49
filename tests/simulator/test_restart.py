"""The stand-in's restart against capture 11 (``core restart now`` on a real
Asterisk 20.20.1), its AstDB, and the printed hotline's heartbeat check, over
real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, ScaledClock, Wait
from callcenter.simulator.captures import Block, read_capture
from tests.simulator.amiclient import MiniAmi
from tests.simulator.replay import FIXTURES

CAPTURE = read_capture(FIXTURES / "11_restart.txt")


def _received(pred: object) -> Block:
    return next(b for b in CAPTURE if not b.sent and pred(b))  # type: ignore[operator]


def _fields(block: Block, *drop: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in block.fields if k not in ("ActionID", *drop)]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    s = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm", clock=ScaledClock(25),
                        restart_shutdown_s=0.3, restart_downtime=0.1, restart_boot_s=0.3)
    s.add_member("frontdesk", "Local/8001@agents/n", "前台小李")
    await s.start()
    yield s
    await s.stop()


async def test_restart_follows_capture_11(standin: AsteriskStandIn) -> None:
    c = await MiniAmi.connect(standin.ami_port)
    await c.login()
    standin.place_call(Caller(number="13800000011", name="Rig Caller", context="queue-entry",
                              script=[Wait(120)]))
    await c.wait_event("QueueCallerJoin")
    restart = asyncio.ensure_future(standin.restart())
    # the live call is hung up at once: SoftHangupRequest Cause 4, then Hangup Cause 0
    soft = await c.wait_event("SoftHangupRequest", within=2)
    hangup = await c.wait_event("Hangup", within=2)
    assert (soft["Cause"], hangup["Cause"]) == ("4", "0")
    # Ping and Originate are refused while it shuts down
    refused = _received(lambda b: b.get("Message") == "Asterisk is shutting down")
    for action in ("Ping", "Originate"):
        got = await c.action(action, ("Channel", "Local/s@rig-caller"), ("Application", "Wait"),
                             ("Async", "true"))
        assert _fields(_as_block(got)) == _fields(refused)
    shutdown = await c.wait_event("Shutdown", within=3)
    assert _fields(_as_block(shutdown)) == _fields(_received(lambda b: b.event == "Shutdown"))
    with pytest.raises(ConnectionError):
        await c.wait_for(lambda f: False, 3)
    await c.close()
    # the new Asterisk: logins before FullyBooted, app_queue not loaded yet
    c2 = await _connect_when_back(standin)
    login = await c2.login()
    assert login["Response"] == "Success"
    queues = await c2.action("QueueStatus")
    unknown = _received(lambda b: (b.get("Message") or "").startswith("Invalid/unknown command"))
    assert _fields(_as_block(queues)) == _fields(unknown)
    bad = await c2.wait_event("RequestBadFormat")
    assert bad["RequestType"] == "Action: QueueStatus"
    channels = await c2.action("CoreShowChannels")
    assert channels["Response"] == "Success"
    assert (await c2.wait_event("CoreShowChannelsComplete"))["ListItems"] == "0"
    booted = await c2.wait_event("FullyBooted", within=3)
    assert [k for k, _ in booted.headers] == [k for k, _ in _received(
        lambda b: b.event == "FullyBooted" and b.get("Uptime") == "0").fields]
    assert booted["Uptime"] == "0"
    await restart
    ok = await c2.action("QueueStatus")
    assert ok["Response"] == "Success"
    member = await c2.wait_event("QueueMember")
    assert member["Name"] == "前台小李"  # members persist (persistentmembers = yes)
    await c2.close()


def _as_block(frame: object) -> Block:
    return Block(False, list(frame.headers))  # type: ignore[attr-defined]


async def _connect_when_back(standin: AsteriskStandIn) -> MiniAmi:
    for _ in range(200):
        try:
            return await MiniAmi.connect(standin.ami_port)
        except OSError:
            await asyncio.sleep(0.01)
    raise AssertionError("the stand-in never came back")


async def test_astdb_answers_as_asterisk_and_survives_a_restart(standin: AsteriskStandIn) -> None:
    c = await MiniAmi.connect(standin.ami_port)
    await c.login()
    missing = await c.action("DBGet", ("Family", "callcenter"), ("Key", "alive"))
    assert (missing["Response"], missing["Message"]) == ("Error", "Database entry not found")
    put = await c.action("DBPut", ("Family", "callcenter"), ("Key", "alive"), ("Val", "1796284309"))
    assert (put["Response"], put["Message"]) == ("Success", "Updated database successfully")
    got = await c.action("DBGet", ("Family", "callcenter"), ("Key", "alive"))
    assert (got["EventList"], got["Message"]) == ("start", "Result will follow")
    value = await c.wait_event("DBGetResponse")
    assert [(k, v) for k, v in value.headers if k != "ActionID"] == [
        ("Event", "DBGetResponse"), ("Family", "callcenter"), ("Key", "alive"), ("Val", "1796284309")]
    assert (await c.wait_event("DBGetComplete"))["ListItems"] == "1"
    no_key = await c.action("DBPut", ("Family", "callcenter"))
    assert no_key["Message"] == "No key specified"
    await c.close()
    await standin.restart(shutdown_s=0.05, boot_s=0.0)
    c2 = await _connect_when_back(standin)
    await c2.login()
    await c2.action("DBGet", ("Family", "callcenter"), ("Key", "alive"))
    assert (await c2.wait_event("DBGetResponse"))["Val"] == "1796284309"  # AstDB is on disk
    deleted = await c2.action("DBDel", ("Family", "callcenter"), ("Key", "alive"))
    assert deleted["Message"] == "Key deleted successfully"
    again = await c2.action("DBDel", ("Family", "callcenter"), ("Key", "alive"))
    assert (again["Response"], again["Message"]) == ("Error", "Database entry not found")
    await c2.close()


def _guarded(tmp_path: Path, **kw: object) -> AsteriskStandIn:
    return AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm", clock=ScaledClock(25),
                           hotline_context="callcenter-hotline", heartbeat_max_age=15,
                           fallback_mailbox="8000@default", prompt_seconds=0.2, **kw)  # type: ignore[arg-type]


async def test_no_heartbeat_means_the_duty_phone_rings_instead_of_silence(tmp_path: Path) -> None:
    """Server down before the call: no AsyncAGIStart waits for nobody; the duty phone answers."""
    s = _guarded(tmp_path, fallback_dial="PJSIP/8102",
                 phones=[Phone("8102", "夜班 老刘", answer_after=1, script=[Wait(5)])])
    await s.start()
    try:
        call = s.place_call(Caller(number="13812345678", context="callcenter-hotline", did="4008001234",
                                   script=[Wait(20)]))
        for _ in range(300):
            names = [dict(e).get("Event") for e in s.events]
            if "DialEnd" in names:
                break
            await asyncio.sleep(0.01)
        events = [dict(e) for e in s.events]
        assert not [e for e in events if e.get("Event") == "AsyncAGIStart"]
        assert s.pbx.hotline_guard is not None and s.pbx.hotline_guard.fallbacks == [call.app.uniqueid]
        dial = next(e for e in events if e.get("Event") == "DialEnd")
        assert dial["DialStatus"] == "ANSWER" and "8102" in dial["DestChannel"]
    finally:
        await s.stop()


async def test_stale_heartbeat_and_nobody_at_the_duty_phone_leaves_a_voicemail(tmp_path: Path) -> None:
    s = _guarded(tmp_path)  # no duty phone configured: straight to the repair mailbox
    s.astdb.put("callcenter", "alive", str(int(time.time()) - 60))  # the server died a minute ago
    await s.start()
    try:
        s.place_call(Caller(number="13812345678", context="callcenter-hotline", script=[Wait(3), HangUp()]))
        for _ in range(300):
            if any(dict(e).get("Event") == "MessageWaiting" for e in s.events):
                break
            await asyncio.sleep(0.01)
        assert s.spool.count("default", "8000")[0] == 1
        assert not [e for e in s.events if dict(e).get("Event") == "AsyncAGIStart"]
    finally:
        await s.stop()


async def test_fresh_heartbeat_runs_agi_async(tmp_path: Path) -> None:
    s = _guarded(tmp_path)
    s.astdb.put("callcenter", "alive", str(int(time.time())))
    await s.start()
    try:
        s.place_call(Caller(number="13812345678", context="callcenter-hotline", script=[Wait(30)]))
        for _ in range(300):
            if any(dict(e).get("Event") == "AsyncAGIStart" for e in s.events):
                break
            await asyncio.sleep(0.01)
        assert any(dict(e).get("Event") == "AsyncAGIStart" for e in s.events)
        assert s.pbx.hotline_guard is not None and s.pbx.hotline_guard.fallbacks == []
    finally:
        await s.stop()


def test_printed_hotline_checks_the_heartbeat_before_agi_async() -> None:
    """What the stand-in's HotlineGuard models is what asterisk-config prints."""
    from dataclasses import replace

    from callcenter.asterisk_config import extensions_conf
    from callcenter.settings import AsteriskSettings, Settings

    conf = extensions_conf(Settings(), replace(AsteriskSettings(), fallback_dial="PJSIP/8102",
                                               heartbeat_interval_s=5))
    block = conf.split("[callcenter-hotline]", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in block.splitlines() if not line.strip().startswith(";")]
    check = lines.index("same => n,GotoIf($[${DB_EXISTS(callcenter/alive)} = 0]?fallback)")
    assert lines[check + 1] == "same => n,GotoIf($[${EPOCH} - ${DB_RESULT} > 15]?fallback)"
    assert lines.index("same => n,AGI(agi:async)") > check + 1
    # a fresh heartbeat of a dead server: no server within 15 s → exten T → the fallback
    assert lines[lines.index("same => n,AGI(agi:async)") - 1] == "same => n,Set(TIMEOUT(absolute)=15)"
    assert "exten => T,1,Goto(${CC_DID},fallback)" in lines
    assert lines[lines.index("same => n(fallback),Playback(sorry-system)") + 1] == \
        "same => n,Dial(PJSIP/8102,30)"
    assert "same => n,VoiceMail(8000@default,u)" in lines
    fastagi = conf.split("[callcenter-hotline-fastagi]", 1)[1].split("\n\n", 1)[0]
    assert "Dial(PJSIP/8102,30)" in fastagi and "VoiceMail(8000@default,u)" in fastagi


async def test_fresh_heartbeat_but_no_server_times_out_into_the_fallback(tmp_path: Path) -> None:
    """The server was killed a moment ago: its heartbeat is still fresh, so the call
    enters AGI(agi:async), but nobody takes it. TIMEOUT(absolute) (agi_wait_s) sends it
    to exten T: the repair mailbox takes the message instead of silence forever."""
    s = _guarded(tmp_path, agi_wait_s=10)  # 10 s on the stand-in's clock (25x): 0.4 s
    s.astdb.put("callcenter", "alive", str(int(time.time())))
    await s.start()
    try:
        call = s.place_call(Caller(number="13812345678", context="callcenter-hotline",
                                   script=[Wait(30), HangUp()]))
        for _ in range(300):
            if any(dict(e).get("Event") == "MessageWaiting" for e in s.events):
                break
            await asyncio.sleep(0.01)
        names = [dict(e).get("Event") for e in s.events]
        assert "AsyncAGIStart" in names and "AsyncAGIEnd" in names
        assert names.index("AsyncAGIEnd") < names.index("MessageWaiting")
        assert s.pbx.hotline_guard is not None and s.pbx.hotline_guard.fallbacks == [call.app.uniqueid]
        assert s.spool.count("default", "8000")[0] == 1
    finally:
        await s.stop()


async def test_a_server_that_takes_the_call_lifts_the_agi_timeout(tmp_path: Path) -> None:
    s = _guarded(tmp_path, agi_wait_s=10)
    s.astdb.put("callcenter", "alive", str(int(time.time())))
    await s.start()
    c = await MiniAmi.connect(s.ami_port)
    try:
        await c.login()
        call = s.place_call(Caller(number="13812345678", context="callcenter-hotline", script=[Wait(60)]))
        start = await c.wait_event("AsyncAGIStart")
        r = await c.action("AGI", ("Channel", start["Channel"] or ""),
                           ("Command", 'SET VARIABLE TIMEOUT(absolute) "0"'), ("CommandID", "lift"))
        assert r["Response"] == "Success"
        await c.wait_event("AsyncAGIExec")
        await asyncio.sleep(0.8)  # twice the timeout it would have had
        assert call.agi is not None and call.agi.running and not call.agi.timed_out
        assert s.pbx.hotline_guard is not None and s.pbx.hotline_guard.fallbacks == []
    finally:
        await c.close()
        await s.stop()
