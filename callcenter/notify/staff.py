"""A member of staff's own channels, from their ``StaffUser.notify`` settings.

``notify`` is a small dict: ``{"wecom": <robot webhook>}``,
``{"dingtalk": <webhook>, "dingtalk_secret": "SEC..."}`` (a signed robot: 加签),
``{"webhook": <url>}`` or ``{"email": "a@b.cn"}``. ``channels`` builds every one
configured, in that order (paging sends to those its escalation step names);
``channel_for`` the first, else the default (the screen-pop's summary to night
duty). Both go through this one place, so a signed DingTalk robot is signed
wherever it is used.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

CHANNEL_ORDER = ("wecom", "dingtalk", "webhook", "email")
SETTING_KEYS = frozenset({"dingtalk_secret"})  # settings of a channel, not channels


class StaffNotifiers:
    def __init__(self, http: aiohttp.ClientSession, clock: Clock, *,
                 policy: RetryPolicy | None = None, recorder: DeliveryRecorder | None = None,
                 smtp: SmtpSettings | None = None, default: Notifier | None = None,
                 timeout_s: float = 5.0) -> None:
        self._http = http
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self.recorder = recorder or MemoryRecorder()
        self._smtp = smtp
        self._default = default
        self._timeout = timeout_s

    def channels(self, notify: Mapping[str, str]) -> list[Notifier]:
        """Every channel configured in ``notify``, in ``CHANNEL_ORDER``; unknown keys
        and e-mail without SMTP settings are skipped."""
        out: list[Notifier] = []
        for channel in CHANNEL_ORDER:
            address = notify.get(channel)
            if not address:
                continue
            if channel == "wecom":
                out.append(WeComRobot(self._http, address, timeout_s=self._timeout))
            elif channel == "dingtalk":
                out.append(DingTalkRobot(self._http, address, timeout_s=self._timeout,
                                         secret=notify.get("dingtalk_secret", "")))
            elif channel == "webhook":
                out.append(JsonWebhook(self._http, address, timeout_s=self._timeout))
            elif self._smtp is not None:
                out.append(EmailNotifier(self._smtp, (address,)))
            else:
                log.debug("notify: e-mail to %s skipped, no SMTP settings", address)
        for key in notify:
            if key not in CHANNEL_ORDER and key not in SETTING_KEYS:
                log.debug("notify channel %r skipped", key)
        return out

    def channel_for(self, notify: Mapping[str, str]) -> Notifier | None:
        found = self.channels(notify)
        return found[0] if found else self._default

    def for_staff(self, notify: Mapping[str, str]) -> RetryingNotifier | None:
        inner = self.channel_for(notify)
        if inner is None:
            return None
        return RetryingNotifier(inner, clock=self._clock, policy=self._policy,
                                recorder=self.recorder)
