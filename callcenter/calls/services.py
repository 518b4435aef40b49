"""The call log: ``call.*`` domain events in, ``CallLog`` rows out.

Bus handlers run concurrently, so events of one call may be handled out of
order (``call.ended`` before ``call.answered``). Each event therefore carries
the call's whole picture and every write is a merge that only adds knowledge:
applying any event twice, or in any order, gives the same row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.models import CallLog
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import PersonView, lookup_by_number

log = logging.getLogger(__name__)

Lookup = Callable[[AsyncSession, str], Awaitable[Sequence[PersonView]]]


def normalized_number(raw: str | None) -> str | None:
    if not raw:
        return None
    return try_normalize(raw) or raw[:32]


class CallLogService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 lookup: Lookup | None = lookup_by_number) -> None:
        self._sm = sessionmaker
        self._lookup = lookup
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        return bus.subscribe("call.*", self.handle)

    async def handle(self, event: DomainEvent) -> None:
        data = event.data
        asterisk, linkedid = data.get("asterisk"), data.get("linkedid")
        if not asterisk or not linkedid or not isinstance(data.get("started_at"), datetime):
            return
        key = (asterisk, linkedid)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                for attempt in (1, 2):
                    try:
                        await self._merge(event)
                        break
                    except IntegrityError:
                        # Another process inserted the row first: merge into it.
                        if attempt == 2:
                            raise
        finally:
            if event.name == "call.ended" and not lock.locked():
                self._locks.pop(key, None)

    async def _merge(self, event: DomainEvent) -> None:
        d = event.data
        async with self._sm() as session, session.begin():
            row = await session.scalar(select(CallLog).where(
                CallLog.asterisk == d["asterisk"], CallLog.linkedid == d["linkedid"]))
            if row is None:
                row = CallLog(linkedid=d["linkedid"], asterisk=d["asterisk"],
                              started_at=d["started_at"], ivr_path=[], rung=[])
                session.add(row)
            await self._apply(session, row, event)

    async def _apply(self, session: AsyncSession, row: CallLog, event: DomainEvent) -> None:
        d = event.data
        if d.get("community"):
            row.community = d["community"]
        if d.get("did"):
            row.did = str(d["did"])[:32]
        if d.get("caller_name"):
            row.caller_name = str(d["caller_name"])[:100]
        number = normalized_number(d.get("caller_number"))
        if number and number != row.caller_number:
            row.caller_number = number
            row.person_id = await self._match(session, d["caller_number"])
        if d["started_at"] < row.started_at:
            row.started_at = d["started_at"]
        path = d.get("ivr_path")
        if isinstance(path, list) and len(path) > len(row.ivr_path or []):
            row.ivr_path = list(path)
        rung = d.get("rung")
        if isinstance(rung, list) and len(rung) > len(row.rung or []):
            row.rung = [dict(r) for r in rung]
        elif event.name == "call.ringing":
            entry = {k: d.get(k) for k in ("target", "kind", "interface", "member_name", "queue")}
            entry["at"] = (event.at or d["started_at"]).isoformat()
            if not any(_same_ring(entry, r) for r in row.rung or []):
                row.rung = [*(row.rung or []), entry]
        if d.get("answered_by"):
            row.answered_by = str(d["answered_by"])[:100]
        answered_at = d.get("answered_at")
        if isinstance(answered_at, datetime) and row.answered_at is None:
            row.answered_at = answered_at
        if event.name == "call.ended":
            ended_at = d.get("ended_at") or event.at
            row.ended_at = ended_at
            row.outcome = d.get("outcome")
            row.wait_s = d.get("wait_s")
            row.talk_s = d.get("talk_s")
        elif row.outcome is None and d.get("wait_s") is not None and row.wait_s is None:
            row.wait_s = d.get("wait_s")

    async def _match(self, session: AsyncSession, raw: str) -> int | None:
        if self._lookup is None:
            return None
        try:
            people = await self._lookup(session, raw)
        except Exception:
            log.exception("directory lookup failed for a caller number")
            return None
        return people[0].person_id if len(people) == 1 else None

    async def search(self, *, start: datetime | None = None, end: datetime | None = None,
                     number: str | None = None, limit: int = 200) -> list[CallLog]:
        stmt = select(CallLog)
        if start is not None:
            stmt = stmt.where(CallLog.started_at >= start)
        if end is not None:
            stmt = stmt.where(CallLog.started_at < end)
        if number:
            # Stored normalised: any form a person types finds the calls.
            stmt = stmt.where(CallLog.caller_number == (normalized_number(number) or number))
        stmt = stmt.order_by(CallLog.started_at.desc(), CallLog.id.desc()).limit(limit)
        async with self._sm() as session:
            return list((await session.scalars(stmt)).all())


def _same_ring(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("target") == b.get("target") and a.get("at") == b.get("at")
