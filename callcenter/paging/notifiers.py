"""A person's own notifiers, from ``StaffUser.notify`` ({channel: address}).

``{"wecom": <robot webhook URL>, "dingtalk": <robot URL>, "webhook": <URL>,
"email": <address>}``; unknown channels and e-mail without SMTP settings are
skipped (and logged once per build).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import aiohttp

from callcenter.notify import (
    DingTalkRobot,
    EmailNotifier,
    JsonWebhook,
    Notifier,
    SmtpSettings,
    WeComRobot,
)
from callcenter.paging.worker import UserNotifiers

log = logging.getLogger(__name__)


def user_notifiers(http: aiohttp.ClientSession, *, smtp: SmtpSettings | None = None,
                   timeout_s: float = 5.0) -> UserNotifiers:
    def build(notify: Mapping[str, str]) -> Sequence[Notifier]:
        out: list[Notifier] = []
        for channel, address in notify.items():
            if not address:
                continue
            if channel == "wecom":
                out.append(WeComRobot(http, address, timeout_s=timeout_s))
            elif channel == "dingtalk":
                out.append(DingTalkRobot(http, address, timeout_s=timeout_s))
            elif channel == "webhook":
                out.append(JsonWebhook(http, address, timeout_s=timeout_s))
            elif channel == "email" and smtp is not None:
                out.append(EmailNotifier(smtp, (address,)))
            else:
                log.debug("notify channel %r skipped", channel)
        return out

    return build
