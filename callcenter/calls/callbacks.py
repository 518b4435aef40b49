"""The callback worklist (未接来电回拨): callers nobody spoke to, to be called back.

Filled from the same ``call.*`` events the call log is written from, as each call
ends (``call.ended``):

* ``ivr_only``: the caller hung up in the IVR (``ended_in = "ivr"``); a call that
  lasted less than ``min_ivr_s`` is taken for noise and not listed;
* ``abandoned``: hung up while waiting in a queue (``"queue"``, with the wait), while
  the on-call router rang the person on duty (``"oncall"``, with the role: a night
  call that reached nobody), while something else rang (``"ring"``) or before the
  hotline answered (``"early"``, under ``min_ivr_s`` noise as well);
* ``answered``: the caller got through after all; their open entry of that day is
  closed (``done_how = "called_again"``).

Voicemails and emergencies are not listed (a message becomes a ticket, an emergency
an incident), nor callers without a usable number (withheld, anonymous).

An entry is open per (community, E.164 number, local day); each further miss that day
is added to it (``missed``). A callback clears it: the agent presses 回拨 (the list's
``POST /api/callbacks/{id}/call``, or the console's click-to-call of that number),
which is recorded on the entry as ``dialling``; the outgoing call to the number that
follows (an Originate, ``outgoing`` in its events) is matched to it within
``dial_match_s``: answered, the entry is done by that agent; not answered, the attempt
says ``no_answer`` and the entry stays open. An agent may also close it by hand with an
outcome (已联系 / 空号 / 无需回拨) and a note.

Exactly once across servers: only the server that owns the call's AMI link handles its
events (as for the call log), each call is added once (its ``linkedid`` is kept), and a
partial unique index allows one open entry per key: two inserts racing for it leave one,
the loser retries as an update. Every change publishes ``callback.changed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.callback_models import MARK_OUTCOMES, Callback
from callcenter.calls.services import Lookup
from callcenter.calls.standby import HeldEvents
from callcenter.db.base import utcnow
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import person_ids_by_numbers
from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.oncall.models import OnCallAttempt

log = logging.getLogger(__name__)

CHANGED = "callback.changed"
MISSED_OUTCOMES = ("abandoned", "ivr_only")
ENDED_IN = ("ivr", "queue", "oncall", "ring", "early")
_RETRIES = 5


def caller_number(raw: Any) -> str | None:
    """The E.164 number to call back, or None (withheld, anonymous, not a number)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return try_normalize(raw)


def ended_in(data: dict[str, Any], oncall_roles: Sequence[str]) -> str:
    """Where a missed call ended: ``ivr`` / ``queue`` / ``oncall`` / ``ring`` / ``early``."""
    if data.get("outcome") == "ivr_only":
        return "ivr"
    rung = [r for r in data.get("rung") or [] if isinstance(r, dict)]
    if data.get("queue") or any(r.get("queue") or r.get("kind") == "agent" for r in rung):
        return "queue"
    if oncall_roles:
        return "oncall"
    if rung:
        return "ring"
    return "ivr" if data.get("ivr_path") else "early"


