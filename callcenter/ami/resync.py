"""Re-read state from Asterisk after a (re)connect or ``FullyBooted``.

Memory is not trusted across a gap: calls may have ended or started while the
link was down. What Asterisk reports now is taken as a ``Snapshot`` and handed
to the call tracker (``CallTracker.apply_snapshot``).

A restarted Asterisk accepts logins before app_queue is loaded (capture 11):
``QueueStatus`` then answers ``Invalid/unknown command``, and ``FullyBooted``
follows some 65 ms later. ``resync_until_complete`` therefore retakes the
snapshot with backoff until every part succeeds (retrying at once when
``FullyBooted`` arrives); a snapshot with a part refused because Asterisk is
shutting down is stale and never applied.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from callcenter.ami.client import AmiLink, backoff_delay
from callcenter.ami.errors import AmiActionError, PbxUnavailable
from callcenter.ami.parser import Frame
from callcenter.calls.tracker import Snapshot

log = logging.getLogger(__name__)

RESYNC_RETRY_BASE_S = 0.25
RESYNC_RETRY_MAX_S = 15.0


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    snapshot: Snapshot
    failed: tuple[str, ...] = ()
    """The parts Asterisk refused (``QueueStatus``, ``MailboxCount 8000@default``)."""
    stale: bool = False
    """A part was refused because Asterisk is shutting down: do not apply."""

    @property
    def complete(self) -> bool:
        return not self.failed


async def take_snapshot_parts(link: AmiLink, mailboxes: Sequence[str], *,
                              requested_at: datetime | None = None) -> SnapshotResult:
    """``CoreShowChannels``, ``QueueStatus``, ``MailboxCount`` per mailbox; the
    parts Asterisk refused are named in ``failed``. ``CoreShowChannels`` failing
    raises (there is nothing to apply without it)."""
    channels = await link.send_action({"Action": "CoreShowChannels"})
    failed: list[str] = []
    stale = False
    queue_entries: tuple[Frame, ...] = ()
    try:
        queues = await link.send_action({"Action": "QueueStatus"})
        queue_entries = tuple(e for e in queues.events if e.event == "QueueEntry")
    except AmiActionError as exc:
        log.info("%s: QueueStatus unavailable: %s", link.name, exc.response_message)
        failed.append("QueueStatus")
        stale = stale or isinstance(exc, PbxUnavailable)
    counts: dict[str, tuple[int, int]] = {}
    for mailbox in mailboxes:
        try:
            resp = await link.send_action({"Action": "MailboxCount", "Mailbox": mailbox})
            counts[mailbox] = (int(resp.get("NewMessages") or 0),
                               int(resp.get("OldMessages") or 0))
        except (AmiActionError, ValueError) as exc:
            log.warning("%s: MailboxCount %s failed: %s", link.name, mailbox, exc)
            failed.append(f"MailboxCount {mailbox}")
            stale = stale or isinstance(exc, PbxUnavailable)
    snapshot = Snapshot(
        channels=tuple(e for e in channels.events if e.event == "CoreShowChannel"),
        queue_entries=queue_entries,
        mailboxes=counts,
        requested_at=requested_at,
    )
    return SnapshotResult(snapshot, tuple(failed), stale)


async def take_snapshot(link: AmiLink, mailboxes: Sequence[str], *,
                        requested_at: datetime | None = None) -> Snapshot:
    """One snapshot; a PBX without app_queue or app_voicemail leaves that part empty."""
    return (await take_snapshot_parts(link, mailboxes, requested_at=requested_at)).snapshot


async def retry_until_ok(link: AmiLink, attempt: Callable[[], Awaitable[bool]], what: str, *,
                         base_s: float = RESYNC_RETRY_BASE_S, cap_s: float = RESYNC_RETRY_MAX_S,
                         rng: random.Random | None = None) -> int:
    """Run ``attempt()`` until it returns True, with backoff; a ``FullyBooted``
    during the wait retries at once. Returns the number of attempts. Ends (by
    cancellation) when the link drops: the next connect starts its own."""
    rng = rng or random.Random()
    tries = 0
    while True:
        booted_before = link.fully_booted
        tries += 1
        try:
            if await attempt():
                if tries > 1:
                    log.info("%s: %s complete after %d attempts", link.name, what, tries)
                return tries
        except AmiActionError as exc:
            log.info("%s: %s refused (%s), retrying", link.name, what, exc.response_message)
        delay = backoff_delay(tries - 1, base=base_s, cap=cap_s, rng=rng)
        if booted_before:
            await asyncio.sleep(delay)
        elif not await link.wait_booted(delay):
            pass  # not booted yet: try again anyway (a PBX may never say FullyBooted)


async def resync_until_complete(link: AmiLink, mailboxes: Sequence[str],
                                apply: Callable[[Snapshot], None],
                                now: Callable[[], datetime], **retry: float) -> int:
    """Take and apply snapshots until one has every part; returns the attempts."""

    async def once() -> bool:
        result = await take_snapshot_parts(link, mailboxes, requested_at=now())
        if not result.stale:
            apply(result.snapshot)
            snap = result.snapshot
            log.info("%s: resynced: %d channels, %d queue entries, %d mailboxes%s", link.name,
                     len(snap.channels), len(snap.queue_entries), len(snap.mailboxes),
                     f" (still missing: {', '.join(result.failed)})" if result.failed else "")
        return result.complete

    return await retry_until_ok(link, once, "resync", **retry)  # type: ignore[arg-type]
