"""The audit log: every look at a person's record is written down."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.auth.identity import Identity
from callcenter.console.models import AuditEntry

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


async def read_audit(session: AsyncSession, q: AuditQuery) -> Sequence[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
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
