"""A voicemail nobody's software understood must reach a person: "unknown: listen".

When a voicemail's transcription or triage never completed (gave up after too
many attempts, no speech model, audio that cannot be decoded, the decoder
died or timed out, the triage failed, or it could not tell whether the message
is an emergency), its ticket is marked ``needs_listen`` with the reason
(``TicketService.add`` from ``NewTicket.listen_reason``). ``ListenNotices``
then tells someone to listen to it: at night, at weekends and on holidays the
night duty on call, in office hours the front desk. It is a notice through the
staff's own channels (WeCom, DingTalk, a webhook, e-mail), never a phone page:
a message whose content is unknown is not an emergency until someone hears it.

Delivery is durable the way ``UnpagedEmergencies`` makes pages durable: the
mark is written with the ticket, and ``send_pending`` finds every marked ticket
not yet notified (at start, on each ``ticket.created`` that carries the mark,
and every interval) and sends its notice. Once delivered, the decision is
written on the ticket (``listen_notice``, ``listen_notified_at``) and in its
log, and the ticket page shows it (e.g. 转写失败，已通知夜班值班人员收听录音).
A notice that could not be delivered is retried each interval; one older than
``lookback_s`` is no longer sent (it is still on the ticket, and logged once).

Who is told, and how, is the port :class:`ListenNotifier`, passed in by the
composition root (on-call, office hours and the staff notifiers live there).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent
from callcenter.clock import Clock
from ticketing.delivery import Delivery
from ticketing.models import Ticket, TicketEvent

log = logging.getLogger(__name__)

LISTEN_IDLE_TASK_NAME = "listen-notices:idle"

LISTEN_REASONS: dict[str, str] = {
    "too_many_attempts": "多次转写均未完成",
    "transcription_unavailable": "未配置语音识别",
    "transcription_timeout": "转写超时",
    "transcription_failed": "转写失败",
    "worker_died": "转写进程异常退出",
    "no_workers": "转写服务不可用",
    "worker_start_failed": "转写服务不可用",
    "pool_closed": "转写服务已关闭",
    "decoder_error": "解码出错",
    "audio_unreadable": "录音无法解码",
    "audio_unsupported_format": "录音格式无法解码",
    "recording_missing": "录音文件缺失",
    "triage_failed": "自动分拣失败",
    "triage_unsure": "可能是紧急情况，自动分拣无法确定",
}
NOT_A_LISTEN_REASON = frozenset({"no_speech"})
"""A silent message (a hang-up after the beep) is a ticket, not a notice to anyone."""
ACTOR = "listen-notice"
UNSURE_DECISION = "需值班人员收听确认"
"""What a ticket says when triage could not tell whether the message is an emergency
(e.g. it sounds like one only through a likely recognition error)."""


def needs_listen(error_id: str | None) -> bool:
    """Whether a voicemail job's outcome means a person must listen to the message."""
    return bool(error_id) and error_id not in NOT_A_LISTEN_REASON


def reason_label(reason: str) -> str:
    return LISTEN_REASONS.get(reason, "转写失败")


def _what(reason: str) -> str:
    """The first words of the decision: what did not complete."""
    return UNSURE_DECISION if reason == "triage_unsure" else (
        "自动分拣失败" if reason == "triage_failed" else "转写失败")


def pending_notice(reason: str) -> str:
    """What the ticket says until the notice is delivered."""
    return f"{_what(reason)}，请收听录音（正在通知值班人员）"


def delivered_notice(reason: str, audience: str) -> str:
    """The decision as the ticket page shows it: 转写失败，已通知夜班值班人员收听录音."""
    return f"{_what(reason)}，已通知{audience}收听录音"


@dataclass(frozen=True, slots=True)
class ListenNotice:
    """What night duty or the front desk is told."""

    ticket_id: int
    number: str
    community_id: int | None
    location: str
    reason: str
    created_at: datetime

    @property
    def title(self) -> str:
        return f"请收听语音留言：工单 {self.number}"

    @property
    def text(self) -> str:
        if self.reason == "triage_unsure":
            return ("留言可能是紧急情况，但识别结果不确定（可能是语音识别错误）。"
                    "请收听录音，判断是否紧急并处理。")
        return (f"{reason_label(self.reason)}，系统无法判断留言内容（类别未知）。"
                "请收听录音，判断是否紧急并处理。")

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return (("工单", self.number), ("位置", self.location or "未知"),
                ("原因", reason_label(self.reason)))


