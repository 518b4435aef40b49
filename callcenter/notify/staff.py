"""Pick a channel for one member of staff from their ``StaffUser.notify`` settings.

``notify`` is a small dict: ``{"wecom": <robot webhook>}``,
``{"dingtalk": <webhook>, "dingtalk_secret": "SEC..."}``, ``{"webhook": <url>}``
or ``{"email": "a@b.cn"}``; the first one present is used, else the default.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from callcenter.clock import Clock
from callcenter.notify.base import (
    DeliveryRecorder,
    MemoryRecorder,
    Notifier,
    RetryingNotifier,
    RetryPolicy,
)
from callcenter.notify.email import EmailNotifier, SmtpSettings
from callcenter.notify.robots import DingTalkRobot, JsonWebhook, WeComRobot


class StaffNotifiers:
    def __init__(self, http: aiohttp.ClientSession, clock: Clock, *,
                 policy: RetryPolicy | None = None, recorder: DeliveryRecorder | None = None,
                 smtp: SmtpSettings | None = None, default: Notifier | None = None) -> None:
        self._http = http
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self.recorder = recorder or MemoryRecorder()
        self._smtp = smtp
        self._default = default

    def channel_for(self, notify: Mapping[str, str]) -> Notifier | None:
        if notify.get("wecom"):
            return WeComRobot(self._http, notify["wecom"])
        if notify.get("dingtalk"):
            return DingTalkRobot(self._http, notify["dingtalk"],
                                 secret=notify.get("dingtalk_secret", ""))
        if notify.get("webhook"):
            return JsonWebhook(self._http, notify["webhook"])
        if notify.get("email") and self._smtp is not None:
            return EmailNotifier(self._smtp, (notify["email"],))
        return self._default

    def for_staff(self, notify: Mapping[str, str]) -> RetryingNotifier | None:
        inner = self.channel_for(notify)
        if inner is None:
            return None
        return RetryingNotifier(inner, clock=self._clock, policy=self._policy,
                                recorder=self.recorder)
