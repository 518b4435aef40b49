"""The stand-in's behaviour beyond the captures: login, hooks, scripted parties."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from callcenter.simulator import (
    Answer,
    AsteriskStandIn,
    Caller,
    HangUp,
    Phone,
    Press,
    Say,
    ScaledClock,
    StandInConfigError,
    Wait,
)
from callcenter.simulator.voicemail import write_silence
from tests.simulator.amiclient import MiniAmi

SPEED = 50.0


def make(tmp_path: Path, **kw: object) -> AsteriskStandIn:
    return AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp_path / "vm", clock=ScaledClock(SPEED),
                           record_root=tmp_path / "rec", restart_downtime=0.2, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[AsteriskStandIn]:
    s = make(tmp_path, phones=[Phone("8001", "前台小李", answer_after=1), Phone("8002", behaviour=Answer.BUSY),
                               Phone("8003", behaviour=Answer.NO_ANSWER), Phone("8004", behaviour=Answer.UNREACHABLE)])
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def client(standin: AsteriskStandIn) -> AsyncIterator[MiniAmi]:
    c = await MiniAmi.connect(standin.ami_port)
    r = await c.login()
    assert r["Response"] == "Success"
    await c.wait_event("SuccessfulAuth")
    yield c
    await c.close()


async def agi(c: MiniAmi, channel: str, command: str) -> str:
    r = await c.action("AGI", ("Channel", channel), ("Command", command), ("CommandID", command))
    assert r["Message"] == "Added AGI command to queue", r.headers
    e = await c.wait_event("AsyncAGIExec", CommandId=command)
    return unquote(e["Result"]).rstrip("\n")


# ------------------------------------------------------------------ login
async def test_wrong_secret_is_refused_and_the_link_closed(standin: AsteriskStandIn) -> None:
    c = await MiniAmi.connect(standin.ami_port)
    r = await c.login(secret="wrong")
    assert (r["Response"], r["Message"]) == ("Error", "Authentication failed")
    with pytest.raises(ConnectionError):
        await c.wait_for(lambda f: True, 2)
    await c.close()


async def test_md5_challenge_login(standin: AsteriskStandIn) -> None:
    c = await MiniAmi.connect(standin.ami_port)
    r = await c.action("Challenge", ("AuthType", "MD5"))
    key = hashlib.md5((r["Challenge"] + "ccsecret").encode()).hexdigest()
    r = await c.action("Login", ("AuthType", "MD5"), ("Username", "cc"), ("Key", key))
    assert r["Message"] == "Authentication accepted"
    await c.wait_event("FullyBooted")
    await c.close()


async def test_actions_before_login_and_unknown_actions(standin: AsteriskStandIn) -> None:
    c = await MiniAmi.connect(standin.ami_port)
    r = await c.action("Ping")
    assert (r["Response"], r["Message"]) == ("Error", "Permission denied")
    await c.login()
    r = await c.action("NoSuchThing")
    assert (r["Response"], r["Message"]) == ("Error", "Invalid/unknown command")
    r = await c.action("Ping")
    assert r["Ping"] == "Pong" and float(r["Timestamp"]) > 0
    r = await c.action("Logoff")
    assert r["Response"] == "Goodbye"
    await c.close()


# ------------------------------------------------------------------ hooks
async def test_tiny_segments_keep_utf8_intact_for_a_byte_by_byte_parser(tmp_path: Path) -> None:
    s = make(tmp_path, segment_size=1)
    await s.start()
    try:
        c = await MiniAmi.connect(s.ami_port, chunk=1)
        await c.login()
        s.place_call(Caller(number="13812345678", name="王建国", script=[Wait(1), HangUp()]))
        e = await c.wait_event("NewCallerid")
        assert e["CallerIDName"] == "王建国"
        start = await c.wait_event("AsyncAGIStart")
        assert "agi_calleridname: 王建国\n" in unquote(start["Env"])
        assert all(not f.errors for f in c.frames)
        await c.close()
    finally:
        await s.stop()


async def test_drop_clients_cuts_the_link_and_a_new_login_works(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.drop_clients()
    with pytest.raises(ConnectionError):
        await client.wait_for(lambda f: True, 2)
    c2 = await MiniAmi.connect(standin.ami_port)
    assert (await c2.login())["Response"] == "Success"
    await c2.close()


async def test_restart_sends_shutdown_refuses_then_comes_back_without_old_channels(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.place_call(Caller(number="13812345678", name="王建国", script=[Wait(60)]))
    old = await client.wait_event("AsyncAGIStart")
    restart = asyncio.ensure_future(standin.restart())
    e = await client.wait_event("Shutdown")
    assert e["Restart"] == "True"
    with pytest.raises(ConnectionError):
        await client.wait_for(lambda f: True, 2)
    await asyncio.sleep(0.05)
    with pytest.raises(OSError):
        await MiniAmi.connect(standin.ami_port)
    await restart
    c2 = await MiniAmi.connect(standin.ami_port)
    await c2.login()
    r = await c2.action("CoreShowChannels")
    done = await c2.wait_event("CoreShowChannelsComplete")
    assert r["Response"] == "Success" and done["ListItems"] == "0"
    standin.place_call(Caller(number="13812345678", script=[Wait(60)]))
    new = await c2.wait_event("AsyncAGIStart")
    assert new["Uniqueid"] != old["Uniqueid"] and new["Channel"] != old["Channel"]
    await c2.close()


async def test_freeze_actions_accepts_but_never_answers(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.freeze_actions()
    aid = client.send("Ping")
    with pytest.raises(TimeoutError):
        await client.wait_for(lambda f: f.action_id == aid, 0.2)
    standin.freeze_actions(False)
    r = await client.action("Ping")
    assert r["Ping"] == "Pong"
    standin.freeze_actions(include_login=True)
    c2 = await MiniAmi.connect(standin.ami_port)
    aid = c2.send("Login", ("Username", "cc"), ("Secret", "ccsecret"))
    with pytest.raises(TimeoutError):
        await c2.wait_for(lambda f: f.action_id == aid, 0.2)
    await c2.close()


async def test_send_raw_injects_junk_and_split_frames(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.send_raw(b"this is junk\r\n\r\nEvent: Custom\r\nName: \xe7\x8e")
    standin.send_raw(b"\x8b\r\n\r\n")
    e = await client.wait_event("Custom")
    assert e["Name"] == "王"
    assert any(f.errors for f in client.frames)


# ------------------------------------------------------------ AsyncAGI calls
async def test_trunk_caller_presses_digits_into_get_data(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.place_call(Caller(number="13812345678", name="王建国", did="4008001234",
                              script=[Wait(2), Press("12"), Wait(30)]))
    first = await client.wait_event("Newchannel")
    assert first["CallerIDName"] == "<unknown>" and first["CallerIDNum"] == "13812345678"
    start = await client.wait_event("AsyncAGIStart")
    env = unquote(start["Env"])
    assert "agi_dnid: 4008001234\n" in env and "agi_calleridname: 王建国\n" in env
    ch = start["Channel"]
    assert await agi(client, ch, "ANSWER") == "200 result=0"
    assert await agi(client, ch, "GET DATA welcome 3000 2") == "200 result=12"
    assert await agi(client, ch, "GET DATA welcome 500 2") == "200 result= (timeout)"
    assert await agi(client, ch, "WAIT FOR DIGIT 100") == "200 result=0"
    assert await agi(client, ch, "SAY NUMBER 42 \"\"") == "200 result=0"
    assert await agi(client, ch, "SET VARIABLE 房号 1-2-301") == "200 result=1"
    assert await agi(client, ch, "GET VARIABLE 房号") == "200 result=1 (1-2-301)"
    assert await agi(client, ch, "GET VARIABLE NOPE") == "200 result=0"
    assert await agi(client, ch, "FROB NICATE") == "510 Invalid or unknown command"
    assert await agi(client, ch, "EXEC NoSuchApp x") == "200 result=-2"


async def test_stream_file_is_interrupted_by_an_escape_digit(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.pbx.prompt_seconds = 10.0
    standin.place_call(Caller(number="13812345678", script=[Wait(1), Press("9"), Wait(30)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    reply = await agi(client, ch, 'STREAM FILE welcome "19"')
    assert reply.startswith(f"200 result={ord('9')} endpos=")


async def test_caller_hangs_up_during_agi(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.pbx.prompt_seconds = 30.0
    standin.place_call(Caller(number="13812345678", script=[Wait(2), HangUp()]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    assert await agi(client, ch, 'STREAM FILE welcome ""') == "200 result=-1"
    await client.wait_event("AsyncAGIEnd", Channel=ch)
    h = await client.wait_event("Hangup", Channel=ch)
    assert (h["Cause"], h["Cause-txt"]) == ("16", "Normal Clearing")
    r = await client.action("AGI", ("Channel", ch), ("Command", "ANSWER"))
    assert (r["Response"], r["Message"]) == ("Error", f"Channel {ch} does not exist.")


async def test_record_file_writes_the_callers_wav(standin: AsteriskStandIn, client: MiniAmi, tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    write_silence(wav, 1.5)
    standin.place_call(Caller(number="13812345678", script=[Say(wav, 1.5), Wait(30)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    reply = await agi(client, ch, f'RECORD FILE {tmp_path}/out wav "#" 2000')
    assert reply.startswith("200 result=1 (timeout) endpos=")
    assert (tmp_path / "rec" / str(tmp_path).lstrip("/") / "out.wav").read_bytes() == wav.read_bytes()


async def test_asyncagi_break_continues_the_dialplan_to_hangup(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.place_call(Caller(number="13812345678", script=[Wait(60)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    assert await agi(client, ch, "ASYNCAGI BREAK") == "200 result=0"
    await client.wait_event("AsyncAGIEnd", Channel=ch)
    await client.wait_event("Hangup", Channel=ch)
    assert standin.pbx.find(ch) is None


# ------------------------------------------------------------- Originate
@pytest.mark.parametrize(("number", "reason"), [("8001", "4"), ("8002", "5"), ("8003", "3"), ("8004", "8")])
async def test_originate_reasons(standin: AsteriskStandIn, client: MiniAmi, number: str, reason: str) -> None:
    r = await client.action("Originate", ("Channel", f"Local/{number}@phones"), ("Context", "hotline"),
                            ("Exten", "s"), ("Priority", "1"), ("Async", "true"), ("Timeout", "5000"),
                            ("CallerID", '"物业中心" <4008001234>'))
    assert r["Message"] == "Originate successfully queued"
    e = await client.wait_event("OriginateResponse", ActionID=r["ActionID"])
    assert e["Reason"] == reason
    assert e["Response"] == ("Success" if reason == "4" else "Failure")


async def test_sync_originate_replies_after_the_outcome(standin: AsteriskStandIn, client: MiniAmi) -> None:
    r = await client.action("Originate", ("Channel", "PJSIP/8002"), ("Context", "hotline"), ("Exten", "s"),
                            ("Priority", "1"))
    assert (r["Response"], r["Message"]) == ("Error", "Originate failed")
    r = await client.action("Originate", ("Channel", "PJSIP/8001"), ("Application", "Playback"),
                            ("Data", "hello-world"))
    assert r["Response"] == "Success"


# ----------------------------------------------------------- queue, dial, vm
async def test_exec_queue_rings_members_and_bridges(standin: AsteriskStandIn, client: MiniAmi) -> None:
    r = await client.action("QueueAdd", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"),
                            ("MemberName", "前台小李"))
    assert r["Message"] == "Added interface to queue"
    r = await client.action("QueueAdd", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"))
    assert r["Response"] == "Error"
    standin.place_call(Caller(number="13812345678", name="王建国", script=[Wait(8), HangUp()]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    client.send("AGI", ("Channel", ch), ("Command", "EXEC Queue frontdesk"), ("CommandID", "q"))
    join = await client.wait_event("QueueCallerJoin")
    called = await client.wait_event("AgentCalled")
    assert called["MemberName"] == "前台小李" and called["Interface"] == "PJSIP/8001"
    assert called["Linkedid"] == join["Linkedid"] == called["DestLinkedid"]
    connect = await client.wait_event("AgentConnect")
    assert connect["DestChannel"].startswith("PJSIP/8001-")
    await client.wait_event("BridgeEnter", Channel=ch)
    complete = await client.wait_event("AgentComplete")
    assert complete["Reason"] == "caller"
    result = await client.wait_event("AsyncAGIExec", CommandId="q")
    assert unquote(result["Result"]) == "200 result=-1\n"


async def test_queue_status_shows_a_waiting_caller_who_then_abandons(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    await client.action("QueueAdd", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"), ("Paused", "true"))
    standin.place_call(Caller(number="13812345678", name="王建国", context="queue-entry",
                              script=[Wait(5), HangUp()]))
    await client.wait_event("QueueCallerJoin")
    r = await client.action("QueueStatus", ("Queue", "frontdesk"))
    assert r["EventList"] == "start"
    member = await client.wait_event("QueueMember")
    assert member["Paused"] == "1"
    entry = await client.wait_event("QueueEntry")
    assert entry["CallerIDName"] == "王建国"
    await client.wait_event("QueueStatusComplete")
    abandon = await client.wait_event("QueueCallerAbandon")
    assert abandon["Queue"] == "frontdesk"
    await client.wait_event("QueueCallerLeave")


async def test_agent_ring_no_answer(tmp_path: Path) -> None:
    s = make(tmp_path, phones=[Phone("8003", behaviour=Answer.NO_ANSWER)], member_ring_timeout=2.0)
    await s.start()
    try:
        c = await MiniAmi.connect(s.ami_port)
        await c.login()
        await c.action("QueueAdd", ("Queue", "frontdesk"), ("Interface", "PJSIP/8003"))
        s.place_call(Caller(number="13812345678", context="queue-entry", script=[Wait(30)]))
        rna = await c.wait_event("AgentRingNoAnswer")
        assert rna["Interface"] == "PJSIP/8003"
        end = await c.wait_for(lambda f: f.event == "DialEnd" and (f.get("DestChannel") or "").startswith("PJSIP/8003"))
        assert end["DialStatus"] == "NOANSWER"
        await c.close()
    finally:
        await s.stop()


async def test_exec_dial_busy_and_answered(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.add_phone(Phone("13900001111", answer_after=1, script=[Wait(2), HangUp()]))
    standin.place_call(Caller(number="13812345678", script=[Wait(60)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    assert await agi(client, ch, "EXEC Dial PJSIP/8002,20") == "200 result=0"
    assert await agi(client, ch, "GET VARIABLE DIALSTATUS") == "200 result=1 (BUSY)"
    # the phone answered and hung up first: -1, as Asterisk's Dial (capture 08), the caller still up
    assert await agi(client, ch, "EXEC Dial Local/13900001111@phones,20") == "200 result=-1"
    assert await agi(client, ch, "GET VARIABLE DIALSTATUS") == "200 result=1 (ANSWER)"
    assert await agi(client, ch, "GET VARIABLE HANGUPCAUSE") == "200 result=1 (16)"
    assert await agi(client, ch, "CHANNEL STATUS") == "200 result=6"
    kinds = [dict(f).get("Event") for f in standin.events]
    assert kinds.count("BridgeEnter") == 2 and kinds.count("BridgeDestroy") == 1


async def test_exec_dial_gives_up_after_its_timeout_and_finds_phones_behind_the_trunk(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    """Dial(target,N) ends NOANSWER after N seconds of ringing, as Asterisk's does; a
    mobile dialled over the trunk (``PJSIP/<number>@trunk``) is the scripted phone."""
    standin.add_phone(Phone("13900002222", answer_after=30))
    standin.add_phone(Phone("13900003333", behaviour=Answer.BUSY))
    standin.place_call(Caller(number="13812345678", script=[Wait(120)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    started = standin.clock.monotonic()
    assert await agi(client, ch, "EXEC Dial PJSIP/13900002222@trunk,2") == "200 result=0"
    assert 2 <= standin.clock.monotonic() - started < 10
    assert await agi(client, ch, "GET VARIABLE DIALSTATUS") == "200 result=1 (NOANSWER)"
    assert await agi(client, ch, "EXEC Dial PJSIP/13900003333@trunk,20") == "200 result=0"
    assert await agi(client, ch, "GET VARIABLE DIALSTATUS") == "200 result=1 (BUSY)"
    ends = [dict(f) for f in standin.events if dict(f).get("Event") == "DialEnd"]
    assert [e["DialStatus"] for e in ends] == ["NOANSWER", "BUSY"]


async def test_exec_voicemail_writes_spool_and_message_waiting(
        standin: AsteriskStandIn, client: MiniAmi, tmp_path: Path) -> None:
    wav = tmp_path / "msg.wav"
    write_silence(wav, 3)
    standin.place_call(Caller(number="13812345678", name="王建国", script=[Wait(2), Say(wav, 3), HangUp()]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    r = await client.action("AGI", ("Channel", ch), ("Command", "EXEC VoiceMail 8000@default,s"))
    assert r["Response"] == "Success"
    mw = await client.wait_event("MessageWaiting")
    assert (mw["Mailbox"], mw["New"], mw["Waiting"]) == ("8000@default", "1", "1")
    inbox = tmp_path / "vm" / "default" / "8000" / "INBOX"
    assert (inbox / "msg0000.wav").read_bytes() == wav.read_bytes()
    assert 'callerid="王建国" <13812345678>' in (inbox / "msg0000.txt").read_text(encoding="utf-8")
    r = await client.action("MailboxCount", ("Mailbox", "8000@default"))
    assert r["NewMessages"] == "1"


# --------------------------------------------------------- channel actions
async def test_setvar_getvar_hangup_redirect_and_command(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.place_call(Caller(number="13812345678", script=[Wait(60)]))
    ch = (await client.wait_event("AsyncAGIStart"))["Channel"]
    assert (await client.action("Setvar", ("Channel", ch), ("Variable", "X"), ("Value", "1")))["Response"] == "Success"
    assert (await client.action("Getvar", ("Channel", ch), ("Variable", "X")))["Value"] == "1"
    assert (await client.action("Getvar", ("Channel", "nope"), ("Variable", "X")))["Response"] == "Error"
    out = await client.action("Command", ("Command", "core show channels"))
    assert any(ch in line for line in out.getall("Output"))
    r = await client.action("Redirect", ("Channel", ch), ("Context", "queue-entry"), ("Exten", "s"))
    assert r["Message"] == "Redirect successful"
    await client.wait_event("AsyncAGIEnd", Channel=ch)
    await client.wait_event("QueueCallerJoin", Channel=ch)
    r = await client.action("Hangup", ("Channel", ch))
    assert r["Message"] == "Channel Hungup"
    await client.wait_event("Hangup", Channel=ch)
    assert (await client.action("Hangup", ("Channel", ch)))["Message"] == "No such channel"


async def test_fastagi_caller_hangup_sends_hangup_and_waits_for_the_server(
        standin: AsteriskStandIn, client: MiniAmi) -> None:
    got: list[str] = []
    close_now = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode()
            if line == "\n":
                break
            got.append(line)
        writer.write(b'STREAM FILE welcome ""\n')
        got.append((await asyncio.wait_for(reader.readline(), 5)).decode())
        got.append((await asyncio.wait_for(reader.readline(), 5)).decode())
        writer.write(b"ANSWER\n")
        got.append((await asyncio.wait_for(reader.readline(), 5)).decode())
        await close_now.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    standin.pbx.prompt_seconds = 30.0
    standin.place_call(Caller(number="13812345678", name="王建国", ivr_transport="fastagi",
                              fastagi_url=f"agi://127.0.0.1:{port}/ivr", script=[Wait(1), HangUp()]))
    for _ in range(500):
        if len(got) >= 24:
            break
        await asyncio.sleep(0.01)
    assert got[-3:] == ["200 result=-1 endpos=11234\n", "HANGUP\n",
                        "511 Command Not Permitted on a dead channel or intercepted by a dead channel\n"] or \
        got[-3:-1] == ["200 result=-1\n", "HANGUP\n"]
    assert "agi_calleridname: 王建国\n" in got
    names = [dict(f).get("Event") for f in standin.events]
    assert names.count("Hangup") == 0  # the dialplan waits for the server to close
    close_now.set()
    await client.wait_event("Hangup")
    server.close()
    await server.wait_closed()


async def test_from_settings_uses_the_servers_credentials_and_hotline(tmp_path: Path) -> None:
    from callcenter.demo import demo_settings

    settings = demo_settings(tmp_path, 0)
    s = AsteriskStandIn.from_settings(settings, clock=ScaledClock(SPEED))
    await s.start()
    try:
        a = settings.asterisk[0]
        assert s.ami_port == a.port
        c = await MiniAmi.connect(s.ami_port)
        assert (await c.login(a.username, a.secret.reveal()))["Response"] == "Success"
        # the printed hotline runs AGI(agi:async) only while the server's heartbeat is fresh
        s.astdb.put("callcenter", "alive", str(int(time.time())))
        s.place_call(Caller(number="13812345678", script=[Wait(30)]))
        start = await c.wait_event("AsyncAGIStart")
        assert start["Context"] == a.hotline_context
        await c.close()
    finally:
        await s.stop()


async def test_paged_phone_answers_and_presses_a_digit(standin: AsteriskStandIn, client: MiniAmi) -> None:
    standin.add_phone(Phone("13900002222", "值班张工", answer_after=2, script=[Wait(1), Press("1"), Wait(30)]))
    r = await client.action("Originate", ("Channel", "Local/13900002222@phones"), ("Context", "hotline"),
                            ("Exten", "s"), ("Priority", "1"), ("Async", "true"),
                            ("CallerID", '"物业中心" <4008001234>'))
    start = await client.wait_event("AsyncAGIStart")
    ch = start["Channel"]
    assert ch.startswith("Local/13900002222@phones-")
    e = await client.wait_event("OriginateResponse", ActionID=r["ActionID"])
    assert e["Reason"] == "4"
    assert await agi(client, ch, "GET DATA press-1-to-accept 5000 1") == "200 result=1"


async def test_queue_pause_remove_and_summary(standin: AsteriskStandIn, client: MiniAmi) -> None:
    await client.action("QueueAdd", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"), ("MemberName", "小李"))
    r = await client.action("QueuePause", ("Interface", "PJSIP/8001"), ("Paused", "true"), ("Reason", "午休"))
    assert r["Message"] == "Interface paused successfully"
    e = await client.wait_event("QueueMemberPause")
    assert (e["Paused"], e["PausedReason"]) == ("1", "午休")
    await client.action("QueueSummary", ("Queue", "frontdesk"))
    summary = await client.wait_event("QueueSummary")
    assert (summary["LoggedIn"], summary["Available"]) == ("1", "0")
    r = await client.action("QueueRemove", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"))
    assert r["Message"] == "Removed interface from queue"
    r = await client.action("QueueRemove", ("Queue", "frontdesk"), ("Interface", "PJSIP/8001"))
    assert r["Response"] == "Error"
    r = await client.action("QueuePause", ("Interface", "PJSIP/8001"), ("Paused", "false"))
    assert r["Response"] == "Error"
    r = await client.action("QueueStatus", ("Queue", "nosuch"))
    done = await client.wait_event("QueueStatusComplete")
    assert done["ListItems"] == "0"


async def test_events_action_turns_events_off_and_on(standin: AsteriskStandIn, client: MiniAmi) -> None:
    r = await client.action("Events", ("EventMask", "off"))
    assert r["Events"] == "Off"
    standin.place_call(Caller(number="13812345678", script=[Wait(60)]))
    await asyncio.sleep(0.1)
    r = await client.action("Events", ("EventMask", "on"))
    assert r["Events"] == "On"
    assert not [f for f in client.frames if f.event == "Newchannel"]
    r2 = await client.action("Ping")
    assert r2["Ping"] == "Pong"


async def test_a_manual_clock_drives_scripted_time(tmp_path: Path) -> None:
    from callcenter.clock import ManualClock

    clock = ManualClock()
    s = AsteriskStandIn(spool_dir=tmp_path / "vm", clock=clock)
    await s.start()
    try:
        s.place_call(Caller(number="13812345678", script=[Wait(10), HangUp()]))
        for _ in range(20):  # the call starts (its script begins waiting at t=0)
            await asyncio.sleep(0)
        assert clock.sleepers >= 1
        await clock.advance(5)
        assert not [e for e in s.events if e[0][1] == "Hangup"]
        await clock.advance(6)
        for _ in range(50):  # let the hangup run through its tasks
            await asyncio.sleep(0)
        assert [e for e in s.events if e[0][1] == "Hangup"]
    finally:
        await s.stop()


@pytest.mark.parametrize(("caller", "field"), [
    (Caller(number="not-a-number"), "number"),
    (Caller(number="138", ivr_transport="sip"), "ivr_transport"),
    (Caller(number="138", script=[Press("1x")]), "script"),
    (Caller(number="138", script=[Wait(-1)]), "script"),
    (Caller(number="138", script=["hang up"]), "script"),  # type: ignore[list-item]
])
async def test_bad_scripts_are_refused_with_the_field(standin: AsteriskStandIn, caller: Caller, field: str) -> None:
    with pytest.raises(StandInConfigError) as err:
        standin.place_call(caller)
    assert err.value.field == field and err.value.error_id == "standin_config"
    assert not standin.pbx.channels


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StandInConfigError):
        AsteriskStandIn(spool_dir=tmp_path, ivr_transport="sip")
    with pytest.raises(StandInConfigError):
        ScaledClock(0)


@pytest.mark.parametrize(("action", "headers", "message"), [
    ("Originate", [("Context", "hotline")], "Channel not specified"),
    ("AGI", [("Command", "ANSWER")], "No channel specified"),
    ("AGI", [("Channel", "PJSIP/none-0001"), ("Command", "ANSWER")], "Channel PJSIP/none-0001 does not exist."),
    ("Hangup", [("Channel", "/[unclosed/")], "Invalid regex"),
    ("Hangup", [("Channel", "PJSIP/none-0001")], "No such channel"),
    ("Setvar", [("Value", "1")], "No variable specified"),
    ("Getvar", [], "No variable specified"),
    ("MailboxCount", [], "Mailbox not specified"),
    ("QueueAdd", [("Queue", "nosuch"), ("Interface", "PJSIP/1")], "Unable to find queue"),
    ("QueueAdd", [("Queue", "frontdesk")], "'Interface' not specified."),
    ("Redirect", [("Channel", "PJSIP/none-0001"), ("Context", "x")], "Channel specified does not exist"),
    ("Challenge", [("AuthType", "plain")], "Must specify AuthType"),
])
async def test_bad_actions_get_asterisk_errors(client: MiniAmi, action: str, headers: list[tuple[str, str]],
                                               message: str) -> None:
    r = await client.action(action, *headers)
    assert (r["Response"], r["Message"]) == ("Error", message)
    assert (await client.action("Ping"))["Ping"] == "Pong"  # the link survives


async def test_a_trunk_channel_carries_the_originate_variables(standin: AsteriskStandIn,
                                                               client: MiniAmi) -> None:
    """A page to a mobile goes out through the trunk: its AGI reads what the
    Originate set (the incident being paged), as on a Local channel."""
    standin.add_phone(Phone("13900003333", "值班李工", answer_after=1, script=[Wait(30)]))
    r = await client.action("Originate", ("Channel", "PJSIP/13900003333@trunk"),
                            ("Context", "hotline"), ("Exten", "s"), ("Priority", "1"),
                            ("Async", "true"), ("Variable", "CC_INCIDENT=42"),
                            ("Variable", "CC_ATTEMPT=7"), ("CallerID", '"物业中心" <4008001234>'))
    assert (await client.wait_event("OriginateResponse", ActionID=r["ActionID"]))["Reason"] == "4"
    start = await client.wait_event("AsyncAGIStart")
    ch = start["Channel"]
    assert ch.startswith("PJSIP/13900003333-")
    assert await agi(client, ch, "GET VARIABLE CC_INCIDENT") == "200 result=1 (42)"
    assert await agi(client, ch, "GET VARIABLE CC_ATTEMPT") == "200 result=1 (7)"
    varsets = [f for f in client.frames if f.event == "VarSet" and f.get("Channel") == ch]
    assert {(f.get("Variable"), f.get("Value")) for f in varsets} >= {
        ("CC_INCIDENT", "42"), ("CC_ATTEMPT", "7")}
