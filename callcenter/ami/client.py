"""One supervised AMI link to one Asterisk: connect, log in, ping, reconnect.

Why not panoramisk 1.4's ``Manager``: each part of it is one of the traps this
module exists to avoid (its reader decodes each TCP read on its own, reconnect
has no backoff, a refused login is silent, pings are never checked, and
unanswered actions are re-sent after a reconnect, so an ``Originate`` can dial
twice). Framing is our pure ``FrameParser``; this module holds the state.

Rules kept here:
- every action has a timeout and a typed result (``ActionResponse``); list
  actions (``EventList: start``) collect their events until ``...Complete``;
- ``Response: Error`` becomes ``AmiActionError``;
- nothing is ever queued or re-sent: an action while the link is down fails at
  once with ``ActionNotSent``, one in flight when the link drops fails with
  ``LinkLost``;
- ``Originate`` is always ``Async: true`` and its outcome is the
  ``OriginateResponse`` event (which may come after the new channel's
  ``AsyncAGIStart``);
- a ``Ping`` every ``ping_interval`` must be answered within one interval, so a
  half-open TCP link is declared dead within two intervals;
- reconnect waits grow exponentially with jitter; a refused login is logged
  (never with the secret) and shown as ``auth_failed``;
- a restarting Asterisk (capture 11) answers every action ``Asterisk is shutting
  down``, and after it accepts logins before ``FullyBooted``: ``available`` is
  true only between ``FullyBooted`` and ``Shutdown``/a refusal, ``originate``
  refuses at once otherwise (``PbxUnavailable``: nothing was dialled), and
  ``pbx_generation`` counts the Asterisk restarts this link has seen.
"""


from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from callcenter.ami.errors import (
    ActionNotSent,
    ActionTimeout,
    AmiActionError,
    LinkLost,
    LoginFailed,
    NotOwner,
    OriginateFailed,
    PbxUnavailable,
)
from callcenter.ami.parser import Frame, encode_frame
from callcenter.ami.protocol import AmiProtocol

log = logging.getLogger(__name__)

SHUTTING_DOWN = "asterisk is shutting down"
RESTART_SKEW_S = 5.0
"""Two ``FullyBooted`` whose boot times (now - Uptime) differ by more are two Asterisks."""

READ_ONLY_ACTIONS = frozenset({
    "login", "logoff", "challenge", "ping", "events", "coresettings", "corestatus",
    "coreshowchannels", "queuestatus", "queuesummary", "mailboxcount", "mailboxstatus",
    "voicemailuserslist", "getvar", "dbget", "status", "listcommands",
})
"""What a standby sends without owning the link: it stays logged in and listening,
re-reads state for its console, and changes nothing in Asterisk on its own (what a
person asks of it is sent with ``on_request``)."""

ActionHeaders = Mapping[str, str] | Sequence[tuple[str, str]]
EventCallback = Callable[[Frame], None]
ConnectedHook = Callable[["AmiLink"], Awaitable[None]]


