"""Re-read state from Asterisk after a (re)connect or ``FullyBooted``.

Memory is not trusted across a gap: calls may have ended or started while the
link was down. What Asterisk reports now is taken as a ``Snapshot`` and handed
to the call tracker (``CallTracker.apply_snapshot``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from callcenter.ami.client import AmiLink
from callcenter.ami.errors import AmiActionError
from callcenter.ami.parser import Frame
from callcenter.calls.tracker import Snapshot

log = logging.getLogger(__name__)


async def take_snapshot(link: AmiLink, mailboxes: Sequence[str], *,
                        requested_at: datetime | None = None) -> Snapshot:
    """``CoreShowChannels``, ``QueueStatus``, ``MailboxCount`` per mailbox.

    A PBX without app_queue or app_voicemail answers those with an error; that
    part of the snapshot is then empty, the rest still counts."""
    channels = await link.send_action({"Action": "CoreShowChannels"})
    queue_entries: tuple[Frame, ...] = ()
    try:
        queues = await link.send_action({"Action": "QueueStatus"})
        queue_entries = tuple(e for e in queues.events if e.event == "QueueEntry")
    except AmiActionError as exc:
        log.info("%s: QueueStatus unavailable: %s", link.name, exc.response_message)
    counts: dict[str, tuple[int, int]] = {}
    for mailbox in mailboxes:
        try:
            resp = await link.send_action({"Action": "MailboxCount", "Mailbox": mailbox})
            counts[mailbox] = (int(resp.get("NewMessages") or 0),
                               int(resp.get("OldMessages") or 0))
        except (AmiActionError, ValueError) as exc:
            log.warning("%s: MailboxCount %s failed: %s", link.name, mailbox, exc)
    return Snapshot(
        channels=tuple(e for e in channels.events if e.event == "CoreShowChannel"),
        queue_entries=queue_entries,
        mailboxes=counts,
        requested_at=requested_at,
    )
