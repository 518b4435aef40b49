"""Group robots and webhooks over HTTP: WeCom (企业微信), DingTalk (钉钉), generic JSON.

Each takes an ``aiohttp.ClientSession`` (owned by whoever wires it, closed in a
``cleanup_ctx``) and a per-request timeout. 5xx, 429 and network errors are
retryable; 4xx and a robot's own error code are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from callcenter.notify.base import Notification, NotifyError


async def _post_json(session: aiohttp.ClientSession, url: str, payload: Any, *,
                     timeout_s: float, headers: Mapping[str, str] | None = None,
                     channel: str) -> Any:
    try:
        async with session.post(url, json=payload, headers=dict(headers or {}),
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            body_text = await resp.text()
            if resp.status >= 500 or resp.status == 429:
                raise NotifyError(f"{channel}: HTTP {resp.status}", retryable=True,
                                  details={"status": resp.status, "body": body_text[:300]})
            if resp.status >= 400:
                raise NotifyError(f"{channel}: HTTP {resp.status}", retryable=False,
                                  details={"status": resp.status, "body": body_text[:300]})
            try:
                return await resp.json(content_type=None)
            except ValueError:
                return None
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise NotifyError(f"{channel}: {type(exc).__name__}: {exc}", retryable=True,
                          details={"exception": type(exc).__name__}) from exc


def _check_errcode(body: Any, channel: str) -> None:
    if isinstance(body, dict) and body.get("errcode", 0) not in (0, "0"):
        code = body.get("errcode")
        # 45009 (WeCom) / 130101 (DingTalk): sending too fast, worth another try.
        retry = code in (45009, 130101, -1)
        raise NotifyError(f"{channel}: errcode {code}: {body.get('errmsg', '')}",
                          retryable=retry, details={"errcode": code})


class WeComRobot:
    """企业微信群机器人: POST {"msgtype": "markdown"|"text", ...} to the webhook URL."""

    channel = "wecom"

    def __init__(self, session: aiohttp.ClientSession, webhook_url: str, *,
                 timeout_s: float = 5.0, markdown: bool = True) -> None:
        self._session = session
        self._url = webhook_url
        self._timeout = timeout_s
        self._markdown = markdown

    def payload(self, message: Notification) -> dict[str, Any]:
        if self._markdown and not message.mentions:
            return {"msgtype": "markdown", "markdown": {"content": message.as_markdown()}}
        return {"msgtype": "text", "text": {"content": message.as_text(),
                                            "mentioned_mobile_list": list(message.mentions)}}

    async def send(self, message: Notification) -> None:
        body = await _post_json(self._session, self._url, self.payload(message),
                                timeout_s=self._timeout, channel=self.channel)
        _check_errcode(body, self.channel)


class DingTalkRobot:
    """钉钉自定义机器人, optionally signed (加签): timestamp + HMAC-SHA256 of
    ``"{timestamp}\\n{secret}"`` in the query string."""

    channel = "dingtalk"

    def __init__(self, session: aiohttp.ClientSession, webhook_url: str, *,
                 secret: str = "", timeout_s: float = 5.0,
                 now_ms: Callable[[], int] | None = None) -> None:
        self._session = session
        self._url = webhook_url
        self._secret = secret
        self._timeout = timeout_s
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))

    def signed_url(self) -> str:
        if not self._secret:
            return self._url
        ts = str(self._now_ms())
        digest = hmac.new(self._secret.encode(), f"{ts}\n{self._secret}".encode(),
                          hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(digest))
        sep = "&" if "?" in self._url else "?"
        return f"{self._url}{sep}timestamp={ts}&sign={sign}"

    def payload(self, message: Notification) -> dict[str, Any]:
        return {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": message.as_markdown()},
            "at": {"atMobiles": list(message.mentions), "isAtAll": False},
        }

    async def send(self, message: Notification) -> None:
        body = await _post_json(self._session, self.signed_url(), self.payload(message),
                                timeout_s=self._timeout, channel=self.channel)
        _check_errcode(body, self.channel)


class JsonWebhook:
    """Any HTTP endpoint: POST {"title", "text", "fields": {...}, "key"}; 2xx is success."""

    channel = "webhook"

    def __init__(self, session: aiohttp.ClientSession, url: str, *,
                 headers: Mapping[str, str] | None = None, timeout_s: float = 5.0) -> None:
        self._session = session
        self._url = url
        self._headers = dict(headers or {})
        self._timeout = timeout_s

    @staticmethod
    def payload(message: Notification) -> dict[str, Any]:
        return {"title": message.title, "text": message.text,
                "fields": dict(message.fields), "key": message.key,
                "mentions": list(message.mentions)}

    async def send(self, message: Notification) -> None:
        await _post_json(self._session, self._url, self.payload(message), timeout_s=self._timeout,
                         headers=self._headers, channel=self.channel)