class CallbackService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, tz: ZoneInfo,
                 publish: Callable[[DomainEvent], None] | None = None,
                 default_community: str | None = None, min_ivr_s: float = 5.0,
                 dial_match_s: float = 300.0, writes: Callable[[str], bool] | None = None,
                 lookup: Lookup | None = person_ids_by_numbers,
                 now: Callable[[], datetime] = utcnow, hold_s: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``writes(asterisk link)``: whether this server handles that link's calls
        (it owns the link); None: every link (one server). A standby holds the last
        ``hold_s`` of the events it left to the owner and handles them when it takes
        the link over (``take_over``), as the call log does: a call that ended just
        before the owner died is not lost, and one the owner did handle is not added
        twice (its ``linkedid`` is on the entry)."""
        self._sm = sessionmaker
        self._tz = tz
        self._publish = publish
        self._default = default_community
        self.min_ivr_s = min_ivr_s
        self.dial_match_s = dial_match_s
        self._writes = writes
        self._lookup = lookup
        self._now = now
        self._held = HeldEvents(hold_s, 10_000, monotonic)

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        off = [bus.subscribe("call.ended", self.handle), bus.subscribe("call.answered", self.handle)]

        def unsubscribe() -> None:
            for fn in off:
                fn()
        return unsubscribe

    def community_of(self, code: str | None) -> str:
        return code or self._default or ""

    # ------------------------------------------------------------------ events
    async def handle(self, event: DomainEvent) -> None:
        data = event.data
        asterisk = data.get("asterisk")
        if not asterisk or not isinstance(data.get("started_at"), datetime):
            return
        if self._writes is not None and not self._writes(str(asterisk)):
            self._held.hold(event)
            return
        number = caller_number(data.get("caller_number"))
        if number is None:
            return
        at = event.at or self._now()
        if data.get("outgoing"):
            answered = event.name == "call.answered" or data.get("answered_at") is not None
            if event.name == "call.ended" or answered:
                await self.dial_result(number, answered=answered, linkedid=str(data["linkedid"]),
                                       at=at)
            return
        if event.name != "call.ended":
            return
        community = self.community_of(data.get("community"))
        outcome = data.get("outcome")
        if outcome == "answered":
            await self.called_again(community, number, data["started_at"], at=at,
                                    linkedid=str(data.get("linkedid")))
        elif outcome in MISSED_OUTCOMES:
            await self.missed(data, community=community, number=number, at=at)

    async def take_over(self, asterisk: str) -> int:
        """This server now owns link ``asterisk``: handle its held events. Returns how many."""
        mine = self._held.take(asterisk)
        for event in mine:
            try:
                await self.handle(event)
            except Exception:
                log.exception("callbacks: held %s of %s not handled", event.name,
                              event.data.get("linkedid"))
        return len(mine)

    async def missed(self, data: dict[str, Any], *, community: str, number: str,
                     at: datetime) -> Callback | None:
        """Add one missed call (a ``call.ended`` event's data) to its entry."""
        started: datetime = data["started_at"]
        ended: datetime = data.get("ended_at") or at
        linkedid = str(data.get("linkedid") or "")
        roles = await self._oncall_roles(linkedid)
        where = ended_in(data, roles)
        if where in ("ivr", "early") and (ended - started).total_seconds() < self.min_ivr_s:
            return None  # a hang-up within seconds: noise (see [callbacks] min_ivr_s)
        item = {"linkedid": linkedid, "asterisk": data.get("asterisk"),
                "at": started.isoformat(), "ended_at": ended.isoformat(), "ended_in": where,
                "wait_s": data.get("wait_s"), "ivr_path": list(data.get("ivr_path") or []),
                "role": roles[0] if roles else None}
        day = started.astimezone(self._tz).date()
        name = data.get("caller_name")
        for _ in range(_RETRIES):
            try:
                async with self._sm() as session, session.begin():
                    same_key = (await session.scalars(
                        select(Callback).where(Callback.community == community,
                                               Callback.number == number, Callback.day == day)
                        .with_for_update())).all()
                    if any(m.get("linkedid") == linkedid for c in same_key for m in c.missed or []):
                        return None  # this call is in already (a replay, the other server)
                    entry = next((c for c in same_key if c.state == "open"), None)
                    if entry is None:
                        entry = Callback(community=community, number=number, day=day,
                                         state="open", missed_count=0, first_missed_at=started,
                                         last_missed_at=started, missed=[], dialled=[],
                                         done_by="", note="",
                                         person_id=await self._person(session, number))
                        session.add(entry)
                    entry.missed = sorted([*(entry.missed or []), item], key=lambda m: m["at"])
                    entry.missed_count = len(entry.missed)
                    entry.first_missed_at = min(entry.first_missed_at, started)
                    entry.last_missed_at = max(entry.last_missed_at, started)
                    if isinstance(name, str) and name:
                        entry.caller_name = name[:100]
                    entry.updated_at = self._now()
                    await session.flush()
                self._changed(entry, "missed")
                return entry
            except IntegrityError:
                continue  # another server opened the entry first: add to theirs
        raise RuntimeError(f"callback entry of {linkedid} not written after {_RETRIES} tries")

    async def called_again(self, community: str, number: str, started: datetime, *,
                           at: datetime, linkedid: str = "") -> Callback | None:
        """The caller got through (answered) that day: their open entry is done."""
        day = started.astimezone(self._tz).date()
        async with self._sm() as session, session.begin():
            entry = await session.scalar(
                select(Callback).where(Callback.community == community,
                                       Callback.number == number, Callback.day == day,
                                       Callback.state == "open",
                                       Callback.first_missed_at <= started)
                .with_for_update())
            if entry is None:
                return None
            self._close(entry, how="called_again", outcome="reached", at=at,
                        note="当天再次来电已接通")
        self._changed(entry, "done")
        return entry

    async def dial_result(self, number: str, *, answered: bool, linkedid: str,
                          at: datetime) -> list[Callback]:
        """An outgoing call to ``number`` was answered (or ended unanswered): the
        callback attempts dialled for it in the last ``dial_match_s`` say so."""
        since = at - timedelta(seconds=self.dial_match_s)
        changed: list[Callback] = []
        async with self._sm() as session, session.begin():
            entries = (await session.scalars(
                select(Callback).where(Callback.number == number, Callback.state == "open")
                .with_for_update())).all()
            for entry in entries:
                dialled = [dict(d) for d in entry.dialled or []]
                mine = [d for d in dialled if d.get("linkedid") == linkedid]
                waiting = [d for d in dialled if d.get("result") == "dialling"
                           and _at(d) >= since]
                attempt = mine[-1] if mine else (waiting[-1] if waiting else None)
                if attempt is None or attempt.get("result") == "answered":
                    continue
                if attempt.get("result") == "no_answer" and not answered:
                    continue
                attempt["linkedid"] = linkedid
                attempt["result"] = "answered" if answered else "no_answer"
                entry.dialled = dialled
                if answered:
                    self._close(entry, how="callback", outcome="reached", at=at,
                                by=str(attempt.get("by") or ""),
                                user_id=attempt.get("user_id"), note="回拨已接通")
                entry.updated_at = self._now()
                changed.append(entry)
        for entry in changed:
            self._changed(entry, "done" if entry.state == "done" else "dialled")
        return changed

    # ------------------------------------------------------------------ agents
    async def dialling(self, session: AsyncSession, entries: Sequence[Callback], *,
                       user_id: int | None, by: str) -> None:
        """An agent is calling these entries' number back (recorded before the
        Originate, so its answer cannot outrun it); the caller commits."""
        now = self._now()
        for entry in entries:
            entry.dialled = [*(entry.dialled or []), {
                "user_id": user_id, "by": by, "at": now.isoformat(), "result": "dialling"}]
            entry.updated_at = now

    async def dial_failed(self, entry_ids: Sequence[int], reason: str) -> None:
        """The Originate did not go out (the agent's phone did not answer, no PBX)."""
        async with self._sm() as session, session.begin():
            for entry in (await session.scalars(
                    select(Callback).where(Callback.id.in_(list(entry_ids)))
                    .with_for_update())).all():
                dialled = [dict(d) for d in entry.dialled or []]
                for d in reversed(dialled):
                    if d.get("result") == "dialling":
                        d["result"], d["reason"] = "failed", reason[:100]
                        break
                entry.dialled = dialled

    async def open_for_number(self, session: AsyncSession, number: str,
                              scope: frozenset[str] | None) -> list[Callback]:
        stmt = select(Callback).where(Callback.number == number, Callback.state == "open")
        if scope is not None:
            stmt = stmt.where(self.of_communities(scope))
        return list((await session.scalars(stmt.with_for_update())).all())

    async def mark_done(self, entry_id: int, *, outcome: str, note: str, user_id: int | None,
                        by: str, scope: frozenset[str] | None) -> Callback:
        if outcome not in MARK_OUTCOMES:
            raise InvalidInput(f"outcome 应为 {'/'.join(MARK_OUTCOMES)}", field="outcome")
        async with self._sm() as session, session.begin():
            entry = await self.get(session, entry_id, scope, lock=True)
            if entry.state != "open":
                raise Conflict("这条回拨已处理 / this callback is already done",
                               details={"callback_id": entry_id})
            self._close(entry, how="marked", outcome=outcome, at=self._now(), by=by,
                        user_id=user_id, note=note.strip()[:500])
        self._changed(entry, "done")
        return entry

    async def get(self, session: AsyncSession, entry_id: int, scope: frozenset[str] | None,
                  *, lock: bool = False) -> Callback:
        stmt = select(Callback).where(Callback.id == entry_id)
        if scope is not None:
            stmt = stmt.where(self.of_communities(scope))
        entry = await session.scalar(stmt.with_for_update() if lock else stmt)
        if entry is None:
            raise NotFound("没有这条回拨 / no such callback", details={"callback_id": entry_id})
        return entry

    async def search(self, *, scope: frozenset[str] | None, state: str | None = None,
                     day: Any = None, limit: int = 200) -> list[Callback]:
        """Open ones first (oldest miss first), then the rest, newest first."""
        stmt = select(Callback)
        if scope is not None:
            stmt = stmt.where(self.of_communities(scope))
        if state:
            stmt = stmt.where(Callback.state == state)
        if day is not None:
            stmt = stmt.where(Callback.day == day)
        stmt = stmt.order_by((Callback.state != "open"), Callback.last_missed_at.desc(),
                             Callback.id.desc()).limit(limit)
        async with self._sm() as session:
            return list((await session.scalars(stmt)).all())

    async def open_count(self, scope: frozenset[str] | None) -> int:
        stmt = select(func.count()).select_from(Callback).where(Callback.state == "open")
        if scope is not None:
            stmt = stmt.where(self.of_communities(scope))
        async with self._sm() as session:
            return int(await session.scalar(stmt) or 0)

    def of_communities(self, codes: frozenset[str]) -> ColumnElement[bool]:
        """Entries of ``codes``; those of no community when the default is one of them."""
        wanted = Callback.community.in_(sorted(codes))
        if self._default and self._default in codes:
            return or_(wanted, Callback.community == "")
        return wanted

    # --------------------------------------------------------------- internals
    def _close(self, entry: Callback, *, how: str, outcome: str, at: datetime, note: str = "",
               by: str = "", user_id: int | None = None) -> None:
        entry.state = "done"
        entry.done_at = at
        entry.done_how = how
        entry.done_outcome = outcome
        entry.done_by = by[:100]
        entry.done_by_user_id = user_id
        entry.note = note
        entry.updated_at = self._now()

    def _changed(self, entry: Callback, change: str) -> None:
        if self._publish is not None:
            # No number in the event: the cluster bus carries it; screens re-read the list.
            self._publish(DomainEvent(CHANGED, {
                "callback_id": entry.id, "community": entry.community or None,
                "state": entry.state, "change": change}, at=self._now()))

    async def _person(self, session: AsyncSession, number: str) -> int | None:
        if self._lookup is None:
            return None
        try:
            found = await self._lookup(await session.connection(), [number])
        except Exception:
            log.exception("directory lookup failed for a callback's number")
            return None
        ids = found.get(number, ())
        return ids[0] if len(ids) == 1 else None

    async def _oncall_roles(self, linkedid: str) -> list[str]:
        """The roles the on-call router rang for this call (none answered, or it
        would not be missed)."""
        if not linkedid:
            return []
        async with self._sm() as session:
            rows = (await session.scalars(
                select(OnCallAttempt.role).where(OnCallAttempt.call_id == linkedid)
                .order_by(OnCallAttempt.started_at, OnCallAttempt.id))).all()
        return list(dict.fromkeys(rows))


def _at(item: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(item.get("at")))
    except ValueError:
        return datetime.min.replace(tzinfo=ZoneInfo("UTC"))
