"""The audit log: every look at a person's record is written down."""

from __future__ import annotations

import asyncio
import contextvars
import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.identity import Identity
from callcenter.console.models import AuditEntry
from callcenter.directory.models import Building, PersonRoom, Room, Unit

log = logging.getLogger(__name__)

REASONS = ("pop", "search", "ticket", "view", "create")


async def record_access(session: AsyncSession, who: Identity | None, person_ids: Iterable[int],
                        *, reason: str, source: str, detail: str = "",
                        at: datetime | None = None, commit: bool = True) -> int:
    """Write one row per person looked at; a search that finds nobody still writes one row."""
    if reason not in REASONS:
        raise ValueError(f"unknown audit reason {reason!r}")
    ids: list[int | None] = list(dict.fromkeys(person_ids)) or [None]
    for pid in ids:
        entry = AuditEntry(
            user_id=who.user_id if who else None,
            username=(who.username if who else "system")[:64],
            person_id=pid, reason=reason, source=source[:64], detail=detail[:500],
        )
        if at is not None:
            entry.at = at
        session.add(entry)
    if commit:
        await session.commit()
    return len(ids)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    username: str = ""
    person_id: int | None = None
    reason: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200
    offset: int = 0
    # The reader's communities (ids; None: every one): only looks at their residents.
    scope: frozenset[int] | None = None


async def read_audit(session: AsyncSession, q: AuditQuery) -> Sequence[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if q.scope is not None:
        stmt = stmt.where(AuditEntry.person_id.in_(
            select(PersonRoom.person_id).join(Room, Room.id == PersonRoom.room_id)
            .join(Unit, Unit.id == Room.unit_id).join(Building, Building.id == Unit.building_id)
            .where(Building.community_id.in_(sorted(q.scope)))))
    if q.username:
        stmt = stmt.where(AuditEntry.username == q.username)
    if q.person_id is not None:
        stmt = stmt.where(AuditEntry.person_id == q.person_id)
    if q.reason:
        stmt = stmt.where(AuditEntry.reason == q.reason)
    if q.since is not None:
        stmt = stmt.where(AuditEntry.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditEntry.at < q.until)
    stmt = stmt.limit(q.limit).offset(q.offset)
    return (await session.scalars(stmt)).all()


CSV_HEADER = ("id", "at", "user_id", "username", "person_id", "reason", "source", "detail")


def audit_csv(rows: Iterable[AuditEntry]) -> str:
    """CSV with a BOM so spreadsheet programs open the Chinese text as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow([r.id, r.at.isoformat(), r.user_id or "", r.username,
                         r.person_id or "", r.reason, r.source, _no_formula(r.detail)])
    return out.getvalue()


def _no_formula(text: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class AuditWriter:
    """Buffers audit rows and writes them in one transaction every ``flush_every_s``.

    A pop writes one row per person shown; at 100 calls/s one transaction per pop
    would cost more than building the pop. Rows are durable within
    ``flush_every_s``; ``close`` writes what is left. A failed write is logged and
    retried with the next batch (up to ``max_pending`` rows are kept)."""

    def __init__(self, sessionmaker: Any, *, flush_every_s: float = 0.2,
                 max_pending: int = 100_000) -> None:
        self._sm = sessionmaker
        self._every = flush_every_s
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._writing = False
        self.written = 0

    def add(self, who: Identity | None, person_ids: Iterable[int], *, reason: str,
            source: str, detail: str = "", at: datetime | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown audit reason {reason!r}")
        when = at or datetime.now(UTC)
        ids: list[int | None] = list(dict.fromkeys(person_ids)) or [None]
        for pid in ids:
            self._pending.append({
                "at": when, "user_id": who.user_id if who else None,
                "username": (who.username if who else "system")[:64], "person_id": pid,
                "reason": reason, "source": source[:64], "detail": detail[:500]})
        if len(self._pending) > self._max_pending:
            dropped = len(self._pending) - self._max_pending
            del self._pending[:dropped]
            log.error("audit writer dropped %d rows: the database is not keeping up", dropped)
        if self._task is None or self._task.done():
            # Rows of many calls and users: not the ids of the one that started it.
            self._task = asyncio.get_running_loop().create_task(self._flush_later(),
                                                                context=contextvars.Context())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._every)
        await self._write()

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            self._writing = True
            try:
                async with self._sm() as session:
                    await session.execute(insert(AuditEntry), batch)
                    await session.commit()
                self.written += len(batch)
            except asyncio.CancelledError:
                self._pending = batch + self._pending
                raise
            except Exception:
                log.exception("could not write %d audit rows; will retry", len(batch))
                self._pending = batch + self._pending
                return
            finally:
                self._writing = False

    async def flush(self) -> None:
        """Write everything buffered now (tests, shutdown)."""
        task = self._task
        if task is not None and not task.done():
            if not self._writing:
                task.cancel()  # still waiting for its turn: write now instead
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._write()

    async def close(self) -> None:
        await self.flush()
