"""回访 surveys: a ticket's 完工 queues a call to its owner ``delay`` later, inside
calling hours; the answer lands on the ticket (``survey_call``), and an owner the
retries never reached goes on the front desk's manual 回访 list (``manual_list``).

The job's key names the ticket and the moment it was completed, so the event
arriving on two servers, or twice, queues one call; a ticket reopened and
completed again is surveyed again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent
from callcenter.directory.models import Community, PersonPhone
from callcenter.outbound.calling_hours import CallingHours
from callcenter.outbound.models import QUEUED, UNREACHED, OutboundJob
from callcenter.outbound.survey_call import FollowUp
from ticketing.models import Ticket
from ticketing.workflow import SURVEY_CALL, Actor
from ticketing.workorders import ActionInput, WorkOrders

log = logging.getLogger(__name__)

SURVEY = "survey"


@dataclass(frozen=True, slots=True)
class ManualFollowUp:
    """A ticket whose owner the survey call did not reach: the front desk calls."""

    job_id: int
    ticket_id: int
    ticket_number: str
    community: str
    number: str
    attempts: int
    last_outcome: str | None
    ended_at: datetime


class SurveyScheduler:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 now: Callable[[], datetime], hours: CallingHours, *,
                 delay: timedelta = timedelta(hours=2),
                 wake: Callable[[], None] = lambda: None) -> None:
        self._sm = sessionmaker
        self._now = now
        self.hours = hours
        self.delay = delay
        self._wake = wake

    async def on_ticket_changed(self, event: DomainEvent) -> None:
        data = event.data
        if data.get("to") != "resolved" or data.get("from") == "resolved":
            return
        try:
            await self.queue(int(data["ticket_id"]), event.at or self._now())
        except Exception:
            log.exception("survey for ticket %s not queued", data.get("ticket_id"))

    async def queue(self, ticket_id: int, completed_at: datetime) -> int | None:
        """The survey job for the ticket's 完工 at ``completed_at`` (its id), or None when
        the ticket has no number to call."""
        async with self._sm() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return None
            number = ticket.caller_number
            if not number and ticket.person_id is not None:
                number = (await session.scalars(select(PersonPhone.number).where(
                    PersonPhone.person_id == ticket.person_id)
                    .order_by(PersonPhone.position))).first() or ""
            if not number:
                log.info("ticket %s: no number to survey; the front desk follows it up",
                         ticket.number)
                return None
            community = ""
            if ticket.community_id is not None:
                community = (await session.scalars(select(Community.code).where(
                    Community.id == ticket.community_id))).first() or ""
            key = f"{SURVEY}:{ticket_id}:{int(completed_at.timestamp())}"
            due = self.hours.next_open(completed_at + self.delay, community)
            job = OutboundJob(key=key, kind=SURVEY, community=community, number=number,
                              person_id=ticket.person_id, ticket_id=ticket_id, state=QUEUED,
                              due_at=due, attempts=0, note="", created_at=self._now(),
                              updated_at=self._now())
            session.add(job)
            try:
                await session.commit()
            except IntegrityError:  # queued already (the event seen twice, or by two servers)
                await session.rollback()
                return (await session.scalars(select(OutboundJob.id).where(
                    OutboundJob.key == key))).first()
            job_id = job.id
        self._wake()
        return job_id


async def still_wanted(session: AsyncSession, job: OutboundJob) -> str | None:
    """Why a survey job should not be dialled any more (the desk did the 回访), else None."""
    if job.ticket_id is None:
        return "工单已删除"
    ticket = await session.get(Ticket, job.ticket_id)
    if ticket is None:
        return "工单已删除"
    if ticket.state != "resolved":
        return "工单已回访或状态已变，不再呼叫"
    return None


async def manual_list(session: AsyncSession, communities: Collection[str] | None
                      ) -> list[ManualFollowUp]:
    """Surveys the calls did not finish, whose ticket still waits for its 回访."""
    q = (select(OutboundJob, Ticket.number).join(Ticket, Ticket.id == OutboundJob.ticket_id)
         .where(OutboundJob.kind == SURVEY, OutboundJob.state == UNREACHED,
                Ticket.state == "resolved")
         .order_by(OutboundJob.updated_at))
    if communities is not None:
        q = q.where(OutboundJob.community.in_(list(communities)))
    rows: list[Any] = list((await session.execute(q)).all())
    return [ManualFollowUp(j.id, j.ticket_id, number, j.community, j.number, j.attempts,
                           j.outcome, j.updated_at) for j, number in rows]


SURVEY_ACTOR = Actor(None, "自动回访", SURVEY_CALL)


def follow_up_port(workorders: WorkOrders) -> FollowUp:
    """The survey call's answer as the ticket's 回访, through the work order's own
    action (its low-score callback task and its reopening included)."""
    async def follow_up(ticket_id: int, score: int, resolved: bool, comment: str) -> None:
        await workorders.act(ticket_id, "follow_up", SURVEY_ACTOR,
                             ActionInput(score=score, resolved=resolved, comment=comment))
    return follow_up


def category_port(sessionmaker: async_sessionmaker[AsyncSession]
                  ) -> Callable[[int], Awaitable[str | None]]:
    async def category_of(ticket_id: int) -> str | None:
        async with sessionmaker() as session:
            return (await session.scalars(select(Ticket.category).where(
                Ticket.id == ticket_id))).first()
    return category_of
