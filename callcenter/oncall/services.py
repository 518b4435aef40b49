"""Who is on call: evaluated in the community's time zone, overrides first.

``who_is_on_call`` is the one question the IVR, the router and paging ask. The
arithmetic lives in pure functions (``shift_occurrence``, ``rotation_member``,
``apply_overrides``) that take plain values, so they are tested without a
database; the service loads the rows and calls them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.auth.identity import Identity
from callcenter.directory.models import Community, StaffUser
from callcenter.errors import Forbidden
from callcenter.oncall.errors import InvalidSchedule, NoSchedule, UnknownCommunity
from callcenter.oncall.models import (
    CHAIN_LABELS,
    OnCallAttempt,
    OnCallChainLink,
    OnCallOverride,
    OnCallSchedule,
    OnCallShift,
)

DEFAULT_TZ = "Asia/Shanghai"
MINUTES_PER_DAY = 24 * 60


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class OnCallPerson:
    user_id: int
    name: str
    label: str  # primary / backup / supervisor
    extension: str | None
    mobile: str | None
    notify: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "label": self.label,
            "extension": self.extension,
            "mobile": self.mobile,
        }


@dataclass(frozen=True, slots=True)
class OnCallAnswer:
    """The people to try, in chain order, and until when this answer holds.

    ``shift`` is None (and ``people`` empty) when no shift covers the moment;
    ``until`` is then the start of the next shift."""

    community: str
    role: str
    at: datetime
    shift: str | None
    people: tuple[OnCallPerson, ...]
    until: datetime | None

    @property
    def primary(self) -> OnCallPerson | None:
        return self.people[0] if self.people else None

    def to_json(self, tz: ZoneInfo | None = None) -> dict[str, Any]:
        def fmt(d: datetime | None) -> str | None:
            if d is None:
                return None
            return (d.astimezone(tz) if tz else d).isoformat()

        return {
            "community": self.community,
            "role": self.role,
            "at": fmt(self.at),
            "shift": self.shift,
            "until": fmt(self.until),
            "people": [p.to_json() for p in self.people],
        }


@dataclass(frozen=True, slots=True)
class ShiftSpec:
    id: int
    name: str
    start_minute: int
    end_minute: int
    members: tuple[int, ...]
    rotation_start: date
    period_days: int


@dataclass(frozen=True, slots=True)
class ChainSpec:
    position: int
    label: str
    source: str
    offset: int = 0
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    starts_at: datetime
    ends_at: datetime
    user_id: int
    replaces_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One concrete run of a shift: its local start date and UTC span."""

    shift: ShiftSpec
    local_date: date
    starts_at: datetime
    ends_at: datetime


# --------------------------------------------------------------------------- pure rules


def parse_hhmm(value: str, field_name: str = "time") -> int:
    """``"08:30"`` → 510 minutes; ``"24:00"`` is midnight at the end of a day."""
    try:
        hh, mm = value.strip().split(":")
        h, m = int(hh), int(mm)
    except (ValueError, AttributeError):
        raise InvalidSchedule(f"{field_name}: expected HH:MM, got {value!r}",
                              field=field_name) from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise InvalidSchedule(f"{field_name}: {value!r} is not a time of day", field=field_name)
    return (h * 60 + m) % MINUTES_PER_DAY


