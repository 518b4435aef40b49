"""Every log line made while handling a call carries the call's ids; no line
carries an owner's full number; ``[logging] format = "json"`` writes one JSON
object per line, from a real ``callcenter run`` process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import ManualClock
from callcenter.demo import demo_settings, free_port
from callcenter.logs import CallContextFilter, bind_call, configure_logging
from callcenter.settings import (
    LoggingSettings,
    Settings,
    SettingsError,
    load_logging_settings,
    settings_from_mapping,
)
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Press, Wait
from callcenter.snapshot import Snapshot
from tests.integration.demo_db import heartbeat_seen

CALLER = "13912345678"


async def test_call_ids_follow_each_task(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.calls")
    caplog.handler.addFilter(CallContextFilter())
    caplog.set_level(logging.INFO)

    async def call(linkedid: str) -> None:
        with bind_call(linkedid=linkedid, uniqueid=linkedid + ".1"):
            await asyncio.sleep(0)
            log.info("menu")

    await asyncio.gather(call("100.1"), call("200.1"))
    log.info("outside")
    calls = {r.getMessage(): r.call for r in caplog.records}  # type: ignore[attr-defined]
    lines = sorted(r.call for r in caplog.records if r.getMessage() == "menu")  # type: ignore[attr-defined]
    assert lines == [" [linkedid=100.1 uniqueid=100.1.1]", " [linkedid=200.1 uniqueid=200.1.1]"]
    assert calls["outside"] == ""


@contextlib.contextmanager
def _logging_to(fmt: str) -> Iterator[io.StringIO]:
    """The process's logging configured as ``callcenter`` does, into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(LoggingSettings(format=fmt), stream=out)
    try:
        yield out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()


def test_json_lines_carry_the_call_ids_and_mask_numbers_in_exceptions_and_extras() -> None:
    log = logging.getLogger("test.masking")
    with _logging_to("json") as out:
        with bind_call(linkedid="1764750000.7", uniqueid="1764750000.8", pbx="pbx1"):
            try:
                raise ValueError(f"no owner for +86 {CALLER[:3]} {CALLER[3:7]} {CALLER[7:]}")
            except ValueError:
                log.exception("lookup of %s failed", CALLER,
                              extra={"caller": f"tel:+86{CALLER}", "digits": int(CALLER),
                                     "targets": [f"PJSIP/{CALLER}@trunk", "PJSIP/8001"],
                                     "ext": "8001", "ticket": "20261203-0042"})
        structlog.get_logger("test.structlog").warning("page.retry", number=f"0{CALLER}",
                                                       attempt=2)
        log.info("outside any call")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    first, second, third = lines
    assert first["event"] == "lookup of 139****5678 failed"
    assert (first["level"], first["logger"]) == ("error", "test.masking")
    assert (first["linkedid"], first["uniqueid"], first["pbx"]) == \
        ("1764750000.7", "1764750000.8", "pbx1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", first["ts"])
    assert "Traceback" in first["exc_info"]
    assert first["exc_info"].endswith("ValueError: no owner for 139****5678")
    assert first["caller"] == "tel:139****5678"
    assert first["digits"] == "139****5678"
    assert first["targets"] == ["PJSIP/139****5678@trunk", "PJSIP/8001"]
    assert (first["ext"], first["ticket"]) == ("8001", "20261203-0042")  # not numbers
    assert second["event"] == "page.retry"
    assert (second["number"], second["attempt"]) == ("139****5678", 2)
    assert "linkedid" not in third
    assert CALLER not in out.getvalue()


def test_text_lines_stay_readable_and_masked() -> None:
    log = logging.getLogger("test.text")
    with _logging_to("text") as out, bind_call(linkedid="1764750000.7"):
        log.warning("call from %s to 8001", CALLER)
    line = out.getvalue().rstrip("\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING test\.text "
                        r"\[linkedid=1764750000\.7\]: call from 139\*\*\*\*5678 to 8001", line), line


async def test_bus_handlers_and_their_tasks_log_with_the_call_of_their_event(
        caplog: pytest.LogCaptureFixture) -> None:
    """The tracker publishes from the AMI reader, which is bound to no call."""
    log = logging.getLogger("test.bus")
    caplog.handler.addFilter(CallContextFilter())
    caplog.set_level(logging.INFO)
    bus = EventBus()

    async def child() -> None:
        log.info("child")

    async def handler(event: DomainEvent) -> None:
        log.info("heard %s", event.name)
        await asyncio.create_task(child())

    bus.subscribe("call.*", handler)
    bus.publish(DomainEvent("call.started", {"linkedid": "1764750000.1", "uniqueid": "1764750000.2",
                                             "asterisk": "pbx1"}))
    bus.publish(DomainEvent("call.queue", {"asterisk": "pbx1"}))
    await bus.drain()
    calls = sorted(r.call for r in caplog.records)  # type: ignore[attr-defined]
    assert calls == [" [linkedid=1764750000.1 uniqueid=1764750000.2 pbx=pbx1]"] * 2 + \
        [" [pbx=pbx1]"] * 2


async def test_work_shared_by_many_calls_does_not_carry_the_call_that_started_it() -> None:
    """A stale cache read during one call reloads for everyone: its lines are
    about no call."""
    seen: list[dict[str, Any]] = []
    reloaded = asyncio.Event()

    async def load() -> int:
        seen.append(structlog.contextvars.get_contextvars())
        if len(seen) == 2:
            reloaded.set()
        return len(seen)

    clock = ManualClock(datetime(2026, 12, 3, tzinfo=UTC))
    snap: Snapshot[int] = Snapshot(load, clock, ttl_s=1.0)
    await snap.get()
    await clock.advance(2.0)
    with bind_call(linkedid="1764750000.3"):
        assert await snap.get() == 1  # the old copy, at once; reloaded behind
        await asyncio.wait_for(reloaded.wait(), 5)
    assert "linkedid" not in seen[1]


