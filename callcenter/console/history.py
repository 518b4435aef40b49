"""Call history for the console, read from the call log (``callcenter/calls``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import CallLog
from callcenter.calls.services import of_communities
from callcenter.console.ports import StaffRef
from callcenter.directory.phones import try_normalize


def rang_user(row: CallLog, me: StaffRef) -> bool:
    """Whether this call rang (or was answered by) this member of staff."""
    mine = {v for v in (me.extension, me.username, me.display_name) if v}
    mobile = try_normalize(me.mobile) if me.mobile else None
    for ring in row.rung or []:
        target = str(ring.get("target") or "")
        if target in mine or ring.get("member_name") in mine:
            return True
        if mobile and try_normalize(target) == mobile:
            return True
    return bool(row.answered_by) and row.answered_by in mine


async def recent_history(session: AsyncSession, me: StaffRef | None, *, limit: int = 100,
                         scan: int = 1000, scope: frozenset[str] | None = None,
                         default_community: str | None = None) -> list[dict[str, Any]]:
    """Finished calls, newest first; only those that rang ``me`` unless ``me`` is None,
    and only those of the communities in ``scope`` (codes) when one is given."""
    stmt = select(CallLog).where(CallLog.outcome.is_not(None))
    if scope is not None:
        stmt = stmt.where(of_communities(scope, default_community))
    rows = (await session.scalars(
        stmt.order_by(CallLog.started_at.desc()).limit(scan))).all()
    out: list[dict[str, Any]] = []
    for r in rows:
        if me is not None and not rang_user(r, me):
            continue
        wait = r.wait_s if r.wait_s is not None else 0.0
        outgoing = r.direction == "out"
        out.append({"call_id": r.linkedid, "at": r.started_at,
                    # an outgoing call's other party is the number it dialled
                    "caller": (r.did if outgoing else r.caller_number) or "",
                    "title": r.caller_name or "", "outcome": r.outcome or "",
                    "direction": r.direction,
                    "agent": r.answered_by or "", "answered_by": None, "targets": [],
                    "ivr_path": list(r.ivr_path or []), "wait_s": round(wait, 1)})
        if len(out) >= limit:
            break
    return out


async def today_counts(session: AsyncSession, since: datetime
                       ) -> dict[str | None, dict[str, float]]:
    """Per community code (None: calls given none): offered / answered / abandoned /
    total wait of answered calls since ``since``."""
    rows = (await session.execute(
        select(CallLog.community, CallLog.outcome, CallLog.wait_s, CallLog.answered_at)
        .where(CallLog.started_at >= since, CallLog.direction == "in"))).all()
    out: dict[str | None, dict[str, float]] = {}
    for community, outcome, wait, at in rows:
        c = out.setdefault(community, {"offered": 0, "answered": 0, "abandoned": 0,
                                       "total_wait_s": 0.0})
        c["offered"] += 1
        if at is not None:
            c["answered"] += 1
            c["total_wait_s"] += float(wait or 0.0)
        if outcome == "abandoned":
            c["abandoned"] += 1
    return out