ListenDelivery = Delivery
"""Who was told of a listen notice (夜班值班人员 / 前台)."""


class ListenNotifier(Protocol):
    """Sends a listen notice to whoever should hear the message now (a notice, not a page)."""

    async def notify(self, notice: ListenNotice) -> ListenDelivery: ...


class ListenNotices:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], notifier: ListenNotifier,
                 clock: Clock, *, interval_s: float = 60.0,
                 lookback_s: float = 24 * 3600.0) -> None:
        self._sm = sessionmaker
        self._notifier = notifier
        self._clock = clock
        self._interval = interval_s
        self._lookback = timedelta(seconds=lookback_s)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._reported: set[tuple[int, str]] = set()

    async def on_ticket_created(self, event: DomainEvent) -> None:
        """Bus handler: a ticket created with the mark is notified at once."""
        listen = event.data.get("listen") or {}
        if isinstance(listen, dict) and listen.get("needed"):
            self._wake.set()

    async def pending(self) -> list[Ticket]:
        now = self._clock.now()
        async with self._sm() as session:
            rows = await session.scalars(
                select(Ticket).where(Ticket.needs_listen.is_(True),
                                     Ticket.listen_notified_at.is_(None),
                                     Ticket.created_at >= now - self._lookback)
                .order_by(Ticket.id))
            return list(rows.all())

    async def send_pending(self) -> list[int]:
        """Send the notice of every marked ticket not yet notified; ids delivered."""
        async with self._lock:
            delivered = []
            for ticket in await self.pending():
                if await self._send(ticket):
                    delivered.append(ticket.id)
            return delivered

    async def _send(self, ticket: Ticket) -> bool:
        notice = ListenNotice(ticket.id, ticket.number, ticket.community_id, ticket.location,
                              ticket.listen_reason, ticket.created_at)
        try:
            result = await self._notifier.notify(notice)
        except Exception as exc:  # the port must not stop the others
            log.exception("listen notice for ticket %s failed", ticket.number)
            result = ListenDelivery("值班人员", (), f"{type(exc).__name__}: {exc}")
        if not result.ok:
            key = (ticket.id, result.audience)
            if key not in self._reported:
                self._reported.add(key)
                log.error("listen notice for ticket %s not delivered to %s (%s); retrying every "
                          "%.0f s", ticket.number, result.audience, result.error or "nobody",
                          self._interval)
            return False
        now = self._clock.now()
        text = delivered_notice(ticket.listen_reason, result.audience)
        note = f"{text}：{'、'.join(result.delivered_to)}（通知，非电话呼叫）"
        async with self._sm() as session:
            done = await session.execute(
                update(Ticket).where(Ticket.id == ticket.id, Ticket.listen_notified_at.is_(None))
                .values(listen_notice=text[:300], listen_notified_at=now))
            if getattr(done, "rowcount", 1) == 1:
                session.add(TicketEvent(ticket_id=ticket.id, from_state=ticket.state,
                                        to_state=ticket.state, actor=ACTOR, at=now,
                                        note=note[:1000]))
            await session.commit()
        log.info("ticket %s: %s", ticket.number, note)
        return True

    async def run(self, started: asyncio.Event) -> None:
        """Once ``started`` is set: now, on every marked ``ticket.created``, and every interval."""
        await started.wait()
        while True:
            self._wake.clear()
            try:
                await self.send_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending listen notices failed")
            # named like paging's idle poll: a new pair every interval, nobody's call
            sleeper = asyncio.ensure_future(self._clock.sleep(self._interval))
            waker = asyncio.ensure_future(self._wake.wait())
            for fut, what in ((sleeper, "sleep"), (waker, "wake")):
                fut.set_name(f"{LISTEN_IDLE_TASK_NAME}:{what}")
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in (sleeper, waker):
                    fut.cancel()
