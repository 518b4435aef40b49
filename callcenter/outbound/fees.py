"""催缴 fee reminders: a campaign built from the directory's arrears, one job per
owner, and its outcome for the finance office.

Who is called: the owners (户主, ``PersonRoom.role == "owner"``) of the rooms of one
community whose arrears are at least ``min_amount`` and whose last payment (if any)
is at least ``min_age_days`` old; one call per owner however many rooms they own (the
amounts add up), to their first number. Nobody is called twice in a period (the
job's key is the period and the person), whatever campaigns overlap; owners who paid
since the campaign was built are not called (``still_wanted``); quiet hours and
do-not-call apply as for every campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Unit,
)
from callcenter.errors import InvalidInput, NotFound
from callcenter.outbound.calling_hours import CallingHours
from callcenter.outbound.models import (
    CANCELLED,
    QUEUED,
    STATE_LABELS,
    OutboundCampaign,
    OutboundJob,
)
from callcenter.outbound.rules import OUTCOME_LABELS

FEE = "fee"


@dataclass(frozen=True, slots=True)
class FeeRules:
    min_amount: Decimal = Decimal("100")
    min_age_days: int = 30


@dataclass
class Built:
    campaign: OutboundCampaign
    queued: int = 0
    already_called: int = 0
    """Owners in arrears with a reminder already in this period (another campaign)."""
    no_number: list[str] = field(default_factory=list)
    """Owners in arrears the directory has no number for (named, for the office)."""


def room_label(building: str, unit: str, room: str) -> str:
    return f"{building}栋" + (f"{unit}单元" if unit else "") + room


async def build_campaign(session: AsyncSession, hours: CallingHours, *, community: str,
                         rules: FeeRules, by: str, now: datetime, name: str = "",
                         period: str | None = None) -> Built:
    comm = (await session.scalars(select(Community).where(Community.code == community))).first()
    if comm is None:
        raise InvalidInput("小区不存在 / unknown community", field="community")
    if rules.min_amount <= 0:
        raise InvalidInput("最低欠费金额须大于 0", field="min_amount")
    period = period or hours.local_day(now).strftime("%Y-%m")
    cutoff = now - timedelta(days=rules.min_age_days)
    rows = (await session.execute(
        select(PersonRoom.person_id, Person.name, FeeAccount.arrears, Room.id, Room.number,
               Unit.name, Building.name)
        .join(Room, Room.id == PersonRoom.room_id).join(Unit, Unit.id == Room.unit_id)
        .join(Building, Building.id == Unit.building_id)
        .join(FeeAccount, FeeAccount.room_id == Room.id)
        .join(Person, Person.id == PersonRoom.person_id)
        .where(Building.community_id == comm.id, PersonRoom.role == "owner",
               FeeAccount.arrears >= rules.min_amount,
               or_(FeeAccount.last_payment_at.is_(None), FeeAccount.last_payment_at <= cutoff))
        .order_by(Building.name, Unit.name, Room.number))).all()
    owners: dict[int, dict[str, Any]] = {}
    for person_id, person_name, arrears, room_id, number, unit, building in rows:
        o = owners.setdefault(person_id, {"name": person_name, "amount": Decimal(0),
                                          "rooms": [], "room_ids": [],
                                          "place": [building, unit, number]})
        o["amount"] += Decimal(arrears)
        o["rooms"].append(room_label(building, unit, number))
        o["room_ids"].append(room_id)
    phones: dict[int, str] = {}
    if owners:
        for pid, num in (await session.execute(
                select(PersonPhone.person_id, PersonPhone.number)
                .where(PersonPhone.person_id.in_(list(owners)))
                .order_by(PersonPhone.person_id, PersonPhone.position))).all():
            phones.setdefault(pid, num)  # their first number
    campaign = OutboundCampaign(
        kind=FEE, community=community, name=(name or f"{period} 物业费催缴")[:100], period=period,
        state="active", created_by=by[:100], created_at=now, updated_at=now,
        rules={"min_amount": str(rules.min_amount), "min_age_days": rules.min_age_days})
    session.add(campaign)
    await session.flush()
    keys = {pid: f"{FEE}:{community}:{period}:{pid}" for pid in owners}
    taken = set((await session.scalars(select(OutboundJob.key).where(
        OutboundJob.key.in_(list(keys.values()))))).all()) if keys else set()
    built = Built(campaign)
    due = hours.next_open(now, community)
    for pid, o in owners.items():
        if keys[pid] in taken:
            built.already_called += 1
            continue
        number = phones.get(pid) or ""
        if not number:
            built.no_number.append(f"{o['name']}（{'、'.join(o['rooms'])}）")
            continue
        session.add(OutboundJob(
            key=keys[pid], kind=FEE, community=community, number=number, person_id=pid,
            campaign_id=campaign.id, state=QUEUED, due_at=due, attempts=0, note="",
            payload={"amount": str(o["amount"].quantize(Decimal("0.01"))),
                     "room": "、".join(o["rooms"]), "room_ids": o["room_ids"],
                     "place": o["place"],
                     "owner": o["name"]},
            created_at=now, updated_at=now))
        built.queued += 1
    campaign.rules = {**campaign.rules, "queued": built.queued,
                      "already_called": built.already_called, "no_number": built.no_number}
    await session.commit()
    return built


async def still_wanted(session: AsyncSession, job: OutboundJob) -> str | None:
    """Not while the campaign is stopped; not when the owner has paid since."""
    if job.campaign_id is not None:
        campaign = await session.get(OutboundCampaign, job.campaign_id)
        if campaign is None or campaign.state == CANCELLED:
            return "催缴已停止"
    room_ids = (job.payload or {}).get("room_ids") or []
    if room_ids:
        owed = (await session.scalar(select(func.coalesce(func.sum(FeeAccount.arrears), 0))
                                     .where(FeeAccount.room_id.in_(room_ids))))
        if Decimal(owed or 0) <= 0:
            return "业主已缴清，不再提醒"
    return None


async def set_state(session: AsyncSession, campaign_id: int, state: str, scope: Sequence[str] | None,
                    now: datetime) -> OutboundCampaign:
    campaign = await get_campaign(session, campaign_id, scope)
    if campaign.state == CANCELLED:
        raise InvalidInput("已停止的催缴不能再开始", field="state")
    campaign.state, campaign.updated_at = state, now
    if state == CANCELLED:
        await session.execute(update(OutboundJob).where(
            OutboundJob.campaign_id == campaign_id, OutboundJob.state == QUEUED)
            .values(state=CANCELLED, note="催缴已停止", updated_at=now))
    await session.commit()
    return campaign


async def get_campaign(session: AsyncSession, campaign_id: int, scope: Sequence[str] | None
                       ) -> OutboundCampaign:
    q = select(OutboundCampaign).where(OutboundCampaign.id == campaign_id)
    if scope is not None:
        q = q.where(OutboundCampaign.community.in_(list(scope)))
    campaign = (await session.scalars(q)).first()
    if campaign is None:
        raise NotFound("没有这次催缴 / no such campaign", details={"campaign_id": campaign_id})
    return campaign


async def campaigns(session: AsyncSession, scope: Sequence[str] | None
                    ) -> list[tuple[OutboundCampaign, dict[str, int]]]:
    q = select(OutboundCampaign).order_by(OutboundCampaign.id.desc()).limit(50)
    if scope is not None:
        q = q.where(OutboundCampaign.community.in_(list(scope)))
    rows = list((await session.scalars(q)).all())
    counts: dict[int, dict[str, int]] = {c.id: {} for c in rows}
    if rows:
        for cid, state, n in (await session.execute(
                select(OutboundJob.campaign_id, OutboundJob.state, func.count())
                .where(OutboundJob.campaign_id.in_(list(counts)))
                .group_by(OutboundJob.campaign_id, OutboundJob.state))).all():
            if cid is not None:
                counts[cid][state] = int(n)
    return [(c, counts[c.id]) for c in rows]


async def job_counts(session: AsyncSession, campaign_id: int) -> dict[str, int]:
    return {state: int(n) for state, n in (await session.execute(
        select(OutboundJob.state, func.count()).where(OutboundJob.campaign_id == campaign_id)
        .group_by(OutboundJob.state))).all()}


EXPORT_HEADER = ["房号", "业主", "号码", "欠费金额（元）", "状态", "结果", "呼叫次数", "最后更新"]


async def outcome_rows(session: AsyncSession, campaign: OutboundCampaign, *,
                       show: Any, local: Any) -> list[list[str | int]]:
    """The campaign's result per owner, for the finance office (``show(number)``
    masks by the viewer's role; ``local(at)`` is the local time)."""
    jobs = (await session.scalars(select(OutboundJob).where(
        OutboundJob.campaign_id == campaign.id).order_by(OutboundJob.id))).all()
    out: list[list[str | int]] = [list(EXPORT_HEADER)]
    for j in jobs:
        p = j.payload or {}
        result = OUTCOME_LABELS.get(j.outcome or "", "")
        if j.result and j.result.get("agent"):
            result = "已接听，转人工"
        elif j.result and j.result.get("heard"):
            result = "已接听，听完提醒"
        out.append([str(p.get("room", "")), str(p.get("owner", "")), show(j.number),
                    str(p.get("amount", "")), STATE_LABELS.get(j.state, j.state),
                    result or (j.note or ""), j.attempts, local(j.updated_at)])
    return out


def campaign_summary(c: OutboundCampaign, counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values())
    final = sum(n for s, n in counts.items() if s not in (QUEUED, "dialing"))
    return {"id": c.id, "name": c.name, "community": c.community, "period": c.period,
            "state": c.state, "total": total, "final": final,
            "done": counts.get("done", 0), "unreached": counts.get("unreached", 0),
            "skipped": counts.get("skipped", 0) + counts.get("invalid", 0),
            "rules": c.rules}
