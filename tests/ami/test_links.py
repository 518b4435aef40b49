"""AmiLinks: per-entry links feeding trackers, resync after (re)connect, /healthz."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter import __version__
from callcenter.ami.captures import server_bytes
from callcenter.ami.client import AmiLink, LinkConfig
from callcenter.ami.links import AmiLinks
from callcenter.ami.parser import Frame, FrameParser, encode_frame
from callcenter.app import create_app
from callcenter.appkeys import AMI_LINKS, BUS, SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.bus import DomainEvent
from callcenter.errors import NotFound
from callcenter.settings import AsteriskSettings, Secret, settings_from_mapping
from tests.ami.fakeami import FakeAmi, FakeSettings, with_action_id
from tests.ami.test_client import until
from tests.health_access import HEALTH_HEADERS, HEALTH_HTTP

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
RESYNC = server_bytes((FIXTURES / "07_resync.txt").read_bytes())
QUEUE_EVENTS = [f for f in FrameParser().feed(server_bytes((FIXTURES / "05_queue.txt").read_bytes()))
                if isinstance(f, Frame) and f.kind == "event" and not f.action_id]


def reply_block(first: bytes, last: bytes) -> bytes:
    start = RESYNC.index(first)
    end = RESYNC.index(last, start) + len(last)
    return RESYNC[start:end]


CHANNELS = reply_block(b"Response: Success\r\nActionID: r3", b"ListItems: 4\r\n\r\n")
NO_CHANNELS = (b"Response: Success\r\nActionID: x\r\nEventList: start\r\n"
               b"Message: Channels will follow\r\n\r\nEvent: CoreShowChannelsComplete\r\n"
               b"ActionID: x\r\nEventList: Complete\r\nListItems: 0\r\n\r\n")
QUEUES = reply_block(b"Response: Success\r\nActionID: r4", b"ListItems: 2\r\n\r\n")


def script(ami: FakeAmi, *, channels: bytes, new_messages: int) -> None:
    ami.handlers["coreshowchannels"] = lambda f: [with_action_id(channels, f["ActionID"])]
    ami.handlers["queuestatus"] = lambda f: [with_action_id(QUEUES, f["ActionID"])]
    ami.handlers["mailboxcount"] = lambda f: [encode_frame([
        ("Response", "Success"), ("ActionID", f["ActionID"]),
        ("Message", "Mailbox Message Count"), ("Mailbox", f["Mailbox"]),
        ("UrgMessages", "0"), ("NewMessages", str(new_messages)), ("OldMessages", "0")])]


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


def factory(cfg: LinkConfig) -> AmiLink:
    return AmiLink(cfg, rng=random.Random(3), reconnect_base_s=0.01)


async def test_restart_resync_closes_old_calls_and_picks_up_new(ami: FakeAmi) -> None:
    events: list[DomainEvent] = []
    script(ami, channels=NO_CHANNELS, new_messages=1)
    links = AmiLinks([FakeSettings(port=ami.port, community="lakeside")],
                     publish=events.append, mailboxes=["8000@default"], link_factory=factory)
    links.start()
    try:
        link = links.get("pbx-test")
        await link.wait_connected(2)
        tracker = links.tracker("pbx-test")
        await until(lambda: tracker.mailboxes.get("8000@default") == (1, 0))
        # A live queue call, answered by agent 1001 (recorded events).
        connect = next(i for i, f in enumerate(QUEUE_EVENTS) if f.event == "AgentConnect")
        for f in QUEUE_EVENTS[: connect + 1]:
            ami.push(encode_frame(f.headers))
        await until(lambda: any(e.name == "call.answered" for e in events))
        assert [c.linkedid for c in links.live_calls()] == ["probe-q-1"]
        assert links.live_calls()[0].community == "lakeside"
        # Asterisk restarts: Shutdown, refused for a while, back with other calls.
        ami.push_event([("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "True")])
        port = ami.port
        await ami.stop_listening()
        await until(lambda: links.link_states() == {"pbx-test": "disconnected"})
        await until(lambda: len(link.retry_delays) >= 2)
        script(ami, channels=CHANNELS, new_messages=2)
        ami.port = port
        await ami.start()
        await until(lambda: [c.linkedid for c in links.live_calls()] == ["resync-1"])
        ended = [e for e in events if e.name == "call.ended"]
        assert [e.data["linkedid"] for e in ended] == ["probe-q-1"]
        assert ended[0].data["resynced"] is True
        picked = links.live_calls()[0]
        assert picked.caller_name == "李秀英" and picked.state.value == "answered"
        await until(lambda: any(e.name == "voicemail.left" for e in events))
        vm = next(e for e in events if e.name == "voicemail.left")
        assert vm.data["count"] == 2 and vm.data["mailbox"] == "8000@default"
        assert links.link_states() == {"pbx-test": "connected"}
    finally:
        await links.stop()


async def test_get_unknown_link_is_not_found_and_duplicate_names_refused(ami: FakeAmi) -> None:
    links = AmiLinks([FakeSettings(port=ami.port)], publish=lambda e: None, link_factory=factory)
    with pytest.raises(NotFound):
        links.get("nope")
    with pytest.raises(ValueError):
        AmiLinks([FakeSettings(), FakeSettings()], publish=lambda e: None)
    assert links.for_community("anything") is links.get("pbx-test")  # the only link
    two = AmiLinks([FakeSettings(name="a", community="lakeside"),
                    FakeSettings(name="b", community="hillside")], publish=lambda e: None)
    assert two.for_community("hillside") is two.get("b")
    with pytest.raises(NotFound):
        two.for_community("riverside")


async def test_ivr_choice_reaches_the_right_tracker(ami: FakeAmi) -> None:
    events: list[DomainEvent] = []
    script(ami, channels=NO_CHANNELS, new_messages=0)
    links = AmiLinks([FakeSettings(port=ami.port)], publish=events.append, link_factory=factory)
    links.start()
    try:
        await links.get("pbx-test").wait_connected(2)
        ami.push(encode_frame(QUEUE_EVENTS[0].headers))
        await until(lambda: bool(links.live_calls()))
        links.record_ivr_choice("probe-q-1", "menu:main=1")
        links.record_ivr_choice("no-such-call", "menu:main=2")  # ignored
        choice = [e for e in events if e.name == "call.ivr_choice"]
        assert len(choice) == 1 and choice[0].data["ivr_path"] == ["menu:main=1"]
    finally:
        await links.stop()


@pytest.fixture
async def client(ami: FakeAmi, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = settings_from_mapping({
        "data_dir": str(tmp_path), "http": HEALTH_HTTP,
        "fastagi": {"enabled": False},  # its default port 4573 may be taken on this machine
        "asterisk": [
            {"name": "pbx1", "host": "127.0.0.1", "port": ami.port, "username": "cc",
             "secret": "s3cr3t-Pa55", "community": "lakeside", "ping_interval": 5},
            {"name": "pbx2", "host": "127.0.0.1", "port": ami.port, "username": "cc",
             "secret": "wrong-secret-x", "community": "hillside", "ping_interval": 5},
        ],
    })
    assert isinstance(settings.asterisk[0], AsteriskSettings)
    assert isinstance(settings.asterisk[0].secret, Secret)
    script(ami, channels=NO_CHANNELS, new_messages=0)
    app: web.Application
    links = AmiLinks(settings.asterisk, publish=lambda e: app[BUS].publish(e),
                     link_factory=factory)
    app = create_app(settings, ami_links=links)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_healthz_shows_each_link(client: TestClient) -> None:
    async def health() -> dict:  # type: ignore[type-arg]
        resp = await client.get("/healthz", headers=HEALTH_HEADERS)
        return await resp.json()  # type: ignore[no-any-return]

    body: dict = {}  # type: ignore[type-arg]
    for _ in range(200):
        body = await health()
        if body["asterisk"] == {"pbx1": "connected", "pbx2": "auth_failed"}:
            break
        await asyncio.sleep(0.01)
    assert body["asterisk"] == {"pbx1": "connected", "pbx2": "auth_failed"}
    assert body["status"] == "degraded"
    detail = {d["name"]: d for d in body["asterisk_links"]}
    assert detail["pbx2"]["last_error"].startswith("AMI login refused for user 'cc'")
    assert detail["pbx1"]["since"] and detail["pbx1"]["last_error"] is None
    assert "wrong-secret-x" not in str(body) and "s3cr3t" not in str(body)


async def test_healthz_details_only_with_the_health_token_or_a_supervisor(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """Anyone learns up or degraded; where the PBX is, and as whom, only the
    ``[http] health_token``, a supervisor or an admin."""
    async with client.app[SESSIONMAKER]() as s:
        tokens = {role: await create_token(s, role=role)
                  for role in ("agent", "engineer", "supervisor", "admin")}

    async def health(headers: dict[str, str]) -> tuple[int, str]:
        async with client.get("/healthz", headers=headers) as resp:
            return resp.status, await resp.text()

    for _ in range(200):  # both links have tried once
        if "auth_failed" in (await health(HEALTH_HEADERS))[1]:
            break
        await asyncio.sleep(0.01)
    for role in ("supervisor", "admin"):
        status, text = await health({"Authorization": f"Bearer {tokens[role]}"})
        assert status == 200 and '"host": "127.0.0.1"' in text and '"username": "cc"' in text
    status, text = await health(HEALTH_HEADERS)
    body = json.loads(text)
    assert status == 200 and body["version"] == __version__
    port = str(client.app[AMI_LINKS].statuses()[0].port)
    assert {str(d["port"]) for d in body["asterisk_links"]} == {port}
    for headers in ({}, {"Authorization": f"Bearer {tokens['agent']}"},
                    {"Authorization": f"Bearer {tokens['engineer']}"}):
        status, text = await health(headers)
        assert status == 200 and json.loads(text) == {"status": "degraded"}, headers
        for secret in ("127.0.0.1", port, '"cc"', __version__, "pbx1", "asterisk"):
            assert secret not in text, (headers, secret)
    # A wrong token is no token: refused like any bad bearer token.
    status, text = await health({"Authorization": "Bearer health-token-for-test"})
    assert status == 401 and "127.0.0.1" not in text
