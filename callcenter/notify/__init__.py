"""Sending a short message to people who are not looking at a screen.

``Notifier`` is the one protocol; WeCom (企业微信) and DingTalk (钉钉) group
robots, a generic JSON webhook and e-mail implement it. ``RetryingNotifier``
wraps any of them with retries, exponential backoff and a record of every
failure. The screen-pop (night duty on a mobile) and paging both use it.
"""

from callcenter.notify.base import (
    DeliveryRecorder,
    DeliveryResult,
    MemoryRecorder,
    Notification,
    Notifier,
    NotifyError,
    RetryingNotifier,
    RetryPolicy,
)
from callcenter.notify.email import EmailNotifier, SmtpSettings
from callcenter.notify.robots import DingTalkRobot, JsonWebhook, WeComRobot

__all__ = [
    "DeliveryRecorder",
    "DeliveryResult",
    "DingTalkRobot",
    "EmailNotifier",
    "JsonWebhook",
    "MemoryRecorder",
    "Notification",
    "Notifier",
    "NotifyError",
    "RetryPolicy",
    "RetryingNotifier",
    "SmtpSettings",
    "WeComRobot",
]