class LinkConfig(Protocol):
    """What a link needs from settings (``callcenter.settings.AsteriskSettings``)."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def ping_interval(self) -> float: ...
    @property
    def action_timeout(self) -> float: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def reconnect_max_s(self) -> float: ...


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    name: str
    host: str
    port: int
    username: str
    community: str | None = None
    ping_interval: float = 0.0
    state: LinkState = LinkState.DISCONNECTED
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_error: str | None = None
    connects: int = 0
    next_retry_s: float | None = None
    banner: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "community": self.community,
            "ping_interval": self.ping_interval,
            "state": self.state.value,
            "since": self.since.isoformat(),
            "last_error": self.last_error,
            "connects": self.connects,
            "next_retry_s": self.next_retry_s,
            "banner": self.banner,
        }


@dataclass(frozen=True, slots=True)
class ActionResponse:
    """The answer to one action: its response frame, then the events that
    belong to it (list actions; ``OriginateResponse`` for an originate)."""

    action: str
    action_id: str
    response: Frame
    events: tuple[Frame, ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.response.get(key, default)

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.response.headers

    @property
    def message(self) -> str:
        return self.response.get("Message") or ""


@dataclass(slots=True)
class _Pending:
    action: str
    action_id: str
    future: asyncio.Future[ActionResponse]
    response: Frame | None = None
    events: list[Frame] = field(default_factory=list)
    is_list: bool = False
    wait_originate: bool = False


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random.

    Grows as base·2^attempt up to ``cap``; never shorter than half of that."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class AmiLink:
    """One AMI connection to one Asterisk (one ``[[asterisk]]`` settings entry)."""

    def __init__(
        self,
        config: LinkConfig,
        *,
        rng: random.Random | None = None,
        reconnect_base_s: float = 0.5,
        resync_debounce_s: float = 2.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.community: str | None = getattr(config, "community", None)
        self._rng = rng or random.Random()
        self._reconnect_base = reconnect_base_s
        self.resync_debounce_s = resync_debounce_s
        self._now = now or (lambda: datetime.now(UTC))
        self._status = LinkStatus(
            name=config.name, host=config.host, port=config.port,
            username=config.username, community=getattr(config, "community", None),
            ping_interval=config.ping_interval, since=self._now(),
        )
        self._listeners: list[tuple[frozenset[str] | None, EventCallback]] = []
        self._connected_hooks: list[ConnectedHook] = []
        self._status_listeners: list[Callable[[LinkStatus], None]] = []
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"cc-{uuid.uuid4().hex[:8]}"
        self._proto: AmiProtocol | None = None
        self._logged_in = False
        self._runner: asyncio.Task[None] | None = None
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._connected_event = asyncio.Event()
        self._last_resync_at: float | None = None
        self._booted = asyncio.Event()
        self._shutting_down = False
        self._boot_at: float | None = None
        self._owner_gate: Callable[[], bool] | None = None
        self._owner_confirm: Callable[[], Awaitable[bool]] | None = None
        self.refused_not_owner = 0
        """Actions refused with ``NotOwner`` so far (observability, tests)."""
        self.pbx_generation = 0
        """How many Asterisk restarts this link has seen (``Shutdown``, or a new boot time)."""
        self.retry_delays: list[float] = []
        """Every reconnect wait chosen so far (observability and tests)."""

    # ------------------------------------------------------------------ public
    @property
    def status(self) -> LinkStatus:
        return self._status

    @property
    def state(self) -> LinkState:
        return self._status.state

    @property
    def connected(self) -> bool:
        return self._status.state is LinkState.CONNECTED

    @property
    def fully_booted(self) -> bool:
        """``FullyBooted`` seen on this connection (app_queue etc. are loaded)."""
        return self._booted.is_set()

    @property
    def available(self) -> bool:
        """Logged in, fully booted, not shutting down: an Originate can ring."""
        return self.connected and self.fully_booted and not self._shutting_down

    async def wait_booted(self, within_s: float) -> bool:
        """Wait up to ``within_s`` for ``FullyBooted`` on this connection."""
        try:
            async with asyncio.timeout(within_s):
                await self._booted.wait()
        except TimeoutError:
            return False
        return True

    def subscribe(self, callback: EventCallback,
                  events: Iterable[str] | None = None) -> Callable[[], None]:
        """Call ``callback(frame)`` for each event (or only the named ones).

        Callbacks run synchronously on the reader; they must not block. Events
        that answer one of our list actions are not dispatched here."""
        entry = (frozenset(e.lower() for e in events) if events is not None else None, callback)
        self._listeners.append(entry)

        def unsubscribe() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)

        return unsubscribe

    def on_connected(self, hook: ConnectedHook) -> None:
        """Run ``await hook(link)`` after each login and each ``FullyBooted``
        (resync). Failures are logged; the link stays up."""
        self._connected_hooks.append(hook)

    def on_status(self, callback: Callable[[LinkStatus], None]) -> None:
        self._status_listeners.append(callback)

    def set_owner_gate(self, owns: Callable[[], bool] | None,
                       confirm: Callable[[], Awaitable[bool]] | None = None) -> None:
        """``owns()``: whether this server drives the link now (``callcenter.ha``).
        While it is false every action but ``READ_ONLY_ACTIONS`` raises ``NotOwner``
        before anything is written, unless ``await confirm()`` (asked then) says the
        lease is still ours (this process stalled past its deadline and the database
        shows nobody took over). None (the default, one server): always owner."""
        self._owner_gate = owns
        self._owner_confirm = confirm

    @property
    def owner(self) -> bool:
        return self._owner_gate is None or self._owner_gate()

    def resync(self, reason: str) -> None:
        """Run the ``on_connected`` hooks now if logged in (this server just took
        the link over: beat, re-read, adopt the calls waiting in AsyncAGI)."""
        if self._logged_in and self.connected:
            self._last_resync_at = None
            self._request_resync(reason)

    def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._stopping = False
            self._runner = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"ami-link-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        proto = self._proto
        if proto is not None and self.connected:
            try:
                await self.send_action({"Action": "Logoff"}, timeout_s=1.0)
            except Exception:
                pass
        if proto is not None:
            proto.close("stopped")
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
            self._runner = None
        await self._cancel_conn_tasks()
        self._fail_pending(ActionNotSent, "link stopped")
        self._set_state(LinkState.STOPPED, self._status.last_error)

    async def wait_connected(self, within_s: float) -> None:
        async with asyncio.timeout(within_s):
            await self._connected_event.wait()

    def next_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    async def send_action(self, action: ActionHeaders, *, timeout_s: float | None = None,
                          on_request: bool = False) -> ActionResponse:
        """Send one action and wait for its typed answer.

        ``on_request``: sent for a person's request to this server (an agent's queue
        state, a click-to-call), so a standby sends it too: only one server received
        the request, so the action goes out once. Without it a standby refuses every
        action but ``READ_ONLY_ACTIONS`` (``NotOwner``).

        Raises ``ActionNotSent`` (link down: nothing left this process),
        ``LinkLost`` (sent, link dropped, outcome unknown), ``ActionTimeout``,
        ``AmiActionError`` (``Response: Error``)."""
        headers = list(action.items()) if isinstance(action, Mapping) else list(action)
        name = next((v for k, v in headers if k.lower() == "action"), "")
        if not name:
            raise ValueError("an AMI action needs an Action header")
        if name.lower() == "originate":
            raise ValueError("use AmiLink.originate() for Originate (Async + OriginateResponse)")
        return await self._send(headers, timeout_s=timeout_s, on_request=on_request)

    async def originate(
        self,
        *,
        channel: str,
        context: str | None = None,
        exten: str | None = None,
        priority: int | str = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        dial_timeout_s: float = 30.0,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        account: str | None = None,
        timeout_s: float | None = None,
        on_request: bool = False,
    ) -> ActionResponse:
        """Originate, always ``Async: true``; return when ``OriginateResponse``
        says Success (its frame is ``events[0]``), raise ``OriginateFailed``
        otherwise. ``timeout_s`` covers the whole wait (default: dial timeout +
        the action timeout). Never re-sent: see ``LinkLost``."""
        headers: list[tuple[str, str]] = [("Action", "Originate"), ("Channel", channel)]
        if application:
            headers.append(("Application", application))
            if data is not None:
                headers.append(("Data", data))
        else:
            if not (context and exten):
                raise ValueError("originate needs context+exten or application")
            headers += [("Context", context), ("Exten", exten), ("Priority", str(priority))]
        if caller_id:
            headers.append(("CallerID", caller_id))
        if channel_id:
            headers.append(("ChannelId", channel_id))
        if other_channel_id:
            headers.append(("OtherChannelId", other_channel_id))
        if account:
            headers.append(("Account", account))
        headers.append(("Timeout", str(int(dial_timeout_s * 1000))))
        for key, value in (variables or {}).items():
            headers.append(("Variable", f"{key}={value}"))
        headers.append(("Async", "true"))
        if self.connected and not self.available:
            why = "shutting down" if self._shutting_down else "not fully booted"
            raise PbxUnavailable(f"AMI Originate not sent: {self.name} is {why}", action="Originate",
                                 response_message=why, details={"asterisk": self.name})
        total = timeout_s if timeout_s is not None else dial_timeout_s + self.config.action_timeout
        return await self._send(headers, timeout_s=total, originate=True,
                                on_request=on_request)

    async def agi(self, channel: str, command: str, command_id: str, *,
                  timeout_s: float | None = None) -> ActionResponse:
        """Queue one AsyncAGI command (the result comes later in ``AsyncAGIExec``)."""
        return await self._send(
            [("Action", "AGI"), ("Channel", channel), ("Command", command),
             ("CommandID", command_id)], timeout_s=timeout_s)

    # ---------------------------------------------------------------- internals
    def _set_state(self, state: LinkState, error: str | None = None, **kw: Any) -> None:
        st = self._status
        if st.state is not state:
            st = replace(st, state=state, since=self._now())
        st = replace(st, last_error=error if error is not None else st.last_error, **kw)
        self._status = st
        if state is LinkState.CONNECTED:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        for cb in list(self._status_listeners):
            try:
                cb(st)
            except Exception:
                log.exception("%s: status listener failed", self.name)

    async def _send(self, headers: list[tuple[str, str]], *, timeout_s: float | None,
                    originate: bool = False, login: bool = False,
                    on_request: bool = False) -> ActionResponse:
        name = next(v for k, v in headers if k.lower() == "action")
        if not (login or on_request) and name.lower() not in READ_ONLY_ACTIONS \
                and not self.owner and not (self._owner_confirm is not None
                                            and await self._owner_confirm()):
            self.refused_not_owner += 1
            raise NotOwner(f"AMI {name} not sent: this server does not own {self.name} now",
                           details={"asterisk": self.name, "action": name})
        proto = self._proto
        if proto is None or proto.closed.done() or not (self._logged_in or login):
            raise ActionNotSent(
                f"AMI link {self.name} is {self._status.state.value}: {name} not sent",
                details={"asterisk": self.name, "action": name, "state": self._status.state.value})
        action_id = next((v for k, v in headers if k.lower() == "actionid"), None)
        if action_id is None:
            action_id = self.next_action_id()
            headers = [headers[0], ("ActionID", action_id), *headers[1:]]
        fut: asyncio.Future[ActionResponse] = asyncio.get_running_loop().create_future()
        pending = _Pending(name, action_id, fut, wait_originate=originate)
        self._pending[action_id] = pending
        try:
            proto.write(encode_frame(headers))
        except ConnectionError as exc:
            self._pending.pop(action_id, None)
            raise ActionNotSent(f"AMI link {self.name}: {name} not sent ({exc})",
                                details={"asterisk": self.name, "action": name}) from None
        log.debug("%s: sent %s %s", self.name, name, action_id)
        wait = timeout_s if timeout_s is not None else self.config.action_timeout
        try:
            async with asyncio.timeout(wait):
                return await asyncio.shield(fut)
        except TimeoutError:
            raise ActionTimeout(
                f"AMI {name} got no complete answer from {self.name} within {wait:g}s",
                details={"asterisk": self.name, "action": name, "action_id": action_id,
                         "timeout_s": wait, "answered": pending.response is not None}) from None
        finally:
            self._pending.pop(action_id, None)
            if not fut.done():
                fut.cancel()

    def _on_frame(self, frame: Frame) -> None:
        action_id = frame.action_id
        pending = self._pending.get(action_id) if action_id else None
        if (pending is not None and not pending.future.done()
                and self._route_to_pending(pending, frame)):
            return
        if frame.kind == "event":
            self._dispatch(frame)
        elif action_id:
            log.debug("%s: response for unknown action %s dropped", self.name, action_id)

    def _route_to_pending(self, p: _Pending, frame: Frame) -> bool:
        """Feed a frame to its action; return True if it was consumed."""
        if frame.kind == "response" and p.response is None:
            status = (frame.get("Response") or "").lower()
            if status in ("error", "failure", "fail"):
                msg = frame.get("Message") or ""
                if msg.strip().lower() == SHUTTING_DOWN:
                    self._shutting_down = True
                    p.future.set_exception(PbxUnavailable(
                        f"AMI {p.action} refused by {self.name}: {msg}", action=p.action,
                        response_message=msg, details={"asterisk": self.name}))
                    return True
                p.future.set_exception(AmiActionError(
                    f"AMI {p.action} refused by {self.name}: {msg}", action=p.action,
                    response_message=msg, details={"asterisk": self.name}))
                return True
            p.response = frame
            eventlist = (frame.get("EventList") or "").lower()
            message = (frame.get("Message") or "").lower()
            p.is_list = eventlist == "start" or message.endswith("will follow")
            if not p.is_list and not p.wait_originate:
                p.future.set_result(ActionResponse(p.action, p.action_id, frame))
            return True
        if frame.kind != "event" or p.response is None:
            return False
        event = (frame.event or "").lower()
        if p.wait_originate and event == "originateresponse":
            if (frame.get("Response") or "").lower() == "success":
                p.future.set_result(ActionResponse(p.action, p.action_id, p.response, (frame,)))
            else:
                reason = frame.get("Reason") or ""
                p.future.set_exception(OriginateFailed(
                    f"originate on {self.name} failed (reason {reason})", action=p.action,
                    response_message=frame.get("Response") or "",
                    details={"asterisk": self.name, "reason": reason,
                             "channel": frame.get("Channel")}))
            # Also let listeners see it (the tracker may care).
            self._dispatch(frame)
            return True
        if p.is_list:
            if (frame.get("EventList") or "").lower() == "complete" or event.endswith("complete"):
                p.future.set_result(
                    ActionResponse(p.action, p.action_id, p.response, tuple(p.events)))
            else:
                p.events.append(frame)
            return True
        return False

    def _dispatch(self, frame: Frame) -> None:
        event = (frame.event or "").lower()
        if event == "fullybooted":
            self._on_booted(frame)
            if self._logged_in:
                self._request_resync("FullyBooted")
        elif event == "shutdown":
            log.warning("%s: Asterisk is shutting down (%s)", self.name,
                        frame.get("Shutdown") or "")
            self._shutting_down = True
            self._boot_at = None
            self.pbx_generation += 1
        for names, cb in list(self._listeners):
            if names is None or event in names:
                try:
                    cb(frame)
                except Exception:
                    log.exception("%s: event listener failed on %s", self.name, frame.event)

    def _on_booted(self, frame: Frame) -> None:
        self._booted.set()
        try:
            boot_at = time.monotonic() - float(frame.get("Uptime") or "")
        except ValueError:
            return
        if self._boot_at is not None and abs(boot_at - self._boot_at) > RESTART_SKEW_S:
            self.pbx_generation += 1  # restarted without a Shutdown we saw (a crash)
        self._boot_at = boot_at

    def _fail_pending(self, error: type[ActionNotSent] | type[LinkLost], reason: str) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(error(
                    f"AMI {p.action} on {self.name}: {reason}; not re-sent",
                    details={"asterisk": self.name, "action": p.action,
                             "action_id": p.action_id}))
                p.future.exception()  # retrieved even if the waiter is gone

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"ami-{self.name}-{name}")
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_tasks.discard)
        return task

    async def _cancel_conn_tasks(self) -> None:
        tasks = [t for t in self._conn_tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _request_resync(self, reason: str) -> None:
        nowm = time.monotonic()
        if (reason == "FullyBooted" and self._last_resync_at is not None
                and nowm - self._last_resync_at < self.resync_debounce_s):
            return
        self._last_resync_at = nowm
        for hook in list(self._connected_hooks):
            self._spawn(self._run_hook(hook, reason), f"resync-{reason}")

    async def _run_hook(self, hook: ConnectedHook, reason: str) -> None:
        try:
            await hook(self)
        except Exception as exc:
            log.warning("%s: resync after %s failed: %s", self.name, reason, exc)

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            if self._status.state is not LinkState.AUTH_FAILED:
                self._set_state(LinkState.CONNECTING, next_retry_s=None)
            try:
                await self._connect_once()
                attempt = 0
                reason = "link closed"
            except LoginFailed as exc:
                reason = str(exc)
                self._set_state(LinkState.AUTH_FAILED, reason)
            except (OSError, TimeoutError, ConnectionError, LinkLost, ActionTimeout,
                    ActionNotSent, AmiActionError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("%s: AMI connection to %s:%s failed: %s", self.name,
                            self.config.host, self.config.port, reason)
                self._set_state(LinkState.DISCONNECTED, reason)
            finally:
                await self._teardown()
            if self._stopping:
                break
            if self._status.state is LinkState.CONNECTED:
                self._set_state(LinkState.DISCONNECTED, reason)
            delay = backoff_delay(attempt, base=self._reconnect_base,
                                  cap=self.config.reconnect_max_s, rng=self._rng)
            attempt += 1
            self.retry_delays.append(delay)
            self._set_state(self._status.state, next_retry_s=round(delay, 3))
            log.info("%s: reconnecting to AMI in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    async def _teardown(self) -> None:
        self._logged_in = False
        proto, self._proto = self._proto, None
        if proto is not None:
            proto.close("teardown")
        self._fail_pending(LinkLost, "link lost before the answer")
        await self._cancel_conn_tasks()

    async def _connect_once(self) -> None:
        """Connect, log in, then run until the link dies. Returns when it dies
        after a successful login; raises when connecting or logging in fails."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._booted.clear()
        self._shutting_down = False
        async with asyncio.timeout(cfg.connect_timeout):
            _, proto = await loop.create_connection(
                lambda: AmiProtocol(self._on_frame, name=self.name), cfg.host, cfg.port)
            self._proto = proto
            banner = await proto.banner
        secret = cfg.secret.reveal() if hasattr(cfg.secret, "reveal") else str(cfg.secret)
        try:
            await self._send([("Action", "Login"), ("Username", cfg.username),
                              ("Secret", secret), ("Events", "on")],
                             timeout_s=cfg.action_timeout, login=True)
        except AmiActionError as exc:
            msg = (f"AMI login refused for user {cfg.username!r} at {cfg.host}:{cfg.port}: "
                   f"{exc.response_message or 'no reason given'}")
            log.error("%s: %s", self.name, msg)
            raise LoginFailed(msg, details={"asterisk": self.name, "username": cfg.username}) from None
        self._logged_in = True
        self._set_state(LinkState.CONNECTED, None, connects=self._status.connects + 1,
                        banner=banner, next_retry_s=None)
        self._status = replace(self._status, last_error=None)
        log.info("%s: AMI connected to %s:%s (%s)", self.name, cfg.host, cfg.port, banner)
        self._last_resync_at = None
        self._request_resync("connect")
        pinger = self._spawn(self._ping_loop(proto), "ping")
        reason = await proto.closed
        pinger.cancel()
        if not self._stopping:
            log.warning("%s: AMI link lost: %s", self.name, reason)
            self._set_state(LinkState.DISCONNECTED, reason)

    async def _ping_loop(self, proto: AmiProtocol) -> None:
        interval = self.config.ping_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self._send([("Action", "Ping")], timeout_s=interval)
            except ActionTimeout:
                reason = f"no answer to Ping within {interval:g}s (half-open link?)"
                log.warning("%s: %s; reconnecting", self.name, reason)
                self._set_state(LinkState.DISCONNECTED, reason)
                proto.close(reason, abort=True)
                return
            except (ActionNotSent, LinkLost):
                return
            except AmiActionError as exc:
                # An answer is an answer: the link is alive.
                log.debug("%s: Ping answered with error %s", self.name, exc)
