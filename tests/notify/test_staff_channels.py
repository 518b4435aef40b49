"""One choice of channels for a member of staff, shared by the screen-pop and paging:
WeCom, DingTalk (signed when ``dingtalk_secret`` is set) and a webhook, checked by
what reaches a local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.clock import ManualClock
from callcenter.notify import DingTalkRobot, JsonWebhook, Notification, WeComRobot
from callcenter.notify.staff import StaffNotifiers
from callcenter.paging.notifiers import user_notifiers

MSG = Notification(title="紧急事件", text="3栋1单元1201室 漏水", key="inc-1")


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[tuple[str, str, Any]]]]:
    got: list[tuple[str, str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((request.match_info["who"], str(request.rel_url), await request.json()))
        return web.json_response({"errcode": 0})

    app = web.Application()
    app.router.add_post("/{who}", handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), got
    finally:
        await server.close()


def _signed(query: dict[str, list[str]], secret: str) -> bool:
    ts = query["timestamp"][0]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    return query.get("sign") == [expected]


async def test_pop_and_paging_pick_the_same_channels(hooks: tuple[str, list[Any]]) -> None:
    base, _got = hooks
    notify = {"dingtalk": f"{base}/ding?access_token=t", "dingtalk_secret": "SECxyz",
              "webhook": f"{base}/hook", "wecom": f"{base}/wecom", "fax": "0755-1"}
    async with aiohttp.ClientSession() as http:
        staff = StaffNotifiers(http, ManualClock())
        chosen = staff.channels(notify)
        assert [type(n) for n in chosen] == [WeComRobot, DingTalkRobot, JsonWebhook]
        paged = user_notifiers(http)(notify)
        assert [n.channel for n in paged] == [n.channel for n in chosen]
        first = staff.channel_for(notify)  # the pop's summary to night duty
        assert first is not None and first.channel == "wecom"
        assert staff.channels({"dingtalk_secret": "SECxyz"}) == []


@pytest.mark.parametrize("channel", ["wecom", "dingtalk", "webhook"])
async def test_paging_sends_through_each_channel(hooks: tuple[str, list[Any]],
                                                 channel: str) -> None:
    base, got = hooks
    notify = {channel: f"{base}/{channel}?access_token=t" if channel == "dingtalk"
              else f"{base}/{channel}"}
    if channel == "dingtalk":
        notify["dingtalk_secret"] = "SECxyz"
    async with aiohttp.ClientSession() as http:
        (notifier,) = user_notifiers(http)(notify)
        await notifier.send(MSG)
    ((who, url, body),) = got
    assert who == channel
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if channel == "wecom":
        assert body["msgtype"] == "markdown" and "漏水" in body["markdown"]["content"]
    elif channel == "dingtalk":
        # A signed robot refuses unsigned messages (errcode 310000): paging signs.
        assert query["access_token"] == ["t"] and _signed(query, "SECxyz")
        assert body["markdown"]["title"] == "紧急事件"
    else:
        assert body["title"] == "紧急事件" and body["key"] == "inc-1"


async def test_unsigned_dingtalk_robot_stays_unsigned(hooks: tuple[str, list[Any]]) -> None:
    base, got = hooks
    async with aiohttp.ClientSession() as http:
        (robot,) = user_notifiers(http)({"dingtalk": f"{base}/ding"})
        await robot.send(MSG)
    assert "sign=" not in got[0][1]