def test_logging_settings_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text('[logging]\nformat = "json"\n[http]\nport = "not a port"\n', encoding="utf-8")
    # Only [logging] is read: the command that needs the rest reports its errors.
    assert load_logging_settings(config, environ={}) == LoggingSettings(format="json")
    assert load_logging_settings(None, environ={"CALLCENTER_LOGGING__LEVEL": "debug"}) == \
        LoggingSettings(level="debug")


def test_logging_settings_are_checked_with_the_key() -> None:
    assert settings_from_mapping({"logging": {"format": "json", "level": "debug"}}).logging == \
        LoggingSettings(format="json", level="debug")
    with pytest.raises(SettingsError) as err:
        settings_from_mapping({"logging": {"format": "xml"}}, "site.toml")
    assert err.value.key == "logging.format"
    with pytest.raises(SettingsError) as err:
        settings_from_mapping({"logging": {"level": "LOUD"}}, "site.toml")
    assert err.value.key == "logging.level"


# ------------------------------------------------------------ a real server process

def _toml(settings: Settings, data_dir: Path) -> str:
    pbx, fa, vm = settings.asterisk[0], settings.fastagi, settings.voicemail
    return f"""
data_dir = "{data_dir}"
default_community = "{settings.default_community}"
[http]
host = "127.0.0.1"
port = 0
[[asterisk]]
name = "{pbx.name}"
host = "{pbx.host}"
port = {pbx.port}
username = "{pbx.username}"
secret = "{pbx.secret.reveal()}"
ping_interval = {pbx.ping_interval}
trunk = "{pbx.trunk}"
extension_channel = "{pbx.extension_channel}"
[fastagi]
host = "{fa.host}"
port = {fa.port}
[voicemail]
spool_dir = "{vm.spool_dir}"
scan_interval_s = 60
[logging]
format = "json"
"""


@contextlib.contextmanager
def _server(config: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "callcenter", "--config", str(config), "run"],
                                stdout=subprocess.PIPE, stderr=err)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _listening(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    assert b"listening on" in line, _read(log_path)
    return line.decode()


def _read(log_path: Path) -> str:
    return log_path.read_text(encoding="utf-8", errors="replace")


def _records(log_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]


async def _wait_for(log_path: Path, pattern: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        text = _read(log_path)
        if re.search(pattern, text):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no log line matching {pattern!r}:\n{text}")


# Lines that are about no call, however near in time: the process's own loops.
BACKGROUND = ("callcenter.ami.client", "callcenter.ami.heartbeat", "callcenter.ami.resync",
              "callcenter.server", "callcenter.console.queue_sync")


@pytest.mark.parametrize("transport", ["fastagi", "asyncagi"])
async def test_a_real_server_writes_json_lines_with_the_linkedid_and_never_the_number(
        tmp_path: Path, transport: str) -> None:
    data_dir = tmp_path / "data"
    settings = demo_settings(data_dir, 0, ami_port=free_port(), fastagi_port=free_port())
    config = tmp_path / "callcenter.toml"
    config.write_text(_toml(settings, data_dir), encoding="utf-8")
    log_path = tmp_path / "server.log"
    standin = AsteriskStandIn.from_settings(settings, ivr_transport=transport, prompt_seconds=0.05)
    await standin.start()
    try:
        with _server(config, log_path) as proc:
            printed = await _listening(proc, log_path)
            await heartbeat_seen(standin, within_s=30)
            # 报修 → 其他: a message, which the ingest turns into a ticket.
            placed_at = datetime.now(UTC)
            call = standin.place_call(Caller(number=CALLER, name="业主", did="4008001234",
                                             script=[Wait(0.3), Press("1"), Wait(0.3), Press("4"),
                                                     Wait(1.5), HangUp()]))
            linkedid = call.app.linkedid
            await asyncio.wait_for(call.gone.wait(), 30)
            await _wait_for(log_path, r"voicemail recording \d+ → ticket", 30)
            proc.terminate()
            proc.wait(15)
            assert proc.stdout is not None
            stdout = printed + proc.stdout.read().decode()
    finally:
        await standin.stop()

    records = _records(log_path)  # every line is one JSON object
    assert all({"ts", "level", "logger", "event"} <= r.keys() for r in records)
    # From the moment the call is placed to its ticket, every line but the
    # process's own loops' is about the call, and names it.
    end = next(i for i, r in enumerate(records) if re.match(r"voicemail recording \d+ → ticket",
                                                             r["event"]))
    window = [r for r in records[:end + 1] if datetime.fromisoformat(r["ts"]) >= placed_at]
    about_no_call = [r for r in window if r["logger"] not in BACKGROUND
                     and r.get("linkedid") != linkedid]
    assert about_no_call == []
    events = {r["event"] for r in window}
    assert any(e.startswith("IVR call, unknown caller, for lakeside") for e in events), events
    assert any(re.match(r"voicemail .* registered as recording", e) for e in events), events
    assert any(re.match(r"voicemail recording \d+ → ticket", e) for e in events), events
    text = _read(log_path) + stdout
    assert CALLER not in text and CALLER not in re.sub(r"[\s-]", "", text)
