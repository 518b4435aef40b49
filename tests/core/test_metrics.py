"""/metrics: the whole server against the Asterisk stand-in, scraped over real
sockets and parsed as Prometheus parses it; counters move by what happened."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from callcenter.app import create_app
from callcenter.appkeys import CALL_LOG, SESSIONMAKER
from callcenter.auth.tokens import create_token
from callcenter.calls.tracker import Outcome
from callcenter.clock import Clock, SystemClock
from callcenter.db.engine import make_engine, make_sessionmaker
from callcenter.demo import DEMO_PASSWORD, demo_settings
from callcenter.metrics.agi import command_label
from callcenter.metrics.http import METRICS_ENDPOINT, MetricsEndpoint
from callcenter.metrics.registry import Metrics
from callcenter.metrics.transcription import TimedTranscriber
from callcenter.settings import DatabaseSettings, Secret, Settings, SettingsError, load_settings
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Phone, Press, Wait
from recordings.models import Recording, TranscriptionJob
from tests.console.helpers import login
from tests.integration.demo_db import heartbeat_seen, seed_demo_db
from tests.integration.test_hotline_e2e import FixedTimeClock
from ticketing.models import Ticket

TOKEN = "scrape-me-7f3a"
OWNER = "13812345678"
ENGINEER_MOBILE = "13700000011"
OFFICE_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@dataclass
class Site:
    client: TestClient  # type: ignore[type-arg]
    standin: AsteriskStandIn

    @property
    def port(self) -> int:
        port = self.client.app[METRICS_ENDPOINT].port
        assert port is not None
        return port

    async def scrape(self) -> str:
        """``/metrics`` on the main listener, with the metrics token."""
        resp = await self.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        return await resp.text()

    async def scrape_port(self) -> str:
        """``/metrics`` on the ``[http] metrics_port`` listener: no token, no masking."""
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


def metrics_settings(db_url: str, tmp_path: Path, **http: Any) -> Settings:
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url))
    return replace(settings, http=replace(settings.http, **http))


@asynccontextmanager
async def running(db_url: str, tmp_path: Path, *, transport: str = "fastagi",
                  clock: Clock | None = None) -> AsyncIterator[Site]:
    settings = metrics_settings(db_url, tmp_path, metrics_token=Secret(TOKEN), metrics_port=0)
    await seed_demo_db(db_url, datetime.now(UTC).date())
    phones = [Phone(ENGINEER_MOBILE, "陈师傅", answer_after=0.2, script=[Wait(0.3), Press("1")]),
              Phone("8001", "小李", answer_after=30)]
    standin = AsteriskStandIn.from_settings(settings, phones=phones, ivr_transport=transport,
                                            prompt_seconds=0.05)
    await standin.start()
    client = TestClient(TestServer(create_app(settings, clock=clock, transcribe=False)))
    await client.start_server()
    try:
        await heartbeat_seen(standin)
        yield Site(client, standin)
    finally:
        await client.close()
        await standin.stop()


def value(text: str, sample: str, **labels: str) -> float:
    """The sum of the samples named ``sample`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and labels.items() <= s.labels.items():
                total += s.value
    return total


def label_values(text: str, sample: str, label: str) -> set[str]:
    return {s.labels[label] for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == sample and s.value}


async def until(site: Site, check: Callable[[str], bool], what: str,
                scrape: Callable[[], Awaitable[str]] | None = None) -> str:
    for _ in range(200):
        text = await (scrape or site.scrape)()
        if check(text):
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 10 s: {what}\n{text}")


async def logged_outcomes(site: Site) -> list[str | None]:
    for _ in range(100):
        rows = await site.client.app[CALL_LOG].search(number=OWNER)
        if rows and all(r.ended_at is not None for r in rows):
            return [r.outcome for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError("the call never ended in the call log")


def linked(text: str) -> bool:
    return value(text, "callcenter_ami_link_up", link="standin") == 1


def no_numbers(text: str) -> None:
    """No caller's number, whole or masked, and no run of 7+ digits in a label."""
    assert OWNER not in text and "****" not in text and ENGINEER_MOBILE not in text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            for v in s.labels.values():
                assert not re.search(r"\d{7}", v), (s.name, s.labels)


@pytest.mark.parametrize("transport", ["fastagi", "asyncagi"])
async def test_a_call_through_the_hotline_moves_the_counters(
        db_url: str, tmp_path: Path, transport: str) -> None:
    async with running(db_url, tmp_path, transport=transport,
                       clock=FixedTimeClock(OFFICE_HOURS)) as site:
        before = await until(site, linked, "the link is up")
        assert value(before, "callcenter_calls_total") == 0
        assert value(before, "callcenter_ami_reconnects_total", link="standin") == 0
        site.standin.place_call(Caller(number=OWNER, name="业主", did="4008001234", script=[
            Wait(0.3), Press("1"), Wait(0.3), Press("1"), Wait(1.0), HangUp()]))
        after = await until(site, lambda t: value(t, "callcenter_calls_total") >= 1,
                            "the call is counted")
        assert value(after, "callcenter_calls_total") == 1
        # Into the front-desk queue (报修 → 水电), hung up there before anyone answered.
        assert label_values(after, "callcenter_calls_total", "outcome") == {
            Outcome.ABANDONED.value}
        assert await logged_outcomes(site) == [Outcome.ABANDONED.value]  # as the call log says
        other = "asyncagi" if transport == "fastagi" else "fastagi"
        count = "callcenter_agi_command_duration_seconds_count"
        assert value(after, count, transport=transport) >= 3  # answer, prompts, menu keys
        assert value(after, count, transport=transport, command="EXEC Queue") == 1
        assert value(after, count, transport=other) == 0
        assert value(after, "callcenter_queue_wait_seconds_count", queue="frontdesk") == 1
        assert value(after, "callcenter_queue_abandoned_total", queue="frontdesk") == 1
        assert value(after, "callcenter_ami_events_received_total", link="standin") > \
            value(before, "callcenter_ami_events_received_total", link="standin")
        unmasked = await site.scrape_port()
        assert value(unmasked, "callcenter_calls_total") == 1
        no_numbers(after)
        no_numbers(unmasked)


async def test_the_link_gauge_falls_when_asterisk_goes_and_a_reconnect_is_counted(
        db_url: str, tmp_path: Path) -> None:
    async with running(db_url, tmp_path) as site:
        await until(site, linked, "the link is up")
        restart = asyncio.create_task(site.standin.restart(downtime=1.5, shutdown_s=0.1,
                                                           boot_s=0.1))
        down = await until(site, lambda t: not linked(t), "the link is seen down")
        assert value(down, "callcenter_ami_reconnects_total", link="standin") == 0
        await restart
        up = await until(site, linked, "the link is back")
        assert value(up, "callcenter_ami_reconnects_total", link="standin") == 1


async def test_an_emergency_page_counts_the_incident_the_step_and_the_ack(
        db_url: str, tmp_path: Path) -> None:
    async with running(db_url, tmp_path) as site:
        await until(site, linked, "the link is up")
        async with site.client.app[SESSIONMAKER]() as s:
            sup = {"Authorization": f"Bearer {await create_token(s, role='supervisor')}"}
        resp = await site.client.post("/api/incidents", headers=sup, json={
            "community": "lakeside", "category": "plumbing", "building": "3", "unit": "2",
            "room": "1201", "caller": OWNER, "summary": "厨房水管爆裂"})
        assert resp.status in (200, 201), await resp.text()
        text = await until(site, lambda t: value(t, "callcenter_paging_acks_total") >= 1
                           and value(t, "callcenter_paging_steps_total") >= 1,
                           "the page is acknowledged and its step recorded")
        assert value(text, "callcenter_incidents_opened_total") == 1
        assert value(text, "callcenter_paging_acks_total", via="phone") == 1
        assert value(text, "callcenter_paging_steps_total", outcome="accepted") == 1
        assert value(text, "callcenter_paging_steps_total") == 1
        # The page's AGI session ran over AsyncAGI, through the same timed entry.
        assert value(text, "callcenter_agi_command_duration_seconds_count",
                     transport="asyncagi") > 0
        no_numbers(await site.scrape_port())


async def test_a_pop_to_the_ringing_agent_is_counted_with_its_latency(
        db_url: str, tmp_path: Path) -> None:
    async with running(db_url, tmp_path) as site:
        await until(site, linked, "the link is up")
        await login(site.client, "agent1", DEMO_PASSWORD)
        ws = await site.client.ws_connect("/ws/agent")
        site.standin.add_member("frontdesk", "Local/8001@phones", "前台 小李")
        site.standin.place_call(Caller(number=OWNER, name="业主", did="4008001234",
                                       context="queue-entry", script=[Wait(3), HangUp()]))
        while True:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "pop" and msg["call"]["state"] == "ringing":
                break
        text = await until(
            site, lambda t: value(t, "callcenter_screenpop_latency_seconds_count") >= 1,
            "the pop's latency is observed")
        assert value(text, "callcenter_screenpop_latency_seconds_count") == 1
        assert 0 < value(text, "callcenter_screenpop_latency_seconds_sum") < 5
        assert value(text, "callcenter_screenpop_frames_sent_total") >= 1
        await ws.close()
        no_numbers(text)


async def test_only_the_metrics_token_opens_metrics(db_url: str, tmp_path: Path) -> None:
    settings = metrics_settings(db_url, tmp_path, metrics_token=Secret(TOKEN),
                                health_token=Secret("health-only"))
    async with TestClient(TestServer(create_app(settings, transcribe=False))) as client:
        async with client.app[SESSIONMAKER]() as s:
            people = {role: await create_token(s, role=role) for role in ("supervisor", "admin")}
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Bearer health-only"},
                        *({"Authorization": f"Bearer {t}"} for t in people.values())):
            resp = await client.get("/metrics", headers=headers)
            assert resp.status == 401, (headers, resp.status)
            assert "callcenter_" not in await resp.text()
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200
        text = await resp.text()
        assert value(text, "callcenter_ami_link_up", link="standin") == 0
        # prometheus_client's *_created timestamps are left out: no "calls_created" gauge.
        assert "callcenter_calls_total" in text and "_created" not in text
        # The metrics token is no one's identity: it opens nothing else.
        resp = await client.get("/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 401


async def test_without_a_token_or_a_port_metrics_is_not_found(db_url: str,
                                                              tmp_path: Path) -> None:
    async with TestClient(TestServer(create_app(metrics_settings(db_url, tmp_path),
                                                transcribe=False))) as client:
        assert client.app[METRICS_ENDPOINT].port is None
        assert (await client.get("/metrics")).status == 404
        # A token nobody configured is refused as on any page, before the route.
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 401


async def test_the_metrics_port_serves_loopback_without_a_token(db_url: str,
                                                                tmp_path: Path) -> None:
    settings = metrics_settings(db_url, tmp_path, metrics_port=0)
    async with TestClient(TestServer(create_app(settings, transcribe=False))) as client:
        port = client.app[METRICS_ENDPOINT].port
        assert port
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            assert value(await resp.text(), "callcenter_ami_link_up", link="standin") == 0
        # The main listener still has no /metrics: no token is configured.
        assert (await client.get("/metrics")).status == 404
    with pytest.raises(aiohttp.ClientConnectionError):  # closed with the app
        async with aiohttp.ClientSession() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def test_backlog_and_overdue_tickets_are_read_at_scrape_time(
        db_url: str, tmp_path: Path) -> None:
    settings = metrics_settings(db_url, tmp_path, metrics_token=Secret(TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_app(settings, transcribe=False))) as client:
        text = await (await client.get("/metrics", headers=auth)).text()
        for state in ("queued", "running"):
            assert value(text, "callcenter_transcription_backlog", state=state) == 0
        for priority in ("emergency", "normal"):
            assert value(text, "callcenter_tickets_overdue", priority=priority) == 0
        now = datetime.now(UTC)
        async with client.app[SESSIONMAKER]() as s:
            for i, state in enumerate(("queued", "queued", "running", "done", "failed")):
                rec = Recording(context="default", mailbox="8000", msg_id=f"m{i}",
                                sha256=f"{i:064d}", stored_path=f"r{i}.wav", received_at=now)
                rec.job = TranscriptionJob(state=state)
                s.add(rec)
            for n, (priority, state, age) in enumerate((
                    ("emergency", "new", timedelta(minutes=16)),   # overdue
                    ("emergency", "new", timedelta(minutes=10)),   # not yet
                    ("emergency", "dispatched", timedelta(hours=2)),  # answered
                    ("normal", "new", timedelta(hours=5)),         # overdue
                    ("normal", "new", timedelta(minutes=14)))):    # not yet
                s.add(Ticket(number=f"T{n}", source="phone", category="plumbing",
                             priority=priority, department="engineering", state=state,
                             summary="漏水", created_at=now - age, updated_at=now - age))
            await s.commit()
        text = await (await client.get("/metrics", headers=auth)).text()
        assert value(text, "callcenter_transcription_backlog", state="queued") == 2
        assert value(text, "callcenter_transcription_backlog", state="running") == 1
        assert value(text, "callcenter_tickets_overdue", priority="emergency") == 1
        assert value(text, "callcenter_tickets_overdue", priority="normal") == 1
        assert value(text, "callcenter_metrics_refresh_errors_total") == 0
        # What a scrape costs, the two queries included (printed with -s).
        runs = 50
        start = time.perf_counter()
        for _ in range(runs):
            assert (await client.get("/metrics", headers=auth)).status == 200
        print(f"\n/metrics on {db_url.split(':')[0]}: "
              f"{(time.perf_counter() - start) / runs * 1000:.2f} ms a scrape over HTTP")


class FakeTranscriber:
    """Decodes instantly, or fails the way a pool does."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def transcribe(self, path: Path, *,
                         on_start: Callable[[], Awaitable[None]] | None = None) -> str:
        if on_start is not None:
            await on_start()
        await asyncio.sleep(0.01)
        if self.error is not None:
            raise self.error
        return f"text of {path.name}"


async def test_transcription_jobs_are_timed_by_outcome() -> None:
    metrics = Metrics()
    hist = metrics.transcription_job_seconds
    started: list[bool] = []

    async def on_start() -> None:
        started.append(True)

    ok = TimedTranscriber(FakeTranscriber(), hist)
    assert await ok.transcribe(Path("a.wav"), on_start=on_start) == "text of a.wav"
    assert started == [True]
    failing = TimedTranscriber(FakeTranscriber(RuntimeError("decoder")), hist)
    with pytest.raises(RuntimeError):
        await failing.transcribe(Path("b.wav"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await TimedTranscriber(FakeTranscriber(), hist).transcribe(Path("c.wav"))
    text = metrics_text(metrics)
    count = "callcenter_transcription_job_duration_seconds_count"
    assert [value(text, count, outcome=o) for o in ("ok", "error", "timeout")] == [1, 1, 1]
    assert value(text, "callcenter_transcription_job_duration_seconds_sum", outcome="ok") >= 0.01


def metrics_text(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_each_app_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()  # the global registry would refuse the second
    one.calls.labels("answered", "lakeside").inc()
    assert value(metrics_text(one), "callcenter_calls_total") == 1
    assert value(metrics_text(two), "callcenter_calls_total") == 0
    assert not [m for m in REGISTRY.collect() if m.name.startswith("callcenter_")]


@pytest.mark.parametrize(("line", "label"), [
    ('STREAM FILE welcome "12"', "STREAM FILE"),
    ("GET DATA menu-main 5000 1", "GET DATA"),
    ("ANSWER", "ANSWER"),
    ('EXEC Dial "PJSIP/13812345678@trunk,20"', "EXEC Dial"),
    ('EXEC "Queue" "frontdesk"', "EXEC"),
    ('SET VARIABLE CC_DID "4008001234"', "SET VARIABLE"),
    ("ASYNCAGI BREAK", "ASYNCAGI BREAK"),
    ("13812345678", "OTHER"),
    ("", "OTHER"),
])
def test_the_command_label_is_the_verb_never_an_argument(line: str, label: str) -> None:
    assert command_label(line) == label


def test_metrics_settings_are_validated_and_read_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "callcenter.toml"
    path.write_text("[http]\nmetrics_port = 70000\n", encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(path, environ={})
    assert err.value.key == "http.metrics_port"
    path.write_text("[http]\nmetrics_port = 9108\n", encoding="utf-8")
    settings = load_settings(path, environ={"CALLCENTER_HTTP__METRICS_TOKEN": "s3cret"})
    assert settings.http.metrics_port == 9108
    assert settings.http.metrics_token.reveal() == "s3cret"
    assert "s3cret" not in repr(settings) and settings.redacted()["http"]["metrics_token"] == "***"


async def test_a_database_that_cannot_be_read_shows_the_last_figures(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    metrics.tickets_overdue.labels("emergency").set(3)
    down = make_engine("postgresql://postgres@127.0.0.1:1/none")  # nothing listens there
    endpoint = MetricsEndpoint(metrics, lambda: make_sessionmaker(down), SystemClock())
    try:
        for _ in range(3):
            text = (await endpoint.render()).decode()
    finally:
        await down.dispose()
    assert value(text, "callcenter_metrics_refresh_errors_total") == 3
    assert value(text, "callcenter_tickets_overdue", priority="emergency") == 3
    assert len([r for r in caplog.records if "not read" in r.getMessage()]) == 1
