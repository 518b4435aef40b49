"""The agent hub: pops and live call state pushed over WebSocket (``/ws/agent``).

* A user may have several tabs or devices open; every connection of the user
  gets the pop.
* A browser that reconnects gets the calls still ringing it (or talking to it).
* A pop is updated as the call goes on: answered (by whom), transferred, ended.
* A member of staff the call rings who has no connection open (night duty with
  a mobile) gets a short summary through their notifier.
* Supervisors get the live wall: calls waiting and for how long, who is
  talking to whom, agents' states, and today's numbers.

Every pop delivered writes an audit row per person shown (reason ``pop``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.identity import Identity
from callcenter.auth.scope import Scope, codes_of, in_scope
from callcenter.bus import DomainEvent, EventBus
from callcenter.clock import Clock
from callcenter.cluster.codec import REREAD
from callcenter.console.agent_states import OFFLINE, AgentStateStore, SharedState
from callcenter.console.audit import AuditWriter
from callcenter.console.history import today_counts
from callcenter.console.ports import StaffRef
from callcenter.directory.masking import mask_text, masked_number, present_pop, show_number
from callcenter.notify.base import Notification
from callcenter.notify.staff import StaffNotifiers
from callcenter.screenpop.adapters import ivr_paths
from callcenter.screenpop.builder import (
    CallContext,
    PopBuilder,
    degraded_pop,
    ivr_room_id,
    person_ids_in,
)
from callcenter.screenpop.events import call_id_of, caller_of, ivr_step_of, targets_of
from callcenter.screenpop.staff import StaffDirectory, StaffEntry

log = logging.getLogger(__name__)

LIVE_STATES = ("ringing", "answered", "transferred")
WALL_ROLES = ("supervisor", "admin")
STATE_LABELS = {
    "new": "进线", "ivr": "语音导航中", "ringing": "振铃中", "answered": "通话中",
    "transferred": "已转接", "ended": "已结束", "abandoned": "已放弃",
}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


@dataclass
class LiveCall:
    call_id: str
    caller: str
    started_mono: float
    started_at: datetime
    community: str | None = None
    queue: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    state: str = "new"
    answered_mono: float | None = None
    answered_by: int | None = None
    answered_label: str = ""
    targets: set[int] = field(default_factory=set)
    notified: set[int] = field(default_factory=set)
    rung: dict[str, int] = field(default_factory=dict)  # target / member name → user id
    pop: dict[str, Any] | None = None
    pop_future: asyncio.Future[dict[str, Any]] | None = None
    pop_built_mono: float | None = None
    refreshing: bool = False


@dataclass
class AgentState:
    # Signed in, not taking calls: an agent joins the queue by pressing 就绪.
    state: str = "not_ready"
    reason: str = ""
    since_mono: float = 0.0
    since_at: datetime | None = None  # wall clock, for the other servers


@dataclass
class DailyStats:
    day: date | None = None
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    total_wait_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        avg = self.total_wait_s / self.answered if self.answered else 0.0
        return {"day": self.day.isoformat() if self.day else None, "offered": self.offered,
                "answered": self.answered, "abandoned": self.abandoned,
                "avg_wait_s": round(avg, 1)}


class Connection:
    """One browser tab: a bounded outbox drained by a writer task, so a slow
    client never holds up a pop to the others."""

    def __init__(self, ws: web.WebSocketResponse, identity: Identity, *,
                 outbox_size: int, send_timeout_s: float, remote: str = "",
                 scope: Scope = None) -> None:
        self.ws = ws
        self.identity = identity
        self.scope = scope  # the codes of the communities it is shown; None: all
        self.remote = remote
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=outbox_size)
        self._send_timeout = send_timeout_s
        self.writer: asyncio.Task[None] | None = None
        self.detached = False

    def push(self, frame: str) -> bool:
        try:
            self.outbox.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            return False

    async def write_loop(self) -> None:
        while True:
            frame = await self.outbox.get()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for runs the send in a
                # task of its own, one more turn of the loop for every frame.
                async with asyncio.timeout(self._send_timeout):
                    await self.ws.send_str(frame)
            except (ConnectionError, TimeoutError, RuntimeError):
                await self.ws.close()
                return


class AgentHub:
    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], builder: PopBuilder,
                 staff: StaffDirectory, clock: Clock, timezone: str = "Asia/Shanghai",
                 notifiers: StaffNotifiers | None = None, audit: AuditWriter | None = None,
                 outbox_size: int = 256, send_timeout_s: float = 10.0,
                 wall_debounce_s: float = 0.2, ended_linger: int = 200,
                 prefetch: bool = True, pop_fresh_s: float = 20.0,
                 degraded_retry_s: float = 1.0, default_community: str | None = None) -> None:
        """``prefetch``: build the pop as soon as a call with a caller number comes in
        (it then waits in the IVR or the queue), so ringing an agent costs no database
        work. ``pop_fresh_s``: a pop older than this when it is shown is shown at once
        and rebuilt behind it; the card updates if anything changed.
        ``default_community``: the community of a call no link or hotline gave one (a
        person sees a call's pop, and the wall its row, only if it is in their scope)."""
        self._sm = sessionmaker
        self._default_community = default_community
        self._prefetch = prefetch
        self._pop_fresh_s = pop_fresh_s
        # Builds that block the loop (SQLite) go one at a time; others (PostgreSQL)
        # as many as the builder's own slots allow.
        self._prefetch_slot: AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(1) if getattr(builder, "blocks_loop", False) else nullcontext())
        self._degraded_retry_s = degraded_retry_s
        self._builder = builder
        self.staff = staff
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self.notifiers = notifiers
        self._audit = audit
        self._outbox_size = outbox_size
        self._send_timeout = send_timeout_s
        self._wall_debounce = wall_debounce_s
        self.calls: dict[str, LiveCall] = {}
        self.connections: dict[int, set[Connection]] = {}
        self._wall_viewers = 0  # open connections of supervisors and admins
        self.agent_states: dict[int, AgentState] = {}
        self.stats: dict[str | None, DailyStats] = {}  # per community code
        self.history: deque[dict[str, Any]] = deque(maxlen=ended_linger)
        self._ended_ids: set[str] = set()
        self._ended_order: deque[str] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._work: set[asyncio.Task[Any]] = set()
        self._wall_task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.on_frame_sent: Callable[[str, int], None] | None = None  # metrics, benchmarks
        # With several servers (``join_cluster``): this server's id, where agents'
        # states are written, and who has a console open on another server.
        self._bus: EventBus | None = None
        self._server_id: str | None = None
        self._shared: AgentStateStore | None = None
        self._share_lock = asyncio.Lock()
        self.remote_online: dict[int, str] = {}  # user id → server

    # ------------------------------------------------------------------ lifecycle

    def subscribe(self, bus: EventBus) -> None:
        """``call.*`` and ``ticket.created``; from other servers (``remote``) only the IVR
        path of the calls they ran, their tickets and their agents' states arrive."""
        self._bus = bus
        self._unsubscribe.append(bus.subscribe("call.*", self.on_event, remote=True))
        self._unsubscribe.append(bus.subscribe("ticket.created", self.on_ticket_created,
                                               remote=True))
        self._unsubscribe.append(bus.subscribe("agent.state", self.on_agent_state, remote=True))

    def join_cluster(self, server_id: str, store: AgentStateStore) -> None:
        """Share agents' states and presence with the other servers: each change is
        written to ``store`` and then published as ``agent.state`` (forwarded by the
        bus between servers)."""
        self._server_id = server_id
        self._shared = store

    async def on_ticket_created(self, event: DomainEvent) -> None:
        """A ticket about a person is a look at their record: audit it (reason ``ticket``).
        Live pops showing that person or room are rebuilt (a new open repair)."""
        person_id = event.data.get("person_id")
        room_id = event.data.get("room_id")
        for call in list(self.calls.values()):
            if call.pop is not None and (
                    (isinstance(person_id, int) and person_id in person_ids_in(call.pop))
                    or (isinstance(room_id, int)
                        and any(r["room_id"] == room_id for r in call.pop.get("rooms", ())))):
                self._spawn(self._refresh(call, push_only_if_changed=True))
        creator = str(event.data.get("created_by") or "")
        if event.origin:
            return  # the server where it was created audited it
        if self._audit is None or not isinstance(person_id, int):
            return
        found = await self.staff.find((), (), (creator,)) if creator else []
        ref = found[0].ref if found else None
        ident = Identity(user_id=ref.user_id if ref else None, username=creator or "system",
                         role=ref.role if ref else "", via="session")
        self._audit.add(ident, [person_id], reason="ticket",
                        source=f"ticket:{event.data.get('number', '')}"[:64],
                        detail=str(event.data.get("summary", ""))[:200], at=self._clock.now())

    async def close(self) -> None:
        for unsub in self._unsubscribe:
            unsub()
        self._unsubscribe.clear()
        for conns in list(self.connections.values()):
            for conn in list(conns):
                await conn.ws.close(code=1001, message=b"server shutdown")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.staff.close()
        if self._audit is not None:
            await self._audit.close()

    def _spawn(self, coro: Any, *, work: bool = True) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if work:
            self._work.add(task)
            task.add_done_callback(self._work.discard)
        return task

    async def settle(self) -> None:
        """Wait for notifications and wall pushes under way, then write the buffered
        audit rows (tests, shutdown)."""
        while self._work:
            await asyncio.gather(*list(self._work), return_exceptions=True)
        if self._audit is not None:
            await self._audit.flush()

    # ------------------------------------------------------------------ connections

    async def attach(self, ws: web.WebSocketResponse, identity: Identity, *,
                     remote: str = "") -> None:
        """Serve one WebSocket until it closes. ``remote``: the browser's address (audit)."""
        assert identity.user_id is not None
        conn = Connection(ws, identity, outbox_size=self._outbox_size,
                          send_timeout_s=self._send_timeout, remote=remote,
                          scope=await codes_of(self._sm, identity))
        conn.writer = self._spawn(conn.write_loop(), work=False)
        first = not self.connections.get(identity.user_id)
        self.connections.setdefault(identity.user_id, set()).add(conn)
        if identity.role in WALL_ROLES:
            self._wall_viewers += 1
        try:
            state = self.agent_states.setdefault(identity.user_id, AgentState(
                since_mono=self._clock.monotonic(), since_at=self._clock.now()))
            if first:
                self._share(identity.user_id)
            conn.push(_dumps({"type": "hello", "user": {"id": identity.user_id,
                                                        "name": identity.display_name,
                                                        "role": identity.role},
                              "status": self._status_json(state)}))
            for call in list(self.calls.values()):
                if identity.user_id in call.targets and call.state in LIVE_STATES and call.pop:
                    if call.answered_by not in (None, identity.user_id):
                        continue
                    if not self._sees(conn.scope, call):
                        continue
                    if conn.push(self._pop_frame(call, identity)):
                        # Shown again on this tab: another opening of the record.
                        self._audit_pop(call.pop, _ref_of(identity), "ws-reconnect:" + remote)
            if identity.role in WALL_ROLES:
                conn.push(_dumps({"type": "wall", "wall": await self.wall(conn.scope)}))
            self._wall_changed()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_client_message(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._detach(conn)

    def _detach(self, conn: Connection) -> None:
        """Stop sending to this connection (it closed, or its session ended)."""
        if conn.detached:
            return
        conn.detached = True
        assert conn.identity.user_id is not None
        conns = self.connections.get(conn.identity.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.connections[conn.identity.user_id]
                self._share(conn.identity.user_id)
        if conn.identity.role in WALL_ROLES:
            self._wall_viewers -= 1
        if conn.writer is not None:
            conn.writer.cancel()
        self._wall_changed()

    def session_keys(self) -> set[str]:
        """The web sessions behind the open connections."""
        return {c.identity.session_key for cs in self.connections.values() for c in cs
                if c.identity.session_key}

    async def close_sessions(self, keys: set[str]) -> int:
        """Close every connection opened with one of these sessions (logout, expiry, a
        disabled user): nothing more is sent to them. Returns how many closed."""
        doomed = [c for cs in self.connections.values() for c in cs
                  if c.identity.session_key in keys]
        for conn in doomed:
            self._detach(conn)
        for conn in doomed:
            await _close_ended(conn)
        return len(doomed)

    def _expired(self, conn: Connection) -> bool:
        at = conn.identity.expires_at
        return at is not None and at <= self._clock.now()

    async def _on_client_message(self, conn: Connection, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("type") == "ping":
            conn.push(_dumps({"type": "pong", "t": msg.get("t")}))

    def online(self, user_id: int) -> bool:
        return bool(self.connections.get(user_id))

    def _sees(self, scope: Scope, call: LiveCall) -> bool:
        return in_scope(scope, call.community, self._default_community)

    def _send_to_user(self, user_id: int, make: Callable[[Identity], str],
                      call: LiveCall | None = None) -> int:
        sent = 0
        for conn in list(self.connections.get(user_id, ())):
            if call is not None and not self._sees(conn.scope, call):
                continue  # another community's call: not a frame of it
            if self._expired(conn):
                # Its session ran out since the last sweep: not one more frame.
                self._detach(conn)
                self._spawn(_close_ended(conn), work=False)
                continue
            if conn.push(make(conn.identity)):
                sent += 1
            else:
                log.warning("outbox full for %s; closing its connection", conn.identity.username)
                self._spawn(conn.ws.close(code=1013, message=b"too slow"))
        return sent

    def notify_community(self, community: str | None, frame: dict[str, Any],
                         roles: frozenset[str]) -> int:
        """``frame`` to every open console of ``roles`` that sees ``community`` (a list
        that changed, e.g. the callback worklist: the page re-reads it). Frames of this
        kind carry no owner's data."""
        text = json.dumps(frame, ensure_ascii=False)
        sent = 0
        for conns in list(self.connections.values()):
            for conn in list(conns):
                if conn.identity.role not in roles and conn.identity.role != "admin":
                    continue
                if not in_scope(conn.scope, community, self._default_community):
                    continue
                if conn.push(text):
                    sent += 1
        return sent

    # ------------------------------------------------------------------ frames

    def _call_json(self, call: LiveCall, viewer: Identity) -> dict[str, Any]:
        now = self._clock.monotonic()
        end = call.answered_mono if call.answered_mono is not None else now
        return {
            "call_id": call.call_id, "state": call.state,
            "state_label": STATE_LABELS.get(call.state, call.state),
            "queue": call.queue, "community": call.community,
            "started_at": call.started_at.isoformat(),
            "wait_s": round(max(0.0, end - call.started_mono), 1),
            "answered_by_me": call.answered_by is not None and call.answered_by == viewer.user_id,
            "answered_by": call.answered_label,
            "live": call.state in LIVE_STATES,
        }

    def _pop_frame(self, call: LiveCall, viewer: Identity) -> str:
        assert call.pop is not None
        own = viewer.user_id in call.targets
        pop = present_pop(call.pop, viewer.role, own_call=own)
        pop["ivr_path"] = list(call.ivr_path)
        pop["ivr_room_id"] = ivr_room_id(pop, call.ivr_path)
        return _dumps({"type": "pop", "call": self._call_json(call, viewer), "pop": pop})

    def _push_call(self, call: LiveCall, only: set[int] | None = None) -> None:
        if call.pop is None:
            return
        for uid in list(call.targets if only is None else call.targets & only):
            sent = self._send_to_user(uid, lambda ident: self._pop_frame(call, ident), call)
            if sent and self.on_frame_sent is not None:
                self.on_frame_sent(call.call_id, sent)

    # ------------------------------------------------------------------ events

    async def on_event(self, event: DomainEvent) -> None:
        data = event.data
        call_id = call_id_of(data)
        if not call_id:
            return
        kind = event.name.removeprefix("call.")
        if call_id in self._ended_ids and call_id not in self.calls:
            return  # a late event of a call already over: do not bring it back
        if event.origin and kind != "ivr_choice":
            return  # every server hears the calls from AMI itself
        if kind == "ivr_choice" and data.get(REREAD):
            # Too big for the bus: the server that ran the IVR wrote it to the call log.
            self._call(call_id, data)
            self._spawn(self._reread_paths([call_id]))
            return
        if kind == "started":
            call = self._call(call_id, data)
            if self._prefetch and call.caller and call.pop is None and call.pop_future is None:
                self._spawn(self._prefetch_pop(call))
        elif kind == "ivr_choice":
            call = self._call(call_id, data)
            path = data.get("ivr_path")
            if isinstance(path, list) and path:
                call.ivr_path = [str(p) for p in path]
            else:
                call.ivr_path.append(ivr_step_of(data))
            if call.state == "new":
                call.state = "ivr"
            self._push_call(call)
        elif kind == "ringing":
            await self._ringing(self._call(call_id, data), data)
        elif kind == "answered":
            await self._answered(self._call(call_id, data), data)
        elif kind == "transferred":
            await self._transferred(self._call(call_id, data), data)
        elif kind in ("ended", "abandoned"):
            live = self.calls.get(call_id)
            if live is None:
                return
            self._finish(live, "abandoned" if kind == "abandoned" else "ended")
        else:
            return
        self._wall_changed()

    async def load_today(self) -> None:
        """Start today's numbers from the call log, so a restart does not zero them."""
        local = self._clock.now().astimezone(self._tz)
        since = datetime.combine(local.date(), time(0), tzinfo=self._tz)
        async with self._sm() as session:
            by_community = await today_counts(session, since)
        self.stats = {
            code: DailyStats(day=local.date(), offered=int(counts["offered"]),
                             answered=int(counts["answered"]),
                             abandoned=int(counts["abandoned"]),
                             total_wait_s=counts["total_wait_s"])
            for code, counts in by_community.items()}

    def _today(self, call: LiveCall) -> DailyStats:
        """Today's numbers of the call's community."""
        today = self._clock.now().astimezone(self._tz).date()
        key = call.community  # None: the default community's (see ``_today_in``)
        stats = self.stats.get(key)
        if stats is None or stats.day != today:
            stats = self.stats[key] = DailyStats(day=today)
        return stats

    def _today_in(self, scope: Scope) -> DailyStats:
        """Today's numbers of the communities in ``scope`` (None: all of them)."""
        today = self._clock.now().astimezone(self._tz).date()
        out = DailyStats(day=today)
        for code, st in self.stats.items():
            if st.day != today or not in_scope(scope, code, self._default_community):
                continue
            out.offered += st.offered
            out.answered += st.answered
            out.abandoned += st.abandoned
            out.total_wait_s += st.total_wait_s
        return out

    def _call(self, call_id: str, data: dict[str, Any]) -> LiveCall:
        call = self.calls.get(call_id)
        if call is None:
            call = LiveCall(call_id=call_id, caller=caller_of(data),
                            started_mono=self._clock.monotonic(), started_at=self._clock.now(),
                            community=data.get("community"), queue=data.get("queue"))
            self.calls[call_id] = call
            if not data.get("outgoing"):  # a call the server placed was offered to nobody
                self._today(call).offered += 1
        if not call.caller:
            call.caller = caller_of(data)
        if data.get("community") and not call.community:
            call.community = str(data["community"])
        if data.get("queue"):
            call.queue = str(data["queue"])
        path = data.get("ivr_path")
        if isinstance(path, list | tuple) and len(path) > len(call.ivr_path):
            call.ivr_path = [str(p) for p in path]
        return call

    @staticmethod
    def _context(call: LiveCall) -> CallContext:
        return CallContext(call_id=call.call_id, caller=call.caller, community=call.community,
                           queue=call.queue, ivr_path=tuple(call.ivr_path),
                           started_at=call.started_at)

    async def _ensure_pop(self, call: LiveCall) -> dict[str, Any]:
        if call.pop is not None:
            if (call.pop_built_mono is not None and not call.refreshing
                    and self._clock.monotonic() - call.pop_built_mono > self._pop_fresh_s):
                # Built long ago (the caller waited in the IVR or the queue): show it now,
                # rebuild behind it.
                call.refreshing = True
                self._spawn(self._refresh(call, push_only_if_changed=True))
            return call.pop
        if call.pop_future is None:
            future = call.pop_future = asyncio.get_running_loop().create_future()
            try:
                pop = await self._builder.build(self._context(call))
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # mark retrieved
                if call.pop_future is future:
                    call.pop_future = None
                raise
            call.pop = pop
            call.pop_built_mono = self._clock.monotonic()
            future.set_result(pop)
            return pop
        return await asyncio.shield(call.pop_future)

    async def _rebuild_degraded(self, call: LiveCall) -> None:
        """Retry a pop that could not be built, with backoff, while the call lasts."""
        delay = self._degraded_retry_s
        while self.calls.get(call.call_id) is call and call.pop is not None \
                and call.pop.get("degraded"):
            await self._clock.sleep(delay)
            if self.calls.get(call.call_id) is not call:
                return
            if await self._refresh(call, push_only_if_changed=True):
                # The record reaches the screens that showed the number: an opening.
                for uid in sorted(call.targets):
                    entry = await self.staff.get(uid) if self.online(uid) else None
                    if entry is not None and call.pop is not None:
                        addresses = sorted({c.remote for c in self.connections.get(uid, ())
                                            if c.remote})
                        self._audit_pop(call.pop, entry.ref, "ws:" + ",".join(addresses))
                return
            delay = min(delay * 2, 30.0)

    async def _prefetch_pop(self, call: LiveCall) -> None:
        """Build the pop ahead of ringing. On SQLite a build runs on the loop (about
        0.8 ms), so prefetches go one at a time, letting the loop poll its sockets
        between builds: a burst built back to back would hold up every IVR command
        and AMI event behind it. A ring that comes first builds at once."""
        try:
            async with self._prefetch_slot:
                if call.pop is None and call.pop_future is None \
                        and self.calls.get(call.call_id) is call:
                    await self._ensure_pop(call)
                await asyncio.sleep(0)
        except Exception:
            # Ringing builds it again (and reports a failure where it matters).
            log.warning("pop prefetch for call %s failed", call.call_id, exc_info=True)

    async def _deliver(self, call: LiveCall, entries: list[StaffEntry], *,
                       everyone: bool) -> None:
        """Pop the call to these staff; ``everyone``: the state changed, so refresh
        every card that shows it, not only the new ones."""
        try:
            pop = await self._ensure_pop(call)
        except Exception:
            # The phone is ringing now: show what the call itself says, build the
            # record behind it (the card updates when it is ready).
            log.exception("pop for call %s could not be built; showing the number only",
                          call.call_id)
            pop = call.pop = degraded_pop(self._context(call))
            call.pop_built_mono = None
            self._spawn(self._rebuild_degraded(call), work=False)
        theirs = [e for e in entries if self._sees(e.scope, call)]
        if len(theirs) < len(entries):
            log.warning("call %s of community %s rings %s, who work for other communities: "
                        "no pop for them", call.call_id, call.community,
                        [e.ref.username for e in entries if e not in theirs])
        entries = theirs
        new = [e for e in entries if e.ref.user_id not in call.targets]
        call.targets.update(e.ref.user_id for e in entries)
        if everyone:
            self._push_call(call)
        else:
            self._push_call(call, only={e.ref.user_id for e in new})
        for entry in new:
            uid = entry.ref.user_id
            if self.online(uid):
                addresses = sorted({c.remote for c in self.connections.get(uid, ()) if c.remote})
                self._audit_pop(pop, entry.ref, "ws:" + ",".join(addresses))
            elif self.notifiers is not None and uid not in call.notified \
                    and uid not in self.remote_online:  # their console is on another server
                call.notified.add(uid)
                self._spawn(self._notify(call, pop, entry))

    async def _ringing(self, call: LiveCall, data: dict[str, Any]) -> None:
        changed = call.state not in ("answered", "transferred", "ringing")
        if call.state not in ("answered", "transferred"):
            call.state = "ringing"
        extensions, mobiles, names = targets_of(data, "ringing")
        entries = await self.staff.find(extensions, mobiles, names)
        if len(entries) == 1:
            # ``call.answered`` may name the queue member only ("Agent 1001"): remember
            # who each name and number that rang stands for.
            for ident in (*extensions, *mobiles, *names):
                call.rung[ident] = entries[0].ref.user_id
        if not entries:
            log.info("call %s rings %s/%s/%s: no staff user matches", call.call_id,
                     extensions, mobiles, names)
        await self._deliver(call, entries, everyone=changed)

    async def _answered(self, call: LiveCall, data: dict[str, Any]) -> None:
        extensions, mobiles, names = targets_of(data, "answered")
        entries = await self.staff.find(extensions, mobiles, names)
        if not entries:
            for ident in (*names, *extensions, *mobiles):
                if ident in call.rung:
                    entry = await self.staff.get(call.rung[ident])
                    entries = [entry] if entry else []
                    break
        if call.answered_mono is None:
            call.answered_mono = self._clock.monotonic()
            stats = self._today(call)
            stats.answered += 1
            stats.total_wait_s += call.answered_mono - call.started_mono
        call.state = "answered"
        if entries:
            call.answered_by = entries[0].ref.user_id
            call.answered_label = entries[0].ref.display_name
        else:
            call.answered_label = (names or extensions or mobiles or [""])[0]
        if call.pop is None and entries:
            await self._deliver(call, entries, everyone=True)
        else:
            self._push_call(call)

    async def _transferred(self, call: LiveCall, data: dict[str, Any]) -> None:
        extensions, mobiles, names = targets_of(data, "transferred")
        entries = await self.staff.find(extensions, mobiles, names)
        call.state = "transferred"
        if entries:
            call.answered_by = entries[0].ref.user_id
            call.answered_label = entries[0].ref.display_name
        await self._deliver(call, entries, everyone=True)

    def _finish(self, call: LiveCall, state: str) -> None:
        if state == "abandoned" and call.answered_mono is None:
            self._today(call).abandoned += 1
        call.state = state
        self._push_call(call)
        self.calls.pop(call.call_id, None)
        self._ended_ids.add(call.call_id)
        self._ended_order.append(call.call_id)
        while len(self._ended_order) > 5000:
            self._ended_ids.discard(self._ended_order.popleft())
        pop = call.pop or {}
        self.history.appendleft({
            "call_id": call.call_id, "at": call.started_at,
            "caller": (pop.get("caller") or {}).get("e164") or call.caller,
            "title": pop.get("title", ""), "outcome": "answered" if call.answered_mono else state,
            "agent": call.answered_label, "answered_by": call.answered_by,
            "targets": sorted(call.targets), "ivr_path": list(call.ivr_path),
            "community": call.community,
            "wait_s": round((call.answered_mono or self._clock.monotonic()) - call.started_mono, 1),
        })

    def caller_of_call(self, call_id: str) -> tuple[str, str | None] | None:
        """(caller number, community) of a live or recent call, for call-back."""
        call = self.calls.get(call_id)
        if call is not None:
            number = (call.pop or {}).get("caller", {}).get("e164") or call.caller
            return number, call.community
        for item in self.history:
            if item["call_id"] == call_id:
                return item["caller"], item.get("community")
        return None

    def history_for(self, user_id: int | None) -> list[dict[str, Any]]:
        """Recent ended calls that rang this user (all of them for ``None``)."""
        return [h for h in self.history if user_id is None or user_id in h["targets"]]

    async def refresh_pop(self, call_id: str) -> bool:
        """Rebuild a live call's pop (after the directory changed) and push it again."""
        call = self.calls.get(call_id)
        if call is None or call.pop is None:
            return False
        return await self._refresh(call, push_only_if_changed=False)

    async def _refresh(self, call: LiveCall, *, push_only_if_changed: bool) -> bool:
        """Build the pop again; the card keeps the old one until the new one is ready."""
        try:
            pop = await self._builder.build(self._context(call))
        except Exception:
            log.warning("pop refresh for call %s failed; the card keeps the old one",
                        call.call_id, exc_info=True)
            return False
        finally:
            call.refreshing = False
        if self.calls.get(call.call_id) is not call:
            return False  # ended meanwhile
        changed = pop != call.pop
        call.pop = pop
        call.pop_built_mono = self._clock.monotonic()
        if changed or not push_only_if_changed:
            self._push_call(call)
        return True

    # ------------------------------------------------------------------ audit and notify

    def _audit_pop(self, pop: dict[str, Any], who: StaffRef, source: str) -> None:
        if self._audit is None:
            return
        ids = person_ids_in(pop)
        if not ids:
            return
        ident = Identity(user_id=who.user_id, username=who.username, role=who.role,
                         via="session")
        self._audit.add(ident, ids, reason="pop", source=source,
                        detail=f"call {pop.get('call_id', '')}", at=self._clock.now())

    async def _notify(self, call: LiveCall, pop: dict[str, Any], entry: StaffEntry) -> None:
        assert self.notifiers is not None
        notifier = self.notifiers.for_staff(entry.notify)
        if notifier is None:
            return
        message = summary_message(call.call_id, pop)
        result = await notifier.send(message)
        if result.ok:
            self._audit_pop(pop, entry.ref, f"notify:{result.channel}")
        else:
            log.warning("summary for call %s to %s not delivered: %s", call.call_id,
                        entry.ref.username, result.error)

    # ------------------------------------------------------------------ agent state and wall

    def _status_json(self, st: AgentState) -> dict[str, Any]:
        return {"state": st.state, "reason": st.reason,
                "since_s": round(self._clock.monotonic() - st.since_mono, 1)}

    def set_agent_state(self, user_id: int, state: str, reason: str) -> AgentState:
        st = self._apply_state(user_id, AgentState(state=state, reason=reason,
                                                   since_mono=self._clock.monotonic(),
                                                   since_at=self._clock.now()))
        self._share(user_id)
        return st

    def _apply_state(self, user_id: int, st: AgentState) -> AgentState:
        self.agent_states[user_id] = st
        frame = _dumps({"type": "status", "status": self._status_json(st)})
        self._send_to_user(user_id, lambda _ident: frame)
        self._wall_changed()
        return st

    def signed_out(self, user_id: int) -> None:
        """The user is gone (signed out, session over, disabled): no state any more."""
        if self.agent_states.pop(user_id, None) is not None:
            self._wall_changed()
            self._share(user_id)

    # ------------------------------------------------------------------ other servers

    def _share(self, user_id: int) -> None:
        if self._shared is not None:
            self._spawn(self._write_shared(user_id))

    async def _write_shared(self, user_id: int) -> None:
        """Write the agent's state as it is now, then tell the other servers: one that
        missed the event finds it in the table when it re-reads."""
        assert self._shared is not None and self._server_id is not None
        async with self._share_lock:
            st = self.agent_states.get(user_id)
            shared = SharedState(
                user_id, st.state if st else OFFLINE, st.reason if st else "",
                (st.since_at if st and st.since_at else self._clock.now()),
                self.online(user_id), self._server_id)
            try:
                await self._shared.save(shared)
            except Exception:
                log.exception("agent %s: state not written for the other servers", user_id)
            if self._bus is not None:
                self._bus.publish(DomainEvent("agent.state", {
                    "user_id": user_id, "state": shared.state, "reason": shared.reason,
                    "since": shared.since, "online": shared.online}, at=self._clock.now()))

    async def on_agent_state(self, event: DomainEvent) -> None:
        """Another server changed an agent's state or console (ours publish it only)."""
        if not event.origin:
            return
        data = event.data
        user_id = data.get("user_id")
        if not isinstance(user_id, int):
            return
        if data.get(REREAD) or not isinstance(data.get("since"), datetime):
            await self.reread_shared()
            return
        self._take_shared(SharedState(user_id, str(data.get("state") or OFFLINE),
                                      str(data.get("reason") or ""), data["since"],
                                      bool(data.get("online")), event.origin))

    def _take_shared(self, sh: SharedState) -> None:
        if sh.online:
            self.remote_online[sh.user_id] = sh.server
        elif self.remote_online.get(sh.user_id) == sh.server:
            del self.remote_online[sh.user_id]
        if sh.state == OFFLINE:
            if self.agent_states.pop(sh.user_id, None) is not None:
                self._wall_changed()
            return
        current = self.agent_states.get(sh.user_id)
        if current is not None and (current.state, current.reason, current.since_at) == (
                sh.state, sh.reason, sh.since):
            self._wall_changed()  # presence only
            return
        ago = max(0.0, (self._clock.now() - sh.since).total_seconds())
        self._apply_state(sh.user_id, AgentState(state=sh.state, reason=sh.reason,
                                                 since_mono=self._clock.monotonic() - ago,
                                                 since_at=sh.since))

    async def reread_shared(self) -> None:
        """After the bus between servers was down: what the others may have changed
        meanwhile comes from the database, not the bus. Agents' states and presence
        (``agent_states``), the IVR paths of live calls (the call log), and every live
        pop is rebuilt (tickets created meanwhile)."""
        if self._shared is not None:
            for sh in await self._shared.load():
                if sh.server != self._server_id:
                    self._take_shared(sh)
        await self._reread_paths(list(self.calls))
        for call in list(self.calls.values()):
            if call.pop is not None and not call.refreshing:
                call.refreshing = True
                await self._refresh(call, push_only_if_changed=True)

    async def _reread_paths(self, call_ids: list[str]) -> None:
        if not call_ids:
            return
        async with self._sm() as session:
            paths = await session.run_sync(lambda s: ivr_paths(s.connection(), call_ids))
        for call_id, path in paths.items():
            call = self.calls.get(call_id)
            if call is not None and len(path) > len(call.ivr_path):
                call.ivr_path = path
                if call.state == "new":
                    call.state = "ivr"
                self._push_call(call)

    def _wall_changed(self) -> None:
        if not self._wall_viewers:
            return
        if self._wall_task is not None and not self._wall_task.done():
            return
        self._wall_task = self._spawn(self._flush_wall())

    async def _flush_wall(self) -> None:
        if self._wall_debounce > 0:
            await asyncio.sleep(self._wall_debounce)
        else:
            await asyncio.sleep(0)
        frames: dict[Scope, str] = {}  # one wall per scope among the viewers
        for cs in list(self.connections.values()):
            for conn in list(cs):
                if conn.identity.role not in WALL_ROLES:
                    continue
                if self._expired(conn):
                    self._detach(conn)
                    self._spawn(_close_ended(conn), work=False)
                    continue
                if conn.scope not in frames:
                    frames[conn.scope] = _dumps(
                        {"type": "wall", "wall": await self.wall(conn.scope)})
                conn.push(frames[conn.scope])

    async def wall(self, scope: Scope = None) -> dict[str, Any]:
        """The supervisor's live view (full numbers: supervisors may see them) of the
        communities in ``scope`` (codes; None: all): their calls, the agents who work
        for one of them, their numbers today."""
        now = self._clock.monotonic()
        waiting: list[dict[str, Any]] = []
        talking: list[dict[str, Any]] = []
        for call in self.calls.values():
            if not self._sees(scope, call):
                continue
            title = call.pop["title"] if call.pop else show_number(call.caller, True)
            number = (call.pop or {}).get("caller", {}).get("e164") or call.caller
            item = {"call_id": call.call_id, "caller": show_number(number, True) if number
                    else "", "title": title, "queue": call.queue, "state": call.state,
                    "state_label": STATE_LABELS.get(call.state, call.state),
                    "wait_s": round(now - call.started_mono, 1)}
            if call.state in ("answered", "transferred"):
                item["agent"] = call.answered_label
                item["talk_s"] = round(now - (call.answered_mono or now), 1)
                talking.append(item)
            else:
                waiting.append(item)
        waiting.sort(key=lambda i: -i["wait_s"])
        agents = []
        talking_ids = {c.answered_by for c in self.calls.values() if c.state in LIVE_STATES}
        for entry in await self.staff.all():
            ref = entry.ref
            if ref.role not in ("agent", "night_duty", "supervisor"):
                continue
            if scope is not None and (entry.scope is None or not entry.scope & scope):
                continue  # head office's, or another community's
            st = self.agent_states.get(ref.user_id)
            agents.append({
                "user_id": ref.user_id, "name": ref.display_name, "extension": ref.extension,
                "online": self.online(ref.user_id) or ref.user_id in self.remote_online,
                "on_call": ref.user_id in talking_ids,
                **(self._status_json(st) if st else {"state": "offline", "reason": "",
                                                     "since_s": 0}),
            })
        return {"waiting": waiting, "talking": talking, "agents": agents,
                "today": self._today_in(scope).as_json()}


def _ref_of(identity: Identity) -> StaffRef:
    assert identity.user_id is not None
    return StaffRef(identity.user_id, identity.username, identity.display_name or identity.username,
                    identity.role, None, None)


SESSION_ENDED = 4401  # WebSocket close code: the session is over, sign in again


async def _close_ended(conn: Connection) -> None:
    await conn.ws.close(code=SESSION_ENDED, message="会话已结束".encode())


def summary_message(call_id: str, pop: dict[str, Any]) -> Notification:
    """What night duty reads on a phone: caller (masked, group chats are shared),
    room, arrears, open repairs."""
    caller = pop.get("caller", {})
    number = caller.get("e164") or ""
    fields: list[tuple[str, str]] = [("来电", masked_number(number) if number else
                                      (caller.get("display") or "未显示号码"))]
    for room in pop.get("rooms", [])[:3]:
        fields.append(("房号", room["label"]))
        if room.get("in_arrears"):
            fields.append(("欠费", f"{room['arrears']} 元"))
        for t in room.get("open_tickets", [])[:3]:
            fields.append(("未完成报修", f"{t['title']}（{t['state_label']}）"))
    if pop.get("ivr_path"):
        fields.append(("语音导航", " › ".join(pop["ivr_path"])))
    community = (pop.get("community") or {}).get("name")
    title = f"来电：{pop.get('title', '')}" + (f"（{community}）" if community else "")
    # Group chats are shared: a number in a ticket's title is masked like the caller's.
    return Notification(title=mask_text(title), text="",
                        fields=tuple((k, mask_text(v)) for k, v in fields), key=call_id)
