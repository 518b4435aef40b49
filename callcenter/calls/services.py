"""The call log: ``call.*`` domain events in, ``CallLog`` rows out.

Bus handlers run concurrently, so events of one call may be handled out of
order (``call.ended`` before ``call.answered``). Each event therefore carries
the call's whole picture and every write is a merge that only adds knowledge:
applying any event twice, or in any order, gives the same row.

With two servers on one Asterisk (``callcenter.ha``) both derive every call's
events from AMI, but only the server owning the link writes them: two writers of
the same new call collided on its row at every insert and doubled the database's
work. The other holds the last ``hold_s`` of events, and writes them when it
takes the link over, so the seconds between the owner's crash and the takeover
are not lost (writing an event the old owner had written changes nothing).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from callcenter.bus import DomainEvent, EventBus
from callcenter.calls.models import CallLog
from callcenter.calls.standby import HeldEvents
from callcenter.directory.phones import try_normalize
from callcenter.directory.services import person_ids_by_numbers

log = logging.getLogger(__name__)

# (connection, E.164 numbers) → each number's people (a row names one only if exactly one)
Lookup = Callable[[AsyncConnection, Sequence[str]], Awaitable[Mapping[str, Sequence[int]]]]


def normalized_number(raw: str | None) -> str | None:
    if not raw:
        return None
    return try_normalize(raw) or raw[:32]


class CallLogService:
    """Writes ``call.*`` events into the call log, a batch at a time.

    Events arriving within ``batch_delay_s`` of each other are written in one
    transaction (a busy hotline sends several events per call per second; one
    transaction each kept SQLite's single writer busy and starved every other
    writer). ``handle`` returns once its event is written, as before. A batch
    that fails as a whole is written again event by event, so one bad event
    loses only itself, and is logged."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 lookup: Lookup | None = person_ids_by_numbers,
                 batch_delay_s: float = 0.0,
                 writes: Callable[[str], bool] | None = None,
                 hold_s: float = 30.0, hold_max: int = 50_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``writes(asterisk link)``: whether this server writes that link's calls now
        (it owns the link); None: every link (one server)."""
        self._sm = sessionmaker
        self._writes = writes
        self._held = HeldEvents(hold_s, hold_max, monotonic)
        self.held_written = 0
        """Held events written on a takeover so far (observability, tests)."""
        self._lookup = lookup
        self._delay = batch_delay_s
        self._pending: list[DomainEvent] = []
        self._batch: asyncio.Future[None] | None = None
        self._flushers: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()  # batches are written one at a time, in order

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        return bus.subscribe("call.*", self.handle)

    async def handle(self, event: DomainEvent) -> None:
        data = event.data
        asterisk, linkedid = data.get("asterisk"), data.get("linkedid")
        if not asterisk or not linkedid or not isinstance(data.get("started_at"), datetime):
            return
        if self._writes is not None and not self._writes(str(asterisk)):
            self._held.hold(event)
            return
        await self._enqueue(event)

    async def take_over(self, asterisk: str) -> int:
        """This server now owns link ``asterisk``: write its held events (the last
        ``hold_s``: what the old owner may not have written before it died).
        Returns how many."""
        mine = self._held.take(asterisk)
        if mine:
            await asyncio.gather(*(self._enqueue(e) for e in mine), return_exceptions=True)
            self.held_written += len(mine)
            log.info("call log: %d events of %s held as standby written on takeover",
                     len(mine), asterisk)
        return len(mine)

    async def _enqueue(self, event: DomainEvent) -> None:
        batch = self._batch
        if batch is None:
            batch = self._batch = asyncio.get_running_loop().create_future()
            # One batch holds many calls: its task must not carry this one's ids.
            task = asyncio.get_running_loop().create_task(self._flush_after(batch),
                                                          context=contextvars.Context())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        self._pending.append(event)
        await asyncio.shield(batch)

    async def close(self) -> None:
        """Write what is pending (shutdown)."""
        while self._flushers:
            await asyncio.gather(*list(self._flushers), return_exceptions=True)

    async def _flush_after(self, batch: asyncio.Future[None]) -> None:
        await asyncio.sleep(self._delay)
        async with self._write_lock:
            events, self._pending = self._pending, []
            if self._batch is batch:
                self._batch = None
            try:
                await self._write(events)
            except Exception as exc:
                batch.set_exception(exc)
                batch.exception()  # reported by each handler's own await
            else:
                batch.set_result(None)

    async def _write(self, events: list[DomainEvent]) -> None:
        try:
            await self._merge_all(events)
            return
        except IntegrityError:
            pass  # another process inserted one of the rows first: merge into it
        except Exception:
            if len(events) == 1:
                raise
            log.exception("call log batch of %d events failed; writing them one by one",
                          len(events))
        failed: Exception | None = None
        for event in events:
            try:
                try:
                    await self._merge_all([event])
                except IntegrityError:
                    await self._merge_all([event])
            except Exception as exc:
                log.exception("call log: %s of call %s not written", event.name,
                              event.data.get("linkedid"))
                failed = exc
        if failed is not None and len(events) == 1:
            raise failed

    async def _merge_all(self, events: list[DomainEvent]) -> None:
        """One transaction: read the batch's rows, merge every event into them in
        Python, write back only what changed (SQLAlchemy Core with statements built
        once: the ORM's unit of work cost ~0.7 ms of CPU per event, on the loop that
        also rings agents' screens)."""
        keys = {(e.data["asterisk"], e.data["linkedid"]) for e in events}
        async with self._sm() as session, session.begin():
            conn = await session.connection()
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            for asterisk in {a for a, _ in keys}:
                ids = sorted(lid for a, lid in keys if a == asterisk)
                result = await conn.execute(_ROWS_OF_CALLS, {"asterisk": asterisk, "ids": ids})
                for found in result.mappings():
                    rows[(found["asterisk"], found["linkedid"])] = dict(found)
            before = {key: dict(row) for key, row in rows.items()}
            renumbered: set[tuple[str, str]] = set()
            for event in events:
                d = event.data
                key = (d["asterisk"], d["linkedid"])
                row = rows.get(key)
                if row is None:
                    row = rows[key] = _new_row(d)
                if _apply(row, event):
                    renumbered.add(key)
            if renumbered:
                await self._match(conn, [rows[key] for key in renumbered])
            inserts = [row for key, row in rows.items() if key not in before]
            updates = [{f"new_{c}": row[c] for c in _MERGED} | {"row_id": row["id"]}
                       for key, row in rows.items()
                       if key in before and row != before[key]]
            if inserts:
                await conn.execute(_INSERT_CALL, inserts)
            if updates:
                await conn.execute(_UPDATE_CALL, updates)

    async def _match(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Name the directory person of each row's number (only when exactly one person
        has it): one query for the whole batch."""
        for row in rows:
            row["person_id"] = None
        if self._lookup is None:
            return
        try:
            found = await self._lookup(conn, sorted({row["caller_number"] for row in rows}))
        except Exception:
            log.exception("directory lookup failed for the batch's caller numbers")
            return
        for row in rows:
            ids = found.get(row["caller_number"], ())
            row["person_id"] = ids[0] if len(ids) == 1 else None

    async def search(self, *, start: datetime | None = None, end: datetime | None = None,
                     number: str | None = None, scope: frozenset[str] | None = None,
                     default_community: str | None = None, limit: int = 200) -> list[CallLog]:
        """Newest first; only calls of the communities in ``scope`` (codes; None: all)."""
        stmt = select(CallLog)
        if scope is not None:
            stmt = stmt.where(of_communities(scope, default_community))
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


def of_communities(codes: frozenset[str], default: str | None) -> ColumnElement[bool]:
    """Calls of the communities ``codes``: those a link or hotline gave one of them, and
    those given none when the site's ``default_community`` is one of them."""
    wanted = CallLog.community.in_(sorted(codes))
    if default and default in codes:
        return or_(wanted, CallLog.community.is_(None))
    return wanted


_TABLE = cast(Table, CallLog.__table__)
# Every column an event can change (all but the key and the id).
_MERGED = tuple(c.name for c in _TABLE.columns if c.name not in ("id", "asterisk", "linkedid"))
_ROWS_OF_CALLS = select(_TABLE).where(
    _TABLE.c.asterisk == bindparam("asterisk"),
    _TABLE.c.linkedid.in_(bindparam("ids", expanding=True)))
_INSERT_CALL = insert(_TABLE)
_UPDATE_CALL = (update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))
                .values({c: bindparam(f"new_{c}") for c in _MERGED}))


