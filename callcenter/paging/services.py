"""What paging does: open (or join) incidents, acknowledge, resolve, policies,
the timeline a supervisor reads. No HTTP or telephony in sight.

Incidents arrive from four doors: the IVR's emergency option, a voicemail
triaged as an emergency (``incident.requested`` on the bus), an agent's page
button and ``POST /api/incidents``. A report of the same community + building +
category within the de-duplication window joins the open incident: its caller
is recorded and nobody is paged again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.directory.models import Community, StaffUser
from callcenter.oncall.services import find_community
from callcenter.paging.errors import IncidentClosed, IncidentNotFound, InvalidIncident
from callcenter.paging.escalation import DEFAULT_STEPS, PolicySnapshot, parse_steps
from callcenter.paging.models import (
    EscalationPolicy,
    Incident,
    IncidentReport,
    PageAttempt,
    PagingTimer,
)

log = logging.getLogger(__name__)

SOURCES = ("ivr", "voicemail", "agent", "api")

# The triage categories (``ticketing.categories`` keys) as an emergency reads;
# anything else is accepted as given.
CATEGORY_NAMES = {
    "plumbing": "漏水/水管爆裂",
    "electrical": "停电/电气故障",
    "elevator": "电梯困人/电梯故障",
    "gas": "燃气泄漏",
    "fire": "火警",
    "door_access": "门禁门锁故障",
    "public_facility": "公共设施故障",
    "security": "治安事件",
    "other": "其他紧急情况",
}


@dataclass(frozen=True, slots=True)
class PagingConfig:
    dedup_window_s: int = 30 * 60
    category_roles: dict[str, str] = field(default_factory=lambda: {"*": "engineer"})

    def role_for(self, category: str) -> str:
        return self.category_roles.get(category) or self.category_roles.get("*", "engineer")


@dataclass(frozen=True, slots=True)
class IncidentRequest:
    community: str | int | None
    category: str
    source: str
    building: str = ""
    unit: str = ""
    room: str = ""
    summary: str = ""
    caller_number: str = ""
    call_id: str = ""
    reference: str = ""  # a ticket id, a voicemail id


@dataclass(frozen=True, slots=True)
class OpenResult:
    incident_id: int
    created: bool  # False: joined an open incident (no new page)
    report_id: int


def _clean(value: Any, name: str, max_len: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int)):
        raise InvalidIncident(f"{name}: expected text", field=name)
    text_value = str(value).strip()
    if len(text_value) > max_len:
        raise InvalidIncident(f"{name}: at most {max_len} characters", field=name)
    return text_value


def incident_request_from_json(data: dict[str, Any], *, source: str) -> IncidentRequest:
    """Validate a JSON body (API, bus event) into a request; 400 names the field."""
    category = _clean(data.get("category"), "category", 32)
    if not category:
        raise InvalidIncident("category is required", field="category")
    community = data.get("community_id") or data.get("community")
    if community is not None and not isinstance(community, (str, int)):
        raise InvalidIncident("community: a code or an id", field="community")
    return IncidentRequest(
        community=community,
        category=category,
        source=source,
        building=_clean(data.get("building"), "building", 32),
        unit=_clean(data.get("unit"), "unit", 32),
        room=_clean(data.get("room"), "room", 32),
        summary=_clean(data.get("summary"), "summary", 1000) if source in ("api", "agent")
        else str(data.get("summary") or "")[:1000],
        caller_number=_clean(data.get("caller_number") or data.get("caller"), "caller_number", 32),
        call_id=_clean(data.get("call_id"), "call_id", 64),
        reference=_clean(data.get("reference") or data.get("number") or data.get("ticket_id"),
                         "reference", 64),
    )


class PagingService:
    """Incidents and their lifecycle. ``on_new_timer`` wakes the escalation
    worker so the first Originate leaves at once, not at the next poll."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock,
                 bus: EventBus, config: PagingConfig | None = None,
                 on_new_timer: Callable[[], None] | None = None) -> None:
        self._sm = sessionmaker
        self._clock = clock
        self._bus = bus
        self.config = config or PagingConfig()
        self._on_new_timer = on_new_timer
        self._open_lock = asyncio.Lock()

    def set_wakeup(self, fn: Callable[[], None]) -> None:
        self._on_new_timer = fn

    # ----------------------------------------------------------------- policies

    async def set_policy(self, community: str | int, category: str, steps: Any, *,
                         max_rounds: int = 3, restart_wait_s: int = 60,
                         name: str = "") -> EscalationPolicy:
        parsed = parse_steps(steps)
        if max_rounds < 0 or restart_wait_s < 0:
            raise InvalidIncident("max_rounds and restart_wait_s must be >= 0", field="max_rounds")
        async with self._sm() as session:
            comm = await find_community(session, community)
            row = (await session.scalars(select(EscalationPolicy).where(
                EscalationPolicy.community_id == comm.id, EscalationPolicy.category == category
            ))).first()
            if row is None:
                row = EscalationPolicy(community_id=comm.id, category=category)
                session.add(row)
            row.name = name or f"{comm.code}/{category}"
            row.steps = [s.to_json() for s in parsed]
            row.max_rounds = max_rounds
            row.restart_wait_s = restart_wait_s
            await session.commit()
            return row

    async def _snapshot(self, session: AsyncSession, community_id: int,
                        category: str) -> PolicySnapshot:
        rows = (await session.scalars(select(EscalationPolicy).where(
            EscalationPolicy.community_id == community_id,
            EscalationPolicy.category.in_([category, "*"]),
        ))).all()
        rows = sorted(rows, key=lambda r: r.category == "*")
        role = self.config.role_for(category)
        if not rows:
            return PolicySnapshot(steps=DEFAULT_STEPS, role=role, name="default")
        row = rows[0]
        return PolicySnapshot(steps=parse_steps(row.steps), max_rounds=row.max_rounds,
                              restart_wait_s=row.restart_wait_s, role=role,
                              policy_id=row.id, name=row.name)

    # ----------------------------------------------------------------- incidents

    async def open_incident(self, req: IncidentRequest) -> OpenResult:
        if req.source not in SOURCES:
            raise InvalidIncident(f"source: one of {', '.join(SOURCES)}", field="source")
        if not req.category:
            raise InvalidIncident("category is required", field="category")
        now = self._clock.now()
        async with self._open_lock, self._sm() as session:
            comm = await find_community(session, req.community)
            if session.get_bind().dialect.name == "postgresql":
                # One opener at a time per community, across server processes.
                await session.execute(text("SELECT pg_advisory_xact_lock(:k1, :k2)"),
                                      {"k1": 7206, "k2": comm.id})
            since = now - timedelta(seconds=self.config.dedup_window_s)
            existing = (await session.scalars(
                select(Incident).where(
                    Incident.community_id == comm.id,
                    Incident.building == req.building,
                    Incident.category == req.category,
                    Incident.state.in_(("open", "acknowledged")),
                    Incident.opened_at >= since,
                ).order_by(Incident.opened_at.desc()).limit(1)
            )).first()
            report = IncidentReport(received_at=now, source=req.source,
                                    caller_number=req.caller_number, call_id=req.call_id,
                                    note=req.summary, reference=req.reference)
            if existing is not None:
                report.incident_id = existing.id
                report.duplicate = True
                if req.caller_number and req.caller_number not in (existing.callers or []):
                    existing.callers = [*(existing.callers or []), req.caller_number]
                session.add(report)
                await session.commit()
                event = DomainEvent("incident.joined", {
                    "incident_id": existing.id, "caller_number": req.caller_number,
                    "call_id": req.call_id, "source": req.source, "state": existing.state,
                }, at=now)
                self._bus.publish(event)
                return OpenResult(existing.id, False, report.id)
            snapshot = await self._snapshot(session, comm.id, req.category)
            incident = Incident(
                community_id=comm.id, building=req.building, unit=req.unit, room=req.room,
                category=req.category, summary=req.summary, source=req.source,
                callers=[req.caller_number] if req.caller_number else [],
                state="open", policy_snapshot=snapshot.to_json(), opened_at=now,
            )
            session.add(incident)
            await session.flush()
            report.incident_id = incident.id
            session.add(report)
            session.add(PagingTimer(incident_id=incident.id, due_at=now, round=0, step=0,
                                    try_no=0, created_at=now))
            await session.commit()
            data = self._incident_event_data(incident, comm)
        self._bus.publish(DomainEvent("incident.opened", data, at=now))
        if self._on_new_timer is not None:
            self._on_new_timer()
        return OpenResult(incident.id, True, report.id)

    @staticmethod
    def _incident_event_data(incident: Incident, comm: Community) -> dict[str, Any]:
        return {
            "incident_id": incident.id, "community": comm.code, "building": incident.building,
            "unit": incident.unit, "room": incident.room, "category": incident.category,
            "summary": incident.summary, "callers": list(incident.callers or []),
        }

    async def acknowledge(self, incident_id: int, *, user_id: int | None, name: str = "",
                          via: str = "console", attempt_id: int | None = None) -> Incident:
        """Only the first acknowledgement counts; later ones get ``IncidentClosed``."""
        now = self._clock.now()
        async with self._sm() as session:
            if user_id is not None and not name:
                user = await session.get(StaffUser, user_id)
                name = (user.display_name or user.username) if user else ""
            res = await session.execute(
                update(Incident)
                .where(Incident.id == incident_id, Incident.state == "open")
                .values(state="acknowledged", acked_by_user_id=user_id, acked_by_name=name,
                        acked_via=via, acked_at=now, stop_reason="acknowledged")
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                row = await session.get(Incident, incident_id)
                if row is None:
                    raise IncidentNotFound(f"no incident {incident_id}",
                                           details={"incident_id": incident_id})
                raise IncidentClosed(f"incident {incident_id} is {row.state}",
                                     details={"incident_id": incident_id, "state": row.state,
                                              "acked_by": row.acked_by_name})
            await session.execute(
                update(PagingTimer)
                .where(PagingTimer.incident_id == incident_id, PagingTimer.done.is_(False),
                       PagingTimer.claimed_by.is_(None))
                .values(done=True)
            )
            await session.commit()
            incident = await session.get(Incident, incident_id)
            assert incident is not None
            reports = (await session.scalars(select(IncidentReport).where(
                IncidentReport.incident_id == incident_id))).all()
        self._bus.publish(DomainEvent("incident.acknowledged", {
            "incident_id": incident_id, "acked_by_user_id": user_id, "acked_by": name,
            "via": via, "attempt_id": attempt_id, "acked_at": now.isoformat(),
            "call_ids": [r.call_id for r in reports if r.call_id],
            "callers": list(incident.callers or []),
        }, at=now))
        return incident

    async def resolve(self, incident_id: int, *, user_id: int | None, note: str = "") -> Incident:
        now = self._clock.now()
        async with self._sm() as session:
            row = await session.get(Incident, incident_id)
            if row is None:
                raise IncidentNotFound(f"no incident {incident_id}",
                                       details={"incident_id": incident_id})
            if row.state == "resolved":
                raise IncidentClosed(f"incident {incident_id} is resolved",
                                     details={"incident_id": incident_id, "state": row.state})
            row.state = "resolved"
            row.resolved_at = now
            if not row.stop_reason:
                row.stop_reason = "resolved"
            await session.execute(
                update(PagingTimer)
                .where(PagingTimer.incident_id == incident_id, PagingTimer.done.is_(False),
                       PagingTimer.claimed_by.is_(None))
                .values(done=True)
            )
            await session.commit()
        self._bus.publish(DomainEvent("incident.resolved", {
            "incident_id": incident_id, "by_user_id": user_id, "note": note}, at=now))
        return row

    async def get(self, incident_id: int) -> Incident:
        async with self._sm() as session:
            row = await session.get(Incident, incident_id)
            if row is None:
                raise IncidentNotFound(f"no incident {incident_id}",
                                       details={"incident_id": incident_id})
            return row

    async def recent(self, *, scope: frozenset[int] | None, days: int | None = 7,
                     limit: int = 200) -> list[dict[str, Any]]:
        """The incidents a person may see: every one still open or acknowledged (of any
        age), then those resolved in the last ``days`` (None: none of them); newest
        first in each."""
        async with self._sm() as session:
            query = select(Incident, Community).join(
                Community, Community.id == Incident.community_id)
            if scope is not None:
                query = query.where(Incident.community_id.in_(scope))
            live = (await session.execute(query.where(Incident.state != "resolved")
                                          .order_by(Incident.opened_at.desc(), Incident.id.desc())
                                          .limit(limit))).all()
            done = [] if days is None else (await session.execute(query.where(
                Incident.state == "resolved",
                Incident.opened_at >= self._clock.now() - timedelta(days=days))
                .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit))).all()
            ids = [inc.id for inc, _ in (*live, *done)]
            counts: dict[int, int] = {}
            if ids:
                counts = dict((await session.execute(
                    select(IncidentReport.incident_id, func.count()).where(
                        IncidentReport.incident_id.in_(ids))
                    .group_by(IncidentReport.incident_id))).all())
        return [{
            "id": inc.id, "community": comm.code, "community_name": comm.name,
            "building": inc.building, "unit": inc.unit, "room": inc.room,
            "category": inc.category,
            "category_name": CATEGORY_NAMES.get(inc.category, inc.category),
            "summary": inc.summary, "state": inc.state, "opened_at": inc.opened_at,
            "acked_by": inc.acked_by_name or None, "acked_at": inc.acked_at,
            "resolved_at": inc.resolved_at, "reports": counts.get(inc.id, 0),
        } for inc, comm in (*live, *done)]

    async def timeline(self, incident_id: int, *,
                       scope: frozenset[int] | None = None) -> dict[str, Any]:
        """The incident, its reports and every attempt, oldest first. With a ``scope``
        (community ids), another community's incident is not found."""
        async with self._sm() as session:
            inc = await session.get(Incident, incident_id)
            if inc is None or (scope is not None and inc.community_id not in scope):
                raise IncidentNotFound(f"no incident {incident_id}",
                                       details={"incident_id": incident_id})
            comm = await session.get(Community, inc.community_id)
            reports = (await session.scalars(select(IncidentReport).where(
                IncidentReport.incident_id == incident_id).order_by(IncidentReport.id))).all()
            attempts = (await session.scalars(select(PageAttempt).where(
                PageAttempt.incident_id == incident_id).order_by(PageAttempt.id))).all()
            pending = (await session.scalars(select(PagingTimer).where(
                PagingTimer.incident_id == incident_id, PagingTimer.done.is_(False)))).all()

        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": inc.id,
            "community_id": inc.community_id,
            "community": comm.code if comm else None,
            "community_name": comm.name if comm else None,
            "building": inc.building, "unit": inc.unit, "room": inc.room,
            "category": inc.category,
            "category_name": CATEGORY_NAMES.get(inc.category, inc.category),
            "summary": inc.summary, "source": inc.source, "state": inc.state,
            "callers": list(inc.callers or []),
            "opened_at": iso(inc.opened_at),
            "acked_by": inc.acked_by_name or None, "acked_by_user_id": inc.acked_by_user_id,
            "acked_via": inc.acked_via or None, "acked_at": iso(inc.acked_at),
            "resolved_at": iso(inc.resolved_at), "stop_reason": inc.stop_reason or None,
            "policy": inc.policy_snapshot,
            "reports": [{
                "id": r.id, "received_at": iso(r.received_at), "source": r.source,
                "caller_number": r.caller_number, "call_id": r.call_id, "note": r.note,
                "duplicate": r.duplicate, "reference": r.reference,
            } for r in reports],
            "attempts": [{
                "id": a.id, "round": a.round, "step": a.step, "try": a.try_no,
                "user_id": a.user_id, "person": a.person_name, "channel": a.channel,
                "target": a.target, "started_at": iso(a.started_at), "ended_at": iso(a.ended_at),
                "outcome": a.outcome, "error_code": a.error_code or None, "detail": a.detail,
            } for a in attempts],
            "next_step": [{"due_at": iso(t.due_at), "round": t.round, "step": t.step,
                           "try": t.try_no} for t in pending],
        }

    async def wait_acknowledged(self, incident_id: int, timeout_s: float) -> str | None:
        """For the IVR holding the original caller: wait (on the injected clock)
        until the incident is acknowledged; return who, or None on timeout."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()

        async def on_ack(event: DomainEvent) -> None:
            if event.data.get("incident_id") == incident_id and not fut.done():
                fut.set_result(str(event.data.get("acked_by") or ""))

        # remote: the engineer may press 1 on a page call the other server placed.
        unsubscribe = self._bus.subscribe("incident.acknowledged", on_ack, remote=True)
        sleeper: asyncio.Future[None] = asyncio.ensure_future(self._clock.sleep(timeout_s))
        try:
            row = await self.get(incident_id)
            if row.state != "open":
                return row.acked_by_name or "" if row.state == "acknowledged" else None
            waiters: set[asyncio.Future[Any]] = {fut, sleeper}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            return fut.result() if fut.done() else None
        finally:
            unsubscribe()
            sleeper.cancel()

    async def on_incident_requested(self, event: DomainEvent) -> None:
        """Bus handler for ``incident.requested`` (an emergency voicemail)."""
        data = dict(event.data)
        source = str(data.get("source") or "voicemail")
        if source not in SOURCES:
            source = "voicemail"
        try:
            req = incident_request_from_json(data, source=source)
            await self.open_incident(req)
        except Exception:
            log.exception("could not open an incident from %s", event.name)