def _local(d: date, minute: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(minute // 60, minute % 60), tzinfo=tz)


def shift_occurrence(shift: ShiftSpec, local_date: date, tz: ZoneInfo) -> Occurrence:
    start = _local(local_date, shift.start_minute, tz)
    end_date = local_date if shift.end_minute > shift.start_minute else local_date + timedelta(1)
    end = _local(end_date, shift.end_minute, tz)
    return Occurrence(shift, local_date, start.astimezone(UTC), end.astimezone(UTC))


def occurrences_at(shifts: Sequence[ShiftSpec], at: datetime, tz: ZoneInfo) -> list[Occurrence]:
    """Every shift occurrence covering ``at`` (the one that started yesterday
    evening counts for a night shift in the small hours)."""
    local_day = at.astimezone(tz).date()
    found = []
    for shift in shifts:
        for d in (local_day - timedelta(1), local_day):
            occ = shift_occurrence(shift, d, tz)
            if occ.starts_at <= at < occ.ends_at:
                found.append(occ)
    found.sort(key=lambda o: o.starts_at)
    return found


def next_occurrence(shifts: Sequence[ShiftSpec], at: datetime, tz: ZoneInfo) -> Occurrence | None:
    local_day = at.astimezone(tz).date()
    best: Occurrence | None = None
    for shift in shifts:
        for k in range(0, 3):
            occ = shift_occurrence(shift, local_day + timedelta(k), tz)
            if occ.starts_at > at and (best is None or occ.starts_at < best.starts_at):
                best = occ
                break
    return best


def rotation_index(shift: ShiftSpec, local_date: date) -> int | None:
    """Whose turn the occurrence starting on ``local_date`` is (an index into
    ``members``), counting whole periods from ``rotation_start``."""
    if not shift.members:
        return None
    periods = (local_date - shift.rotation_start).days // max(1, shift.period_days)
    return periods % len(shift.members)


def chain_user_ids(occ: Occurrence, chain: Sequence[ChainSpec]) -> list[tuple[str, int]]:
    """(label, user id) in chain order; with no chain rows, the primary only.

    A rotation link whose member is already earlier in the chain is skipped
    (a rotation of two has no distinct third person)."""
    links = list(chain) or [ChainSpec(0, "primary", "rotation", 0)]
    idx = rotation_index(occ.shift, occ.local_date)
    out: list[tuple[str, int]] = []
    seen: set[int] = set()
    for link in sorted(links, key=lambda c: c.position):
        uid: int | None
        if link.source == "user":
            uid = link.user_id
        elif idx is None:
            uid = None
        else:
            members = occ.shift.members
            uid = members[(idx + link.offset) % len(members)]
        if uid is None or uid in seen:
            continue
        seen.add(uid)
        out.append((link.label, uid))
    return out


def apply_overrides(chain: list[tuple[str, int]], overrides: Sequence[OverrideSpec],
                    at: datetime) -> list[tuple[str, int]]:
    """Active overrides replace people: a named one where they stand, an
    unnamed one the primary. The result keeps no one twice."""
    result = list(chain)
    active = [o for o in overrides if o.starts_at <= at < o.ends_at]
    active.sort(key=lambda o: o.starts_at)
    for o in active:
        if o.replaces_user_id is None:
            if result:
                result[0] = (result[0][0], o.user_id)
            else:
                result.append(("primary", o.user_id))
        else:
            result = [(label, o.user_id if uid == o.replaces_user_id else uid)
                      for label, uid in result]
    deduped: list[tuple[str, int]] = []
    seen: set[int] = set()
    for label, uid in result:
        if uid not in seen:
            seen.add(uid)
            deduped.append((label, uid))
    return deduped


def answer_until(occ: Occurrence, overrides: Sequence[OverrideSpec], at: datetime) -> datetime:
    """The answer holds until the shift ends or an override starts or ends."""
    until = occ.ends_at
    for o in overrides:
        for edge in (o.starts_at, o.ends_at):
            if at < edge < until:
                until = edge
    return until


# --------------------------------------------------------------------------- database


async def community_in_scope(session: AsyncSession, identity: Identity,
                             community: str | int | None) -> Community:
    """``find_community`` for a person: none named is the person's own community (when
    they work for one only); a community not theirs is a 403."""
    if (community is None or community == "") and identity.only_community is not None:
        community = identity.only_community
    comm = await find_community(session, community)
    if not identity.sees(comm.id):
        raise Forbidden("不能操作其他小区 / not your community", details={"field": "community"})
    return comm


async def find_community(session: AsyncSession, community: str | int | None) -> Community:
    if community is None or community == "":
        rows = (await session.scalars(select(Community).order_by(Community.id).limit(2))).all()
        if len(rows) == 1:
            return rows[0]
        raise UnknownCommunity("community is required (more than one, or none, is configured)",
                               details={"field": "community"})
    if isinstance(community, int) or (isinstance(community, str) and community.isdigit()):
        row = await session.get(Community, int(community))
        if row is not None:
            return row
    row = (await session.scalars(select(Community).where(Community.code == str(community)))).first()
    if row is None:
        raise UnknownCommunity(f"no community {community!r}", details={"community": str(community)})
    return row


def _specs(schedule: OnCallSchedule) -> tuple[list[ShiftSpec], list[ChainSpec], list[OverrideSpec]]:
    shifts = [
        ShiftSpec(s.id, s.name, s.start_minute, s.end_minute, tuple(int(m) for m in s.members),
                  s.rotation_start, s.period_days)
        for s in schedule.shifts
    ]
    chain = [ChainSpec(c.position, c.label, c.source, c.offset, c.user_id) for c in schedule.chain]
    overrides = [OverrideSpec(o.starts_at, o.ends_at, o.user_id, o.replaces_user_id)
                 for o in schedule.overrides]
    return shifts, chain, overrides


async def load_schedule(session: AsyncSession, community_id: int, role: str) -> OnCallSchedule | None:
    return (
        await session.scalars(
            select(OnCallSchedule)
            .where(OnCallSchedule.community_id == community_id, OnCallSchedule.role == role)
            .options(selectinload(OnCallSchedule.shifts), selectinload(OnCallSchedule.chain),
                     selectinload(OnCallSchedule.overrides))
        )
    ).first()


def _tz(community: Community) -> ZoneInfo:
    return ZoneInfo(community.timezone or DEFAULT_TZ)


async def who_is_on_call(session: AsyncSession, community: str | int | Community | None,
                         role: str, at: datetime) -> OnCallAnswer:
    """The people on call for ``role`` in ``community`` at ``at`` (aware)."""
    if at.tzinfo is None:
        raise InvalidSchedule("at: an aware datetime is required", field="at")
    comm = community if isinstance(community, Community) else await find_community(session, community)
    schedule = await load_schedule(session, comm.id, role)
    if schedule is None:
        raise NoSchedule(f"no on-call schedule for role {role!r} in {comm.code}",
                         details={"community": comm.code, "role": role})
    return await _answer(session, comm, schedule, at)


async def _answer(session: AsyncSession, comm: Community, schedule: OnCallSchedule,
                  at: datetime) -> OnCallAnswer:
    tz = _tz(comm)
    shifts, chain, overrides = _specs(schedule)
    at = at.astimezone(UTC)
    occs = occurrences_at(shifts, at, tz)
    if not occs:
        nxt = next_occurrence(shifts, at, tz)
        return OnCallAnswer(comm.code, schedule.role, at, None, (),
                            nxt.starts_at if nxt else None)
    occ = occs[-1]  # the latest-starting shift wins where two overlap
    ids = apply_overrides(chain_user_ids(occ, chain), overrides, at)
    users = {
        u.id: u
        for u in (await session.scalars(
            select(StaffUser).where(StaffUser.id.in_([uid for _, uid in ids]))
        )).all()
    }
    people = tuple(
        OnCallPerson(uid, users[uid].display_name or users[uid].username, label,
                     users[uid].extension, users[uid].mobile, dict(users[uid].notify or {}))
        for label, uid in ids
        if uid in users and users[uid].active
    )
    return OnCallAnswer(comm.code, schedule.role, at, occ.shift.name, people,
                        answer_until(occ, overrides, at))


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    shift: str
    starts_at: datetime
    ends_at: datetime
    people: tuple[OnCallPerson, ...]


async def calendar(session: AsyncSession, community: str | int | Community | None, role: str,
                   start: datetime, days: int = 14) -> list[CalendarEntry]:
    """Each shift occurrence starting in ``days`` local days from ``start``'s
    local date, with the people on call at its start (overrides applied)."""
    comm = community if isinstance(community, Community) else await find_community(session, community)
    schedule = await load_schedule(session, comm.id, role)
    if schedule is None:
        raise NoSchedule(f"no on-call schedule for role {role!r} in {comm.code}",
                         details={"community": comm.code, "role": role})
    tz = _tz(comm)
    shifts, _, _ = _specs(schedule)
    first = start.astimezone(tz).date()
    out: list[CalendarEntry] = []
    for k in range(days):
        for shift in shifts:
            occ = shift_occurrence(shift, first + timedelta(k), tz)
            ans = await _answer(session, comm, schedule, occ.starts_at)
            out.append(CalendarEntry(shift.name, occ.starts_at, occ.ends_at, ans.people))
    out.sort(key=lambda e: e.starts_at)
    return out


# --------------------------------------------------------------------------- editing


@dataclass(frozen=True, slots=True)
class ShiftInput:
    name: str
    start: str  # "HH:MM"
    end: str
    members: Sequence[int]
    rotation_start: date
    period_days: int = 7


async def create_schedule(session: AsyncSession, *, community: str | int, role: str,
                          shifts: Sequence[ShiftInput],
                          chain: Sequence[ChainSpec] = (), name: str = "") -> OnCallSchedule:
    """Create (or replace) the schedule of ``role`` in ``community``. Commits."""
    comm = await find_community(session, community)
    if not shifts:
        raise InvalidSchedule("a schedule needs at least one shift", field="shifts")
    for i, link in enumerate(chain):
        if link.source not in ("rotation", "user"):
            raise InvalidSchedule(f"chain[{i}].source must be rotation or user", field="chain")
        if link.source == "user" and link.user_id is None:
            raise InvalidSchedule(f"chain[{i}]: a user link needs user_id", field="chain")
        if link.label not in CHAIN_LABELS:
            raise InvalidSchedule(f"chain[{i}].label must be one of {CHAIN_LABELS}", field="chain")
    old = await load_schedule(session, comm.id, role)
    if old is not None:
        await session.delete(old)
        await session.flush()
    sched = OnCallSchedule(community_id=comm.id, role=role, name=name or f"{comm.code}/{role}")
    for i, s in enumerate(shifts):
        start = parse_hhmm(s.start, f"shifts[{i}].start")
        end = parse_hhmm(s.end, f"shifts[{i}].end")
        if start == end:
            # A 24-hour shift: from start to the same time the next day.
            pass
        if s.period_days < 1:
            raise InvalidSchedule(f"shifts[{i}].period_days must be >= 1", field="period_days")
        sched.shifts.append(OnCallShift(name=s.name, start_minute=start, end_minute=end,
                                        members=[int(m) for m in s.members],
                                        rotation_start=s.rotation_start,
                                        period_days=s.period_days))
    for link in chain:
        sched.chain.append(OnCallChainLink(position=link.position, label=link.label,
                                           source=link.source, offset=link.offset,
                                           user_id=link.user_id))
    session.add(sched)
    await session.commit()
    return sched


async def add_override(session: AsyncSession, *, community: str | int, role: str,
                       starts_at: datetime, ends_at: datetime, user_id: int,
                       replaces_user_id: int | None = None, reason: str = "") -> OnCallOverride:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidSchedule("override times must be aware", field="starts_at")
    if ends_at <= starts_at:
        raise InvalidSchedule("an override must end after it starts", field="ends_at")
    comm = await find_community(session, community)
    schedule = await load_schedule(session, comm.id, role)
    if schedule is None:
        raise NoSchedule(f"no on-call schedule for role {role!r} in {comm.code}",
                         details={"community": comm.code, "role": role})
    if await session.get(StaffUser, user_id) is None:
        raise InvalidSchedule(f"no staff user {user_id}", field="user_id")
    row = OnCallOverride(schedule_id=schedule.id, starts_at=starts_at, ends_at=ends_at,
                         user_id=user_id, replaces_user_id=replaces_user_id, reason=reason)
    session.add(row)
    await session.commit()
    return row


# --------------------------------------------------------------------------- the call log


def dialled_numbers(target: str) -> list[str]:
    """The extensions and numbers in a Dial string:
    ``PJSIP/802&PJSIP/13800000002@trunk`` → ``["802", "13800000002"]``."""
    out = []
    for part in target.split("&"):
        number = part.rsplit("/", 1)[-1].split("@", 1)[0].strip()
        if number:
            out.append(number)
    return out


async def attempts_by_call(session: AsyncSession,
                           call_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The router's rings of each call (by Linkedid), in the order they were made:
    who was rung, at which number, for which role, and how it ended."""
    wanted = sorted({c for c in call_ids if c})
    if not wanted:
        return {}
    rows = (await session.execute(
        select(OnCallAttempt, StaffUser.display_name, StaffUser.username)
        .outerjoin(StaffUser, StaffUser.id == OnCallAttempt.user_id)
        .where(OnCallAttempt.call_id.in_(wanted))
        .order_by(OnCallAttempt.started_at, OnCallAttempt.id))).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for attempt, display_name, username in rows:
        out.setdefault(attempt.call_id, []).append({
            "who": display_name or username or "",
            "user_id": attempt.user_id,
            "number": " / ".join(dialled_numbers(attempt.target)),
            "target": attempt.target,
            "role": attempt.role,
            "position": attempt.position,
            "outcome": attempt.outcome or "ringing",
            "dial_status": attempt.dial_status,
            "at": attempt.started_at.isoformat(),
            "ended_at": attempt.ended_at.isoformat() if attempt.ended_at else None,
        })
    return out
