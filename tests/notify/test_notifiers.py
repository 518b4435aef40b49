"""Notifiers against a real local HTTP server that fails, then succeeds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.clock import ManualClock
from callcenter.notify import (
    DingTalkRobot,
    JsonWebhook,
    MemoryRecorder,
    Notification,
    RetryingNotifier,
    RetryPolicy,
    WeComRobot,
)
from callcenter.notify.base import NotifyError


class FlakyEndpoint:
    """Answers with the given statuses/bodies in turn, records every request."""

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((str(request.rel_url), await request.json()))
        status, body = self.script.pop(0) if self.script else (200, {"errcode": 0})
        return web.json_response(body, status=status)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def serve(endpoint: FlakyEndpoint) -> TestServer:
    app = web.Application()
    app.router.add_post("/hook", endpoint.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


MSG = Notification(title="来电：张三", text="3栋1单元1201室", fields=(("欠费", "1200.00"),), key="c1")


async def drive(clock: ManualClock, coro: Any) -> Any:
    """Run ``coro`` while advancing the manual clock whenever it sleeps."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.sleep(0.01)
        if clock.sleepers:
            await clock.advance(60)
    return task.result()


async def test_wecom_retries_server_errors_then_succeeds(http: aiohttp.ClientSession) -> None:
    endpoint = FlakyEndpoint([(503, {}), (500, {}), (200, {"errcode": 0, "errmsg": "ok"})])
    server = await serve(endpoint)
    try:
        clock = ManualClock()
        recorder = MemoryRecorder()
        notifier = RetryingNotifier(WeComRobot(http, str(server.make_url("/hook"))), clock=clock,
                                    policy=RetryPolicy(attempts=4, base_delay_s=2, factor=3),
                                    recorder=recorder)
        start = clock.monotonic()
        result = await drive(clock, notifier.send(MSG))
        assert result.ok and result.attempts == 3 and result.channel == "wecom"
        # Backoff 2 s then 6 s, on the injected clock.
        assert clock.monotonic() - start >= 8
        assert len(endpoint.requests) == 3
        body = endpoint.requests[-1][1]
        assert body["msgtype"] == "markdown"
        assert "张三" in body["markdown"]["content"] and "1200.00" in body["markdown"]["content"]
        assert recorder.failures == []
    finally:
        await server.close()


async def test_gives_up_after_attempts_and_records_failure(http: aiohttp.ClientSession) -> None:
    endpoint = FlakyEndpoint([(502, {})] * 10)
    server = await serve(endpoint)
    try:
        clock = ManualClock()
        recorder = MemoryRecorder()
        notifier = RetryingNotifier(JsonWebhook(http, str(server.make_url("/hook"))), clock=clock,
                                    policy=RetryPolicy(attempts=3, base_delay_s=1), recorder=recorder)
        result = await drive(clock, notifier.send(MSG))
        assert not result.ok and result.attempts == 3
        assert len(endpoint.requests) == 3
        assert [f.key for f in recorder.failures] == ["c1"]
        assert "502" in recorder.failures[0].error
    finally:
        await server.close()


async def test_client_error_is_not_retried(http: aiohttp.ClientSession) -> None:
    endpoint = FlakyEndpoint([(400, {"bad": 1}), (200, {})])
    server = await serve(endpoint)
    try:
        clock = ManualClock()
        notifier = RetryingNotifier(JsonWebhook(http, str(server.make_url("/hook"))), clock=clock)
        result = await drive(clock, notifier.send(MSG))
        assert not result.ok and result.attempts == 1 and len(endpoint.requests) == 1
    finally:
        await server.close()


async def test_robot_errcode_is_a_failure(http: aiohttp.ClientSession) -> None:
    endpoint = FlakyEndpoint([(200, {"errcode": 93000, "errmsg": "invalid webhook url"})])
    server = await serve(endpoint)
    try:
        robot = WeComRobot(http, str(server.make_url("/hook")))
        with pytest.raises(NotifyError) as err:
            await robot.send(MSG)
        assert err.value.details["errcode"] == 93000 and not err.value.retryable
    finally:
        await server.close()


async def test_unreachable_endpoint_is_retryable(http: aiohttp.ClientSession) -> None:
    server = await serve(FlakyEndpoint([]))
    url = str(server.make_url("/hook"))
    await server.close()  # nothing listens there now
    with pytest.raises(NotifyError) as err:
        await JsonWebhook(http, url, timeout_s=2).send(MSG)
    assert err.value.retryable


async def test_dingtalk_signs_the_url(http: aiohttp.ClientSession) -> None:
    endpoint = FlakyEndpoint([(200, {"errcode": 0})])
    server = await serve(endpoint)
    try:
        robot = DingTalkRobot(http, str(server.make_url("/hook")) + "?access_token=t",
                              secret="SECabc", now_ms=lambda: 1700000000000)
        await robot.send(Notification(title="报修", text="漏水", mentions=("13800000000",)))
        url, body = endpoint.requests[0]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        expected = base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc",
                                             hashlib.sha256).digest()).decode()
        assert query["access_token"] == ["t"] and query["timestamp"] == ["1700000000000"]
        assert query["sign"] == [expected]
        assert body["at"]["atMobiles"] == ["13800000000"]
        assert json.dumps(body, ensure_ascii=False).count("漏水") == 1
    finally:
        await server.close()
