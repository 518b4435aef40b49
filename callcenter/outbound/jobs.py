"""Reading and steering outbound jobs: lists by community, one job with its
attempts, cancelling, pausing a kind, and an owner's do-not-call flag."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.models import Building, Community, Person, PersonRoom, Room, Unit
from callcenter.errors import Conflict, NotFound
from callcenter.outbound.models import (
    CANCELLED,
    KINDS,
    QUEUED,
    OutboundAttempt,
    OutboundHold,
    OutboundJob,
)

Scope = Collection[str] | None


def _scoped(q: Select[OutboundJob], scope: Scope) -> Select[OutboundJob]:
    return q if scope is None else q.where(OutboundJob.community.in_(list(scope)))


async def list_jobs(session: AsyncSession, scope: Scope, *, kind: str | None = None,
                    states: Collection[str] | None = None, limit: int = 200
                    ) -> list[OutboundJob]:
    q = select(OutboundJob).order_by(OutboundJob.updated_at.desc(), OutboundJob.id.desc())
    if kind:
        q = q.where(OutboundJob.kind == kind)
    if states:
        q = q.where(OutboundJob.state.in_(list(states)))
    return list((await session.scalars(_scoped(q, scope).limit(limit))).all())


async def get_job(session: AsyncSession, job_id: int, scope: Scope, *,
                  lock: bool = False) -> OutboundJob:
    """The job, or NotFound (also for another community's: its existence is not told)."""
    q = _scoped(select(OutboundJob).where(OutboundJob.id == job_id), scope)
    job = (await session.scalars(q.with_for_update() if lock else q)).first()
    if job is None:
        raise NotFound("没有这个外呼任务 / no such outbound job", details={"job_id": job_id})
    return job


async def attempts_of(session: AsyncSession, job_ids: Collection[int]
                      ) -> dict[int, list[OutboundAttempt]]:
    out: dict[int, list[OutboundAttempt]] = {}
    if not job_ids:
        return out
    for a in (await session.scalars(select(OutboundAttempt).where(
            OutboundAttempt.job_id.in_(list(job_ids))).order_by(OutboundAttempt.id))).all():
        out.setdefault(a.job_id, []).append(a)
    return out


async def cancel(session: AsyncSession, job_id: int, scope: Scope, *, by: str,
                 now: datetime) -> OutboundJob:
    """A queued job is not called (a call already ringing finishes)."""
    job = await get_job(session, job_id, scope, lock=True)
    if job.state != QUEUED:
        raise Conflict("只能取消等待呼叫的任务 / only a queued job can be cancelled",
                       details={"job_id": job_id, "state": job.state})
    job.state, job.note, job.updated_at = CANCELLED, f"{by} 取消"[:500], now
    await session.commit()
    return job


async def holds(session: AsyncSession) -> dict[str, OutboundHold]:
    return {h.kind: h for h in (await session.scalars(select(OutboundHold))).all()}


async def set_hold(session: AsyncSession, kind: str, paused: bool, *, by: str,
                   now: datetime) -> None:
    if kind not in KINDS:
        raise NotFound("没有这种外呼 / no such kind of call", details={"kind": kind})
    if paused:
        if await session.get(OutboundHold, kind) is None:
            session.add(OutboundHold(kind=kind, held_by=by[:100], held_at=now))
    else:
        await session.execute(delete(OutboundHold).where(OutboundHold.kind == kind))
    await session.commit()


async def person_communities(session: AsyncSession, person_id: int) -> set[str]:
    return set((await session.scalars(
        select(Community.code).join(Building, Building.community_id == Community.id)
        .join(Unit, Unit.building_id == Building.id).join(Room, Room.unit_id == Unit.id)
        .join(PersonRoom, PersonRoom.room_id == Room.id)
        .where(PersonRoom.person_id == person_id))).all())


async def set_do_not_call(session: AsyncSession, person_id: int, on: bool, scope: Scope
                          ) -> Person:
    """An owner of the user's communities asks not to be called by campaigns (or again to be)."""
    person = await session.get(Person, person_id)
    if person is None or (scope is not None and not
                          (await person_communities(session, person_id)) & set(scope)):
        raise NotFound("没有这位业主 / no such person", details={"person_id": person_id})
    person.do_not_call = on
    await session.commit()
    return person
