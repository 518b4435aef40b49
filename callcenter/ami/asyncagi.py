"""AsyncAGI over the AMI link: the IVR drives a call with ``AGI`` actions.

``AGI(agi:async)`` in the dialplan makes Asterisk announce the channel with
``AsyncAGIStart`` (its ``agi_*`` environment URL-encoded in ``Env``). Each
command is an ``AGI`` action with our ``CommandID``; Asterisk answers the
action at once (``Added AGI command to queue``) and reports the result later
in ``AsyncAGIExec`` with ``CommandId`` (its spelling) and a URL-encoded
``Result``. panoramisk 1.4's ``send_agi_command`` waits for a ``SubEvent``
header that Asterisk 20 never sends, so it never resolves; here the matching
``AsyncAGIExec`` completes the command, with a timeout.

A channel that entered ``AGI(agi:async)`` while no server was logged in (or
whose server died) waits there forever and its ``AsyncAGIStart`` is gone.
``AsyncAgiDispatcher.adopt`` takes such channels from a ``CoreShowChannels``
answer (``Application: AGI``, ``ApplicationData: agi:async``), rebuilds their
environment (caller id, context, extension, uniqueid, linkedid, and the DID
from ``CC_DID`` by ``GET VARIABLE``) and runs the handler for them from the top.
A server that stops hands its hotline calls over the same way: ``close(handoff_s=)``
leaves them in AsyncAGI with ``TIMEOUT(absolute)`` re-armed instead of sending
``ASYNCAGI BREAK`` (after which the printed hotline would hang up).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol
from urllib.parse import unquote

from callcenter.ami.client import ActionResponse, LinkState, LinkStatus
from callcenter.ami.errors import ActionNotSent, AmiActionError, AmiError, LinkLost, NotOwner
from callcenter.ami.parser import Frame
from callcenter.logs import bind_call
from ivr.agi import AgiChannel, AgiResult, parse_agi_result, parse_asyncagi_env
from ivr.errors import AgiCommandError, CallerHungUp

log = logging.getLogger(__name__)

ASYNCAGI_EVENTS = ("AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", "Hangup")


class AsyncAgiTimeout(AgiCommandError):
    """No ``AsyncAGIExec`` for a command within its timeout."""

    error_id = "asyncagi_timeout"


class AgiLink(Protocol):
    """What AsyncAGI needs from the AMI link (``AmiLink``)."""

    name: str

    async def agi(self, channel: str, command: str, command_id: str, *,
                  timeout_s: float | None = None) -> ActionResponse: ...

    def subscribe(self, callback: Callable[[Frame], None],
                  events: list[str] | tuple[str, ...] | None = None) -> Callable[[], None]: ...

    def on_status(self, callback: Callable[[LinkStatus], None]) -> None: ...


class AsyncAgiChannel(AgiChannel):
    """One call in ``AGI(agi:async)``. Only ``send_command`` is transport."""

    def __init__(self, link: AgiLink, channel: str, env: dict[str, str], *,
                 linkedid: str = "", command_timeout_s: float = 60.0) -> None:
        self.link = link
        self.link_community = getattr(link, "community", None)
        self.channel = channel
        self.env = env
        self.linkedid = linkedid or env.get("agi_uniqueid", "")
        self.command_timeout_s = command_timeout_s
        self.break_timeout_s = 5.0
        self._ids = itertools.count(1)
        self._prefix = f"cmd-{uuid.uuid4().hex[:8]}"
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self.hung_up = False
        self.ended = False
        self._closed = False
        self.commands_sent: list[str] = []
        self.abandoned = False
        """The server lost the link's lease: nothing more is sent for this call."""
        self.handoff_s: float | None = None
        """Set when the server stops: ``close`` leaves the call in ``AGI(agi:async)`` for
        the next server to adopt, re-arming ``TIMEOUT(absolute)`` to this many seconds
        (the printed hotline's exten ``T`` is the fallback if none comes)."""

    @property
    def active(self) -> bool:
        return not (self.hung_up or self.ended)

    async def send_command(self, command: str) -> AgiResult:
        if not self.active:
            raise CallerHungUp(f"{self.channel} is no longer in AsyncAGI")
        command_id = f"{self._prefix}/{next(self._ids)}"
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = fut
        self.commands_sent.append(command)
        try:
            try:
                await self.link.agi(self.channel, command, command_id)
            except AmiActionError as exc:
                # "Channel does not exist" / "Failed to add AGI command to queue":
                # the channel left AGI (hung up) between our commands.
                self.hung_up = True
                raise CallerHungUp(f"{self.channel}: {exc.response_message}") from None
            try:
                async with asyncio.timeout(self.command_timeout_s):
                    line = await fut
            except TimeoutError:
                raise AsyncAgiTimeout(
                    f"no AsyncAGIExec for {command.split(' ', 1)[0]} on {self.channel} "
                    f"within {self.command_timeout_s:g}s", reply="") from None
        finally:
            self._waiting.pop(command_id, None)
            if fut.done() and not fut.cancelled():
                # the call left AGI while the action was still out: the error raised is
                # the action's; this one is known (not "never retrieved" in the log)
                fut.exception()
        return parse_agi_result(line)

    # fed by the dispatcher --------------------------------------------------
    def on_exec(self, command_id: str, result: str) -> None:
        fut = self._waiting.get(command_id)
        if fut is None or fut.done():
            log.debug("%s: AsyncAGIExec for unknown command %s", self.channel, command_id)
            return
        fut.set_result(unquote(result).strip())

    def on_end(self, *, hangup: bool) -> None:
        if hangup:
            self.hung_up = True
        self.ended = True
        self._fail_waiting(CallerHungUp(f"{self.channel} left AsyncAGI"))

    def on_link_lost(self) -> None:
        self._fail_waiting(LinkLost(f"AMI link lost while {self.channel} waited for a result"))

    def _fail_waiting(self, exc: Exception) -> None:
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(exc)

    async def close(self) -> None:
        """Hand the channel back to the dialplan (``ASYNCAGI BREAK``) if it is
        still in AsyncAGI. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self.active or self.abandoned:
            return
        saved, self.command_timeout_s = self.command_timeout_s, min(self.command_timeout_s,
                                                                    self.break_timeout_s)
        handoff = self.handoff_s
        try:
            if handoff is not None:
                # queued behind a running command if there is one: fire and forget
                await self.link.agi(self.channel, f"SET VARIABLE TIMEOUT(absolute) {handoff:g}",
                                    f"{self._prefix}/handoff")
                log.info("%s: left in AsyncAGI for the next server (fallback in %gs)",
                         self.channel, handoff)
                return
            await self.send_command("ASYNCAGI BREAK")
        except (CallerHungUp, AgiCommandError, AmiError) as exc:
            log.debug("%s: ASYNCAGI BREAK not delivered: %s", self.channel, exc)
        finally:
            self.command_timeout_s = saved
        self.ended = True


SessionHandler = Callable[[AsyncAgiChannel], Awaitable[None]]


def adopted_env(frame: Frame) -> dict[str, str]:
    """The ``agi_*`` environment of a channel known only from ``CoreShowChannel``
    (its ``AsyncAGIStart`` went to nobody). ``agi_adopted`` marks it."""
    name = frame.get("Channel") or ""

    def field(key: str) -> str:
        value = frame.get(key) or ""
        return "unknown" if value in ("", "<unknown>") else value

    return {
        "agi_request": "async",
        "agi_channel": name,
        "agi_type": name.partition("/")[0],
        "agi_uniqueid": frame.get("Uniqueid") or "",
        "agi_callerid": field("CallerIDNum"),
        "agi_calleridname": field("CallerIDName"),
        "agi_language": frame.get("Language") or "",
        "agi_context": frame.get("Context") or "",
        "agi_extension": frame.get("Exten") or "",
        "agi_priority": frame.get("Priority") or "",
        "agi_accountcode": frame.get("AccountCode") or "",
        "agi_dnid": "unknown",
        "agi_adopted": "1",
    }


class AsyncAgiDispatcher:
    """Starts ``handler(channel)`` for each ``AsyncAGIStart`` on one link and
    routes ``AsyncAGIExec``/``AsyncAGIEnd``/``Hangup`` to its channel."""

    def __init__(self, link: AgiLink, handler: SessionHandler, *,
                 command_timeout_s: float = 60.0) -> None:
        self.link = link
        self.handler = handler
        self.command_timeout_s = command_timeout_s
        self.sessions: dict[str, AsyncAgiChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        # sessions that ended lately: CoreShowChannels may still show them in AGI
        # for a moment after our ASYNCAGI BREAK; they are not adopted again
        self._finished: deque[str] = deque(maxlen=1000)
        self.adopted: list[str] = []
        """Uniqueids of the channels adopted so far (observability, tests)."""
        self.ignored_not_owner = 0
        """``AsyncAGIStart`` left to the server owning the link (``callcenter.ha``)."""

    def attach(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.link.subscribe(self.on_event, ASYNCAGI_EVENTS)
            self.link.on_status(self._on_status)

    def _on_status(self, status: LinkStatus) -> None:
        if status.state is not LinkState.CONNECTED:
            for chan in self.sessions.values():
                chan.on_link_lost()

    def on_event(self, frame: Frame) -> None:
        event = frame.event
        uniqueid = frame.get("Uniqueid") or ""
        if event == "AsyncAGIStart":
            if getattr(self.link, "owner", True):
                self._start(frame, uniqueid)
            else:
                self.ignored_not_owner += 1  # the owning server takes it
            return
        chan = self.sessions.get(uniqueid)
        if chan is None:
            return
        if event == "AsyncAGIExec":
            chan.on_exec(frame.get("CommandId") or frame.get("CommandID") or "",
                         frame.get("Result") or "")
        elif event == "AsyncAGIEnd":
            chan.on_end(hangup=False)
        elif event == "Hangup":
            chan.on_end(hangup=True)

    def _start(self, frame: Frame, uniqueid: str) -> None:
        channel = frame.get("Channel")
        if not channel or not uniqueid:
            log.warning("%s: AsyncAGIStart without Channel/Uniqueid skipped", self.link.name)
            return
        env = parse_asyncagi_env(frame.get("Env") or "")
        env.setdefault("agi_uniqueid", uniqueid)
        env.setdefault("agi_channel", channel)
        self._launch(uniqueid, channel, env, frame.get("Linkedid") or "", adopted=False)

    def _launch(self, uniqueid: str, channel: str, env: dict[str, str], linkedid: str, *,
                adopted: bool) -> None:
        chan = AsyncAgiChannel(self.link, channel, env, linkedid=linkedid,
                               command_timeout_s=self.command_timeout_s)
        self.sessions[uniqueid] = chan
        task = asyncio.get_running_loop().create_task(
            self._run(uniqueid, chan, adopted=adopted), name=f"asyncagi-{uniqueid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def adopt(self, channels: Iterable[Frame]) -> list[str]:
        """Start a session for each channel of a ``CoreShowChannels`` answer that
        waits in ``AGI(agi:async)`` and that this dispatcher is not driving.
        Returns their uniqueids."""
        started: list[str] = []
        for frame in channels:
            uniqueid = frame.get("Uniqueid") or ""
            name = frame.get("Channel") or ""
            if (frame.get("Application") or "").upper() != "AGI" \
                    or not (frame.get("ApplicationData") or "").startswith("agi:async") \
                    or not uniqueid or not name or uniqueid in self.sessions \
                    or uniqueid in self._finished:
                continue
            env = adopted_env(frame)
            with bind_call(pbx=self.link.name, uniqueid=uniqueid, linkedid=frame.get("Linkedid")):
                log.warning("%s: adopting %s, waiting in AsyncAGI with no server",
                            self.link.name, name)
            self._launch(uniqueid, name, env, frame.get("Linkedid") or "", adopted=True)
            self.adopted.append(uniqueid)
            started.append(uniqueid)
        return started

    async def _run(self, uniqueid: str, chan: AsyncAgiChannel, *, adopted: bool = False) -> None:
        # Every log line of this session names the call.
        with bind_call(pbx=self.link.name, uniqueid=uniqueid, linkedid=chan.linkedid):
            if adopted:
                try:
                    did = await chan.get_variable("CC_DID")
                except Exception as exc:  # the session below meets the same fault and ends it
                    log.info("%s: CC_DID of adopted call not read: %s", chan.channel, exc)
                    did = None
                if did:
                    chan.env["agi_dnid"] = did
            await self._session(uniqueid, chan)

    async def _session(self, uniqueid: str, chan: AsyncAgiChannel) -> None:
        try:
            await self.handler(chan)
        except CallerHungUp:
            log.info("%s: caller hung up during AsyncAGI session", chan.channel)
        except (ActionNotSent, LinkLost, NotOwner) as exc:
            log.warning("%s: AsyncAGI session ended by the AMI link: %s", chan.channel, exc)
        except Exception:
            log.exception("%s: AsyncAGI session handler failed", chan.channel)
        finally:
            try:
                await chan.close()
            finally:
                self.sessions.pop(uniqueid, None)
                self._finished.append(uniqueid)

    async def abandon(self) -> int:
        """The link's lease is lost: stop every session at once without a word to
        Asterisk (the link refuses them anyway, ``NotOwner``); the channels stay in
        ``AGI(agi:async)`` for the new owner to adopt. Returns how many."""
        tasks = list(self._tasks)
        uids = list(self.sessions)
        for chan in self.sessions.values():
            chan.abandoned = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # not "finished": the new owner drives them, and should this server own the
        # link again while they still wait, it adopts them back
        for uid in uids:
            while uid in self._finished:
                self._finished.remove(uid)
        return len(tasks)

    async def close(self, *, handoff_s: float | None = None,
                    handoff: Callable[[AsyncAgiChannel], bool] = lambda chan: False) -> None:
        """Cancel running sessions (each hands its channel back with
        ``ASYNCAGI BREAK`` if still up), then stop listening. Sessions for which
        ``handoff(chan)`` holds are left in AsyncAGI instead, with ``TIMEOUT(absolute)``
        set to ``handoff_s``: a server restarted within it adopts them, else the
        dialplan's fallback takes them (a caller in the menu is never hung up by a
        server that stops)."""
        if handoff_s is not None:
            for chan in self.sessions.values():
                if handoff(chan):
                    chan.handoff_s = handoff_s
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
