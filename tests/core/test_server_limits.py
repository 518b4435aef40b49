"""The server under slow clients: a real ``callcenter run`` process with a low
open-file limit, real sockets.

More slow clients than the server has descriptors: ``/healthz`` still answers
while they hang on, they are dropped once the header (or body) timeout passes,
and the log says so in a few lines, not one per refused accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from callcenter.server import (
    ConnectionGuard,
    OutOfFilesLogFilter,
    connection_limit,
    fd_headroom,
)
from callcenter.settings import HttpSettings

pytestmark = pytest.mark.slow

NOFILE = 256
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 3.0


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(tmp: Path, nofile: int) -> Iterator[tuple[int, Path]]:
    """``callcenter run`` on a free port with ``ulimit -n nofile``; (port, log file)."""
    (tmp / "data").mkdir()
    config = tmp / "callcenter.toml"
    config.write_text(f"""
data_dir = "{tmp / 'data'}"
[http]
host = "127.0.0.1"
port = 0
header_timeout_s = {HEADER_TIMEOUT_S}
body_timeout_s = {BODY_TIMEOUT_S}
keepalive_timeout_s = 5
[[asterisk]]
name = "pbx1"
host = "127.0.0.1"
port = {_closed_port()}
username = "callcenter"
secret = "x"
[fastagi]
port = 0
[voicemail]
spool_dir = "{tmp / 'spool'}"
""", encoding="utf-8")
    log_path = tmp / "server.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "callcenter", "--config", str(config),
                                 "run"], stdout=subprocess.PIPE, stderr=log, preexec_fn=limit)
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            port = 0
            while time.monotonic() < deadline:
                line = proc.stdout.readline().decode()
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
                if m:
                    port = int(m.group(1))
                    break
                if not line and proc.poll() is not None:
                    break
            assert port, log_path.read_text(errors="replace")
            yield port, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _slow_client(port: int, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    return reader, writer


async def _closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    """True when the server closes (or resets) the connection within ``within_s``."""
    try:
        async with asyncio.timeout(within_s):
            while await reader.read(4096):
                pass
        return True
    except TimeoutError:  # an OSError too: first
        return False
    except OSError:
        return True


async def _healthz(session: aiohttp.ClientSession, port: int) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.get(f"http://127.0.0.1:{port}/healthz",
                           timeout=aiohttp.ClientTimeout(total=5)) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - started


async def test_slow_clients_beyond_the_fd_limit_neither_stop_healthz_nor_stay(
        tmp_path: Path) -> None:
    slow_count = NOFILE + 150  # more than the process could ever hold open
    with server_process(tmp_path, NOFILE) as (port, log_path):
        clients = []
        for _ in range(slow_count):
            with contextlib.suppress(OSError):
                # A head that never ends: one header line, then nothing.
                clients.append(await _slow_client(
                    port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"))
        assert len(clients) > NOFILE
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(5):  # while all of them hang on
                status, took = await _healthz(session, port)
                assert status == 200 and took < 2.0, (status, took)
            # Once the header timeout has passed, every slow client has been dropped.
            closed = await asyncio.gather(*(
                _closed_by_server(r, HEADER_TIMEOUT_S + 3.0) for r, _ in clients))
            assert all(closed), f"{closed.count(False)} slow clients still open"
            for _, w in clients:
                w.close()
            # A head followed by a body that never comes is dropped after the body timeout.
            reader, writer = await _slow_client(
                port, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser")
            assert not await _closed_by_server(reader, BODY_TIMEOUT_S - 1.5)
            assert await _closed_by_server(reader, 4.0)
            writer.close()
            status, _ = await _healthz(session, port)
            assert status == 200
    log = log_path.read_text(errors="replace")
    fd_lines = [line for line in log.splitlines()
                if "Too many open files" in line or "out of system resource" in line]
    assert len(fd_lines) <= 3, fd_lines[:5]


async def test_a_client_sending_its_head_in_time_is_served(tmp_path: Path) -> None:
    """Slow but within the header timeout: served, not cut off."""
    with server_process(tmp_path, NOFILE) as (port, _):
        reader, writer = await _slow_client(port, b"GET /healthz HTTP/1.1\r\n")
        await asyncio.sleep(HEADER_TIMEOUT_S / 2)
        writer.write(b"Host: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


def test_the_connection_limit_stays_below_the_open_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_limit(10**9) == soft - fd_headroom(soft)
    assert connection_limit(10) == min(10, soft - fd_headroom(soft))
    assert ConnectionGuard(object, HttpSettings(max_connections=10**9)).max_connections < soft


def test_out_of_files_errors_are_logged_once_per_interval_with_a_count() -> None:
    now = [0.0]
    flt = OutOfFilesLogFilter(10.0, now=lambda: now[0])

    def record(msg: str, exc: BaseException | None = None) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None,
                                 (type(exc), exc, None) if exc else None)

    emfile = OSError(24, "Too many open files")
    passed = [flt.filter(r) for r in
              [record("socket.accept() out of system resource", emfile) for _ in range(1000)]]
    assert passed.count(True) == 1
    assert flt.filter(record("something else"))  # other records are untouched
    now[0] = 10.5
    last = record("socket.accept() out of system resource", emfile)
    assert flt.filter(last) and "999 more like this" in last.getMessage()