def _new_row(d: dict[str, Any]) -> dict[str, Any]:
    return {"linkedid": d["linkedid"], "asterisk": d["asterisk"], **dict.fromkeys(_MERGED),
            "started_at": d["started_at"], "ivr_path": [], "rung": [],
            "direction": "out" if d.get("outgoing") else "in"}


def _apply(row: dict[str, Any], event: DomainEvent) -> bool:
    """Merge one event into the row (a dict of the table's columns); True when it
    gave the row a new caller number (to be matched against the directory). Lists
    are replaced, never changed in place: the writer compares before and after."""
    d = event.data
    if d.get("outgoing"):
        row["direction"] = "out"
    if d.get("community"):
        row["community"] = d["community"]
    if d.get("did"):
        row["did"] = str(d["did"])[:32]
    if d.get("caller_name"):
        row["caller_name"] = str(d["caller_name"])[:100]
    number = normalized_number(d.get("caller_number"))
    renumbered = bool(number and number != row["caller_number"])
    if renumbered:
        row["caller_number"] = number
    if d["started_at"] < row["started_at"]:
        row["started_at"] = d["started_at"]
    path = d.get("ivr_path")
    if isinstance(path, list) and len(path) > len(row["ivr_path"] or []):
        row["ivr_path"] = list(path)
    rung = d.get("rung")
    if isinstance(rung, list) and len(rung) > len(row["rung"] or []):
        row["rung"] = [dict(r) for r in rung]
    elif event.name == "call.ringing":
        entry = {k: d.get(k) for k in ("target", "kind", "interface", "member_name", "queue")}
        entry["at"] = (event.at or d["started_at"]).isoformat()
        if not any(_same_ring(entry, r) for r in row["rung"] or []):
            row["rung"] = [*(row["rung"] or []), entry]
    if d.get("answered_by"):
        row["answered_by"] = str(d["answered_by"])[:100]
    answered_at = d.get("answered_at")
    if isinstance(answered_at, datetime) and row["answered_at"] is None:
        row["answered_at"] = answered_at
    if event.name == "call.ended":
        row["ended_at"] = d.get("ended_at") or event.at
        row["outcome"] = d.get("outcome")
        row["wait_s"] = d.get("wait_s")
        row["talk_s"] = d.get("talk_s")
    elif row["outcome"] is None and d.get("wait_s") is not None and row["wait_s"] is None:
        row["wait_s"] = d.get("wait_s")
    return renumbered


def _same_ring(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("target") == b.get("target") and a.get("at") == b.get("at")
