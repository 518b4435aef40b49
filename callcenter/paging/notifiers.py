"""A person's own notifiers for paging, from ``StaffUser.notify`` ({channel: address}).

The channels are chosen and built by ``callcenter.notify.staff.StaffNotifiers``,
the same code the screen-pop uses (a signed DingTalk robot, ``dingtalk_secret``,
is signed here too); paging then keeps those its escalation step names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aiohttp

from callcenter.clock import Clock, SystemClock
from callcenter.notify import Notifier, SmtpSettings
from callcenter.notify.staff import StaffNotifiers
from callcenter.paging.worker import UserNotifiers


def user_notifiers(http: aiohttp.ClientSession, *, smtp: SmtpSettings | None = None,
                   timeout_s: float = 5.0, clock: Clock | None = None) -> UserNotifiers:
    staff = StaffNotifiers(http, clock or SystemClock(), smtp=smtp, timeout_s=timeout_s)

    def build(notify: Mapping[str, str]) -> Sequence[Notifier]:
        return staff.channels(notify)

    return build
