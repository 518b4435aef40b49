"""AmiLink against a real TCP server (a scripted fake speaking AMI)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.ami.captures import server_bytes
from callcenter.ami.client import AmiLink, LinkState, backoff_delay
from callcenter.ami.errors import (
    ActionNotSent,
    ActionTimeout,
    AmiActionError,
    LinkLost,
    NotOwner,
    OriginateFailed,
)
from callcenter.ami.parser import Frame, encode_frame
from tests.ami.fakeami import FakeAmi, FakeSettings, with_action_id

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"


async def until(predicate: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


def make_link(ami: FakeAmi, **kw: object) -> AmiLink:
    cfg = replace(FakeSettings(port=ami.port), **kw)  # type: ignore[arg-type]
    return AmiLink(cfg, rng=random.Random(7), reconnect_base_s=0.01)


@pytest.fixture
async def link(ami: FakeAmi) -> AsyncIterator[AmiLink]:
    lk = make_link(ami)
    lk.start()
    await lk.wait_connected(2)
    yield lk
    await lk.stop()


async def test_connects_logs_in_and_reports_state(link: AmiLink, ami: FakeAmi) -> None:
    st = link.status
    assert st.state is LinkState.CONNECTED
    assert st.banner == "Asterisk Call Manager/9.0.0"
    assert st.connects == 1
    login = ami.actions("Login")[0]
    assert login.get("Events") == "on" and login.get("Username") == "cc"
    js = st.to_json()
    assert js["state"] == "connected" and js["port"] == ami.port
    assert js["ping_interval"] == 5.0 and js["name"] == "pbx-test"
    assert "secret" not in js and "s3cr3t" not in str(js)


async def test_login_refused_is_reported_clearly_with_growing_backoff_and_no_secret(
        ami: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lk = make_link(ami, secret="wrong-Secret-42")
    lk.start()
    try:
        await until(lambda: len(lk.retry_delays) >= 4)
        st = lk.status
        assert st.state is LinkState.AUTH_FAILED
        assert "login refused" in (st.last_error or "")
        assert "'cc'" in (st.last_error or "")
        d = lk.retry_delays
        assert d[0] < d[2] < d[3]  # ceilings 0.01, 0.04, 0.08: jitter cannot reorder them
        assert all(later >= earlier / 2 for earlier, later in zip(d, d[1:], strict=False))
        assert ami.connections >= 4
        with pytest.raises(ActionNotSent):
            await lk.send_action({"Action": "CoreStatus"})
    finally:
        await lk.stop()
    assert any("login refused" in r.getMessage() for r in caplog.records)
    assert all("wrong-Secret-42" not in r.getMessage() for r in caplog.records)
    assert "wrong-Secret-42" not in caplog.text


def test_backoff_grows_exponentially_with_jitter_up_to_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=1.0, cap=60.0, rng=rng) for a in range(10)]
    for attempt, d in enumerate(delays):
        ceiling = min(60.0, 2.0**attempt)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays[-3:]}) == 3  # jitter: not identical at the cap


async def test_list_action_collects_events_until_complete(link: AmiLink, ami: FakeAmi) -> None:
    raw = server_bytes((FIXTURES / "07_resync.txt").read_bytes())
    start = raw.index(b"Response: Success\r\nActionID: r3")
    end = raw.index(b"ListItems: 4\r\n\r\n") + len(b"ListItems: 4\r\n\r\n")
    ami.handlers["coreshowchannels"] = lambda f: [with_action_id(raw[start:end], f["ActionID"])]
    seen: list[Frame] = []
    link.subscribe(seen.append)
    resp = await link.send_action({"Action": "CoreShowChannels"})
    assert resp.get("EventList") == "start"
    assert [e.event for e in resp.events] == ["CoreShowChannel"] * 4
    assert resp.events[0].get("CallerIDName") == "李秀英"
    assert not [f for f in seen if f.event and f.event.startswith("CoreShowChannel")]


async def test_error_response_becomes_domain_error(link: AmiLink) -> None:
    with pytest.raises(AmiActionError) as info:
        await link.send_action({"Action": "NoSuchThing"})
    assert info.value.error_id == "ami_action_error"
    assert info.value.response_message == "Invalid/unknown command"
    assert info.value.details["action"] == "NoSuchThing"


async def test_action_without_reply_times_out(link: AmiLink, ami: FakeAmi) -> None:
    ami.handlers["blackhole"] = lambda f: []
    t0 = time.monotonic()
    with pytest.raises(ActionTimeout) as info:
        await link.send_action({"Action": "BlackHole"}, timeout_s=0.05)
    assert time.monotonic() - t0 < 1
    assert info.value.details["timeout_s"] == 0.05
    assert link.connected  # a slow action does not kill the link


async def test_half_open_link_detected_within_two_ping_intervals(ami: FakeAmi) -> None:
    lk = make_link(ami, ping_interval=0.1)
    lk.start()
    try:
        await lk.wait_connected(2)
        await until(lambda: len(ami.actions("Ping")) >= 2)
        assert lk.connected
        ami.answer_pings = False
        t0 = time.monotonic()
        await until(lambda: lk.state is not LinkState.CONNECTED, within_s=1)
        assert time.monotonic() - t0 <= 0.2 + 0.05
        assert "Ping" in (lk.status.last_error or "")
        ami.answer_pings = True
        await lk.wait_connected(2)
        assert ami.connections >= 2
    finally:
        await lk.stop()


async def test_link_cut_mid_frame_fails_pending_and_reconnects_cleanly(
        link: AmiLink, ami: FakeAmi) -> None:
    def half_then_cut(f: Frame) -> list[bytes]:
        return [b"Response: Success\r\nActionID: " + f["ActionID"].encode() + b"\r\nMessa"]

    ami.handlers["corestatus"] = half_then_cut
    task = asyncio.ensure_future(link.send_action({"Action": "CoreStatus"}))
    await until(lambda: bool(ami.actions("CoreStatus")))
    await asyncio.sleep(0.01)
    ami.drop_all()
    with pytest.raises(LinkLost) as info:
        await task
    assert "not re-sent" in str(info.value)
    await link.wait_connected(2)
    events: list[Frame] = []
    link.subscribe(events.append, ["Newchannel"])
    ami.push_event([("Event", "Newchannel"), ("CallerIDName", "王小明"), ("Linkedid", "x")])
    await until(lambda: bool(events))
    assert events[0].get("CallerIDName") == "王小明" and not events[0].errors
    assert link.status.connects == 2


async def test_originate_is_async_and_resolves_on_late_originate_response(
        link: AmiLink, ami: FakeAmi) -> None:
    order: list[str] = []

    def originate(f: Frame) -> list[bytes]:
        aid = f["ActionID"]
        return [
            encode_frame([("Response", "Success"), ("ActionID", aid),
                          ("Message", "Originate successfully queued")]),
            encode_frame([("Event", "AsyncAGIStart"), ("Channel", "Local/s@x-1;1"),
                          ("Uniqueid", "u1"), ("Env", "agi_request%3A%20async%0A%0A")]),
            encode_frame([("Event", "OriginateResponse"), ("ActionID", aid),
                          ("Response", "Success"), ("Channel", "Local/s@x-1;1"),
                          ("Reason", "4"), ("Uniqueid", "u1")]),
        ]

    ami.handlers["originate"] = originate
    link.subscribe(lambda f: order.append(f.event or ""), ["AsyncAGIStart", "OriginateResponse"])
    resp = await link.originate(channel="Local/s@x", context="hotline", exten="s",
                                caller_id='"张三" <13800138000>', variables={"A": "1", "B": "2"})
    assert resp.events[0].get("Reason") == "4"
    assert resp.events[0].get("Uniqueid") == "u1"
    assert order == ["AsyncAGIStart", "OriginateResponse"]
    sent = ami.actions("Originate")[0]
    assert sent.get("Async") == "true"
    assert sent.getall("Variable") == ["A=1", "B=2"]
    assert sent.get("CallerID") == '"张三" <13800138000>'


async def test_originate_failure_is_typed(link: AmiLink, ami: FakeAmi) -> None:
    def originate(f: Frame) -> list[bytes]:
        aid = f["ActionID"]
        return [
            encode_frame([("Response", "Success"), ("ActionID", aid),
                          ("Message", "Originate successfully queued")]),
            encode_frame([("Event", "OriginateResponse"), ("ActionID", aid),
                          ("Response", "Failure"), ("Channel", "PJSIP/1001"), ("Reason", "0")]),
        ]

    ami.handlers["originate"] = originate
    with pytest.raises(OriginateFailed) as info:
        await link.originate(channel="PJSIP/1001", context="c", exten="s")
    assert info.value.details["reason"] == "0"


async def test_plain_send_action_refuses_originate(link: AmiLink) -> None:
    with pytest.raises(ValueError):
        await link.send_action({"Action": "Originate", "Channel": "x"})


async def test_a_standby_sends_only_what_reads_or_what_a_person_asked_of_it(
        link: AmiLink, ami: FakeAmi) -> None:
    """Without the lease (``callcenter.ha``) the server refuses the actions it would
    take on its own (AGI, a page's Originate, the heartbeat), before a byte is
    written; an agent's queue state and click-to-call go out (one server got that
    request, so it is sent once)."""
    def ok(f: Frame) -> list[bytes]:
        return [encode_frame([("Response", "Success"), ("ActionID", f["ActionID"])])]
    ami.handlers["queuepause"] = ok
    ami.handlers["dbput"] = ok
    ami.handlers["originate"] = lambda f: [encode_frame(
        [("Response", "Success"), ("ActionID", f["ActionID"]), ("Message", "Queued")]),
        encode_frame([("Event", "OriginateResponse"), ("ActionID", f["ActionID"]),
                      ("Response", "Success"), ("Uniqueid", "1.1")])]
    owner = False
    link.set_owner_gate(lambda: owner)
    pause = {"Action": "QueuePause", "Queue": "frontdesk", "Interface": "Local/8001@agents/n",
             "Paused": "true"}
    with pytest.raises(NotOwner) as info:
        await link.send_action({"Action": "DBPut", "Family": "callcenter", "Key": "k",
                                "Val": "1"})
    assert info.value.http_status == 503 and info.value.details["action"] == "DBPut"
    with pytest.raises(NotOwner):
        await link.agi("PJSIP/8001-1", "ANSWER", "c1")
    with pytest.raises(NotOwner):
        await link.originate(channel="PJSIP/13800138000@trunk", context="page", exten="s")
    with pytest.raises(NotOwner):
        await link.send_action(pause)
    assert link.refused_not_owner == 4
    assert ami.actions("DBPut") == ami.actions("AGI") == ami.actions("Originate") == []
    await link.send_action({"Action": "Ping"})  # read-only: a standby stays listening
    await link.send_action(pause, on_request=True)
    await link.originate(channel="PJSIP/8001", application="Dial", data="PJSIP/1@trunk",
                         on_request=True)
    assert len(ami.actions("QueuePause")) == len(ami.actions("Originate")) == 1
    owner = True
    await link.send_action({"Action": "DBPut", "Family": "callcenter", "Key": "k",
                            "Val": "1"})
    assert len(ami.actions("DBPut")) == 1 and link.refused_not_owner == 4


async def test_no_originate_resent_after_reconnect(link: AmiLink, ami: FakeAmi) -> None:
    ami.handlers["originate"] = lambda f: []  # Asterisk takes it, then the link dies
    task = asyncio.ensure_future(
        link.originate(channel="PJSIP/13800138000@trunk", context="page", exten="s"))
    await until(lambda: bool(ami.actions("Originate")))
    ami.drop_all()
    with pytest.raises(LinkLost):
        await task
    await link.wait_connected(2)
    ami.push_event([("Event", "FullyBooted"), ("Status", "Fully Booted")])
    # Give a re-send (the panoramisk 1.4 bug) every chance to happen.
    await link.send_action({"Action": "Ping"})
    await asyncio.sleep(0.05)
    assert len(ami.actions("Originate")) == 1
    assert len(ami.received) == 2 and not [
        f for f in ami.received[1] if f.get("Action") == "Originate"]


async def test_actions_while_down_fail_at_once_and_are_not_queued(ami: FakeAmi) -> None:
    lk = make_link(ami)
    with pytest.raises(ActionNotSent):
        await lk.originate(channel="PJSIP/1", context="c", exten="s")
    lk.start()
    try:
        await lk.wait_connected(2)
        await asyncio.sleep(0.02)
        assert ami.actions("Originate") == []
    finally:
        await lk.stop()


async def test_junk_huge_and_unknown_frames_are_skipped_and_link_lives(
        link: AmiLink, ami: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    events: list[Frame] = []
    link.subscribe(events.append)
    ami.push(b"this is not a header\r\n\r\n")
    ami.push(b"Event: VarSet\r\nValue: " + b"x" * 200_000 + b"\r\nUniqueid: 1\r\n\r\n")
    ami.push(b"Event: SomethingNew\r\nFoo: bar\r\n\r\n")
    ami.push(b"Event: Newchannel\r\nCallerIDName: \xe6\x9d\x8e\xff\r\n\r\n")
    ami.push(b"Event: Hangup\r\nUniqueid: u9\r\n\r\n")
    await until(lambda: any(e.event == "Hangup" for e in events))
    names = [e.event for e in events]
    assert "SomethingNew" in names and "Hangup" in names
    varset = next(e for e in events if e.event == "VarSet")
    assert varset.get("Value") is None and varset.get("Uniqueid") == "1"
    assert link.connected
    resp = await link.send_action({"Action": "Ping"})
    assert resp.get("Ping") == "Pong"
    assert "junk" in caplog.text


async def test_resync_hook_runs_after_connect_and_after_restart(ami: FakeAmi) -> None:
    lk = make_link(ami)
    calls: list[int] = []

    async def hook(link: AmiLink) -> None:
        calls.append(link.status.connects)

    lk.on_connected(hook)
    lk.start()
    try:
        await lk.wait_connected(2)
        await until(lambda: calls == [1])
        # Asterisk restart: Shutdown, connection refused for a while, then back.
        ami.push_event([("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "True")])
        port = ami.port
        await ami.stop_listening()
        await until(lambda: lk.state is not LinkState.CONNECTED)
        await until(lambda: len(lk.retry_delays) >= 3)
        assert lk.state is LinkState.DISCONNECTED
        ami.port = port
        await ami.start()
        await lk.wait_connected(2)
        await until(lambda: calls == [1, 2])
    finally:
        await lk.stop()
    assert lk.state is LinkState.STOPPED


async def test_fullybooted_after_login_is_one_resync_later_ones_resync_again(ami: FakeAmi) -> None:
    lk = make_link(ami)
    calls: list[str] = []

    async def hook(link: AmiLink) -> None:
        calls.append("resync")

    lk.on_connected(hook)
    lk.start()
    try:
        await lk.wait_connected(2)
        await until(lambda: calls == ["resync"])
        await lk.send_action({"Action": "Ping"})  # FullyBooted (sent after login) is in
        await asyncio.sleep(0.02)
        assert calls == ["resync"]  # login + its FullyBooted: one resync
        lk.resync_debounce_s = 0.0  # a later FullyBooted (Asterisk finished booting)
        ami.push_event([("Event", "FullyBooted"), ("Status", "Fully Booted")])
        await until(lambda: calls == ["resync", "resync"])
    finally:
        await lk.stop()


async def test_ten_thousand_events_in_one_write_all_arrive(link: AmiLink, ami: FakeAmi) -> None:
    seen: list[str] = []
    link.subscribe(lambda f: seen.append(f["Uniqueid"]), ["VarSet"])
    ami.push(b"".join(encode_frame([("Event", "VarSet"), ("Variable", "名字"), ("Value", "王小明"),
                                    ("Uniqueid", str(i))]) for i in range(10_000)))
    await until(lambda: len(seen) == 10_000, within_s=10)
    assert seen == [str(i) for i in range(10_000)]
    assert link.connected


async def test_an_action_refused_by_the_gate_waits_for_the_confirmation_and_is_sent_once(
        link: AmiLink, ami: FakeAmi) -> None:
    """After a stall the gate's clock says no, and the lease keeper is asked first
    (``confirm``): a yes sends the action once, a no refuses it unsent."""
    def ok(f: Frame) -> list[bytes]:
        return [encode_frame([("Response", "Success"), ("ActionID", f["ActionID"])])]
    ami.handlers["dbput"] = ok
    answers = [True, False]
    asked: list[int] = []

    async def confirm() -> bool:
        asked.append(len(ami.actions("DBPut")))  # nothing written while it is asked
        await asyncio.sleep(0.01)
        return answers.pop(0)

    link.set_owner_gate(lambda: False, confirm)
    put = {"Action": "DBPut", "Family": "callcenter", "Key": "k", "Val": "1"}
    await link.send_action(put)
    with pytest.raises(NotOwner):
        await link.send_action(put)
    assert asked == [0, 1]
    assert len(ami.actions("DBPut")) == 1 and link.refused_not_owner == 1
