"""The AMI side of the stand-in: a TCP server speaking Asterisk 20's manager protocol."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from callcenter.ami.event_classes import event_class, parse_classes
from callcenter.ami.parser import Frame, FrameParser, encode_frame
from callcenter.simulator import astdb
from callcenter.simulator import events as ev
from callcenter.simulator.pbx import QueueMember
from callcenter.simulator.timing import standin_task

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Pbx

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
Fields = ev.Fields


def _class_of(fields: Fields) -> str | None:
    head = dict(fields[:2])
    return event_class(head.get("Event", ""), head.get("Privilege"))


class AmiSession:
    def __init__(self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(expect_banner=False)
        self.authenticated = False
        #: the login user's ``read=`` classes and the session's ``Events:`` (None: every class)
        self.read: frozenset[str] | None = None
        self.send_events: frozenset[str] | None = None
        self.challenge: str | None = None
        self.closed = False
        self.session_id = f"0x{id(self):x}"
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                # small writes leave as they are written (the tiny-segment option relies on it)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---------------------------------------------------------------- output
    def send(self, fields: Fields) -> None:
        if not self.closed:
            self._out.put_nowait(encode_frame(fields))

    def send_raw(self, data: bytes) -> None:
        if not self.closed:
            self._out.put_nowait(data)

    @property
    def events_on(self) -> bool:
        return self.send_events is None or bool(self.send_events)

    def deliver_event(self, fields: Fields, cls: str | None = None) -> None:
        """An event goes out only if its class (``cls``, else looked up) is in both the
        user's ``read=`` and the session's ``Events:`` (main/manager.c ``process_events``;
        capture 12)."""
        if not self.authenticated:
            return
        if cls is None:
            cls = _class_of(fields)
        for allowed in (self.read, self.send_events):
            if allowed is not None and cls not in allowed:
                return
        self.send(fields)

    async def _write_loop(self) -> None:
        while True:
            data = await self._out.get()
            if data is None:
                break
            seg = self.server.segment_size
            try:
                if seg:
                    for i in range(0, len(data), seg):
                        self.writer.write(data[i:i + seg])
                        await self.writer.drain()
                        await asyncio.sleep(0)
                else:
                    self.writer.write(data)
                    await self.writer.drain()
            except (ConnectionError, RuntimeError):
                break
        self.closed = True
        self.writer.close()

    async def close(self) -> None:
        if self._out is not None and not self.closed:
            self._out.put_nowait(None)
        self.closed = True
        if self._writer_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer_task), 1.0)
            except (TimeoutError, asyncio.CancelledError):
                self._writer_task.cancel()
        self.writer.close()

    def abort(self) -> None:
        self.closed = True
        transport = self.writer.transport
        transport.abort()
        if self._writer_task is not None:
            self._writer_task.cancel()

    # ----------------------------------------------------------------- input
    async def serve(self) -> None:
        self._writer_task = standin_task(self._write_loop())
        self.writer.write(BANNER)
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for frame in self.parser.feed(data):
                    if isinstance(frame, Frame) and not self.closed:
                        await self.handle(frame)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed = True
            self._out.put_nowait(None)
            if self._writer_task is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(self._writer_task, 1.0)
            self.writer.close()

    async def handle(self, frame: Frame) -> None:
        action = (frame.get("Action") or "").strip()
        aid = frame.get("ActionID")
        if self.server.frozen and (self.server.frozen_login or action.lower() not in ("login", "challenge")):
            return
        if not action:
            self.respond_error(aid, "Missing action in request")
            return
        name = action.lower()
        if not self.authenticated and name not in ("login", "challenge", "logoff"):
            self.respond_error(aid, "Permission denied")
            return
        if self.server.lifecycle.gate(self, action, aid):  # a restart in progress (astdb.Lifecycle)
            return
        handler: Callable[[Frame, str | None], object] | None = getattr(
            self, f"act_{re.sub(r'[^a-z]', '', name)}", None)
        if handler is None:
            self.respond_error(aid, "Invalid/unknown command")
            return
        result = handler(frame, aid)
        if asyncio.iscoroutine(result):
            await result

    def respond(self, aid: str | None, *fields: tuple[str, str], response: str = "Success") -> None:
        out: Fields = [("Response", response)]
        if aid is not None:
            out.append(("ActionID", aid))
        out.extend(fields)
        self.send(out)

    def respond_error(self, aid: str | None, message: str) -> None:
        self.respond(aid, ("Message", message), response="Error")

    def list_items(self, aid: str | None, items: list[Fields], complete: str, message: str) -> None:
        self.respond(aid, ("EventList", "start"), ("Message", message))
        for item in items:
            self.send(item)
        tail: Fields = [("Event", complete)]
        if aid is not None:
            tail.append(("ActionID", aid))
        tail += [("EventList", "Complete"), ("ListItems", str(len(items)))]
        self.send(tail)

    # --------------------------------------------------------------- actions
    def act_challenge(self, f: Frame, aid: str | None) -> None:
        if (f.get("AuthType") or "").lower() != "md5":
            self.respond_error(aid, "Must specify AuthType")
            return
        self.challenge = str(secrets.randbelow(10**9))
        self.respond(aid, ("Challenge", self.challenge))

    def act_login(self, f: Frame, aid: str | None) -> None:
        srv = self.server
        user = f.get("Username") or ""
        ok = False
        if user in srv.users:
            secret = srv.users[user]
            if (f.get("AuthType") or "").lower() == "md5" and self.challenge:
                expected = hashlib.md5((self.challenge + secret).encode()).hexdigest()
                ok = (f.get("Key") or "").lower() == expected
            else:
                ok = f.get("Secret") == secret
        if not ok:
            self.respond_error(aid, "Authentication failed")
            self._out.put_nowait(None)
            self.closed = True
            return
        self.authenticated = True
        self.read = srv.read_classes(user)
        events = f.get("Events")
        self.send_events = None if events is None else parse_classes(events)
        self.respond(aid, ("Message", "Authentication accepted"))
        uptime = str(int(srv.pbx.clock.monotonic() - srv.started))
        if srv.lifecycle.booted:  # a restarted Asterisk sends it when booting ends (capture 11)
            self.deliver_event([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
                                ("LastReload", uptime), ("Status", "Fully Booted")])
        tv = srv.pbx.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        local = self.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        remote = self.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        self.deliver_event([
            ("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("EventTV", tv),
            ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1"), ("AccountID", user),
            ("SessionID", self.session_id), ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
            ("RemoteAddress", f"IPV4/TCP/{remote[0]}/{remote[1]}"), ("UsingPassword", "0"), ("SessionTV", tv)])

    def act_logoff(self, f: Frame, aid: str | None) -> None:
        self.respond(aid, ("Message", "Thanks for all the fish."), response="Goodbye")
        self._out.put_nowait(None)
        self.closed = True

    def act_events(self, f: Frame, aid: str | None) -> None:
        self.send_events = parse_classes(f.get("EventMask") or "on")
        self.respond(aid, ("Events", "On" if self.events_on else "Off"))

    def act_ping(self, f: Frame, aid: str | None) -> None:
        self.respond(aid, ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))

    def act_coresettings(self, f: Frame, aid: str | None) -> None:
        self.respond(aid, ("AMIversion", "9.0.0"), ("AsteriskVersion", "20.20.1"), ("SystemName", ""),
                     ("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""),
                     ("CoreRunGroup", ""), ("CoreMaxFilehandles", "0"), ("CoreRealTimeEnabled", "No"),
                     ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No"))

    def act_corestatus(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        started = self.server.started_at
        self.respond(aid, ("CoreStartupDate", started.strftime("%Y-%m-%d")),
                     ("CoreStartupTime", started.strftime("%H:%M:%S")),
                     ("CoreReloadDate", started.strftime("%Y-%m-%d")),
                     ("CoreReloadTime", started.strftime("%H:%M:%S")),
                     ("CoreCurrentCalls", str(len({c.linkedid for c in pbx.channels.values()}))),
                     ("CoreProcessedCalls", str(pbx.processed_calls)))

    def act_command(self, f: Frame, aid: str | None) -> None:
        cmd = (f.get("Command") or "").strip()
        pbx = self.server.pbx
        if cmd.startswith("module show like"):
            out = ["Module                         Description                              Use Count  "
                   "Status      Support Level",
                   "res_agi.so                     Asterisk Gateway Interface (AGI)         1          "
                   "Running              core",
                   "1 modules loaded"]
        elif cmd == "core show channels":
            out = ["Channel              Location             State   Application(Data)"]
            out += [f"{c.name:<20} {c.exten}@{c.context}:{c.priority} {ev.STATE_DESC.get(c.state, '')} "
                    f"{c.app}({c.appdata})" for c in pbx.channels.values()]
            out.append(f"{len(pbx.channels)} active channels")
        elif cmd == "core show version":
            out = ["Asterisk 20.20.1 built by stand-in"]
        else:
            out = [f"No such command '{cmd}' (type 'core show help {cmd.split(' ')[0]}' for other possible "
                   "commands)"]
            self.respond(aid, ("Message", "Command output follows"), *[("Output", o) for o in out],
                         response="Error")
            return
        self.respond(aid, ("Message", "Command output follows"), *[("Output", o) for o in out])

    def act_originate(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        headers: dict[str, list[str]] = {}
        for k, v in f.headers:
            headers.setdefault(k.lower(), []).append(v)
        is_async = (f.get("Async") or "").strip().lower() in ("true", "yes", "1", "on")
        if is_async:
            err = pbx.originate(headers, aid, self.server.broadcast)
            if err:
                self.respond_error(aid, err)
                return
            self.respond(aid, ("Message", "Originate successfully queued"))
            return
        # synchronous: the reply waits for the outcome
        outcome: asyncio.Future[Fields] = asyncio.get_running_loop().create_future()

        def done(fields: Fields) -> None:
            # a synchronous Originate answers in its Response; no OriginateResponse event
            if not outcome.done():
                outcome.set_result(fields)

        err = pbx.originate(headers, aid, done)
        if err:
            self.respond_error(aid, err)
            return

        async def wait() -> None:
            fields = await outcome
            if dict(fields).get("Response") == "Success":
                self.respond(aid, ("Message", "Originate successfully queued"))
            else:
                self.respond_error(aid, "Originate failed")

        self.server.spawn(wait())

    def _channel(self, f: Frame, aid: str | None, key: str = "Channel") -> object:
        name = f.get(key) or ""
        ch = self.server.pbx.find(name)
        if ch is None:
            self.respond_error(aid, "No such channel" if name else "No channel specified")
        return ch

    def act_hangup(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        name = f.get("Channel") or ""
        try:
            cause = int(f.get("Cause") or 16)
        except ValueError:
            cause = 16
        if len(name) > 1 and name.startswith("/") and name.endswith("/"):
            try:
                rx = re.compile(name[1:-1])
            except re.error:
                self.respond_error(aid, "Invalid regex")
                return
            matched = [c for c in list(pbx.channels.values()) if rx.search(c.name)]
            items: list[Fields] = []
            for c in matched:
                item: Fields = [("Event", "ChannelHungup"), ("Channel", c.name)]
                if aid is not None:
                    item.append(("ActionID", aid))
                items.append(item)
            self.list_items(aid, items, "ChannelsHungupListComplete", "Channels hung up will follow")
            for c in matched:
                pbx.hangup_channel(c, cause)
            return
        ch = pbx.find(name)
        if ch is None:
            self.respond_error(aid, "No such channel")
            return
        self.respond(aid, ("Message", "Channel Hungup"))
        pbx.hangup_channel(ch, cause)

    def act_redirect(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        ch = pbx.find(f.get("Channel") or "")
        if ch is None or ch.call is None:
            self.respond_error(aid, "Channel specified does not exist")
            return
        context, exten = f.get("Context") or "", f.get("Exten") or "s"
        if not context:
            self.respond_error(aid, "Context not specified")
            return
        self.respond(aid, ("Message", "Redirect successful"))
        pbx.redirect(ch, context, exten)

    def act_setvar(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        var = f.get("Variable")
        if not var:
            self.respond_error(aid, "No variable specified")
            return
        name = f.get("Channel")
        if name:
            ch = pbx.find(name)
            if ch is None:
                self.respond_error(aid, "No such channel")
                return
            pbx.setvar(ch, var, f.get("Value") or "")
        else:
            pbx.global_vars[var] = f.get("Value") or ""
        self.respond(aid, ("Message", "Variable Set"))

    def act_getvar(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        var = f.get("Variable")
        if not var:
            self.respond_error(aid, "No variable specified")
            return
        name = f.get("Channel")
        if name:
            ch = pbx.find(name)
            if ch is None:
                self.respond_error(aid, "No such channel")
                return
            value = pbx.getvar(ch, var)
        else:
            value = pbx.global_vars.get(var)
        self.respond(aid, ("Variable", var), ("Value", value or ""))

    def act_agi(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        name = f.get("Channel") or ""
        command = f.get("Command")
        if not name or not command:
            self.respond_error(aid, "Channel and Command are required" if not command else "No channel specified")
            return
        ch = pbx.find(name)
        if ch is None:
            self.respond_error(aid, f"Channel {name} does not exist.")
            return
        session = ch.call.agi if ch.call is not None else None
        from callcenter.simulator.asyncagi import AsyncAgiSession

        if not isinstance(session, AsyncAgiSession) or not session.queue_command(command, f.get("CommandID")):
            self.respond_error(aid, "Failed to add AGI command to queue")
            return
        self.respond(aid, ("Message", "Added AGI command to queue"))

    def act_dbput(self, f: Frame, aid: str | None) -> None:
        astdb.act_dbput(self, f, aid, self.server.astdb)

    def act_dbget(self, f: Frame, aid: str | None) -> None:
        astdb.act_dbget(self, f, aid, self.server.astdb)

    def act_dbdel(self, f: Frame, aid: str | None) -> None:
        astdb.act_dbdel(self, f, aid, self.server.astdb)

    # ---------------------------------------------------------------- queues
    def _queue(self, f: Frame, aid: str | None) -> object:
        q = self.server.pbx.queues.get(f.get("Queue") or "")
        if q is None:
            self.respond_error(aid, "Unable to find queue" if f.get("Queue") else "'Queue' not specified.")
        return q

    def act_queueadd(self, f: Frame, aid: str | None) -> None:
        from callcenter.simulator.pbx import Queue

        q = self._queue(f, aid)
        if not isinstance(q, Queue):
            return
        iface = f.get("Interface") or ""
        if not iface:
            self.respond_error(aid, "'Interface' not specified.")
            return
        if iface in q.members:
            self.respond_error(aid, "Unable to add interface: Already there")
            return
        now = int(self.server.pbx.clock.now().timestamp())
        paused = (f.get("Paused") or "").lower() in ("true", "yes", "1")
        try:
            penalty = int(f.get("Penalty") or 0)
        except ValueError:
            penalty = 0
        q.members[iface] = QueueMember(interface=iface, name=f.get("MemberName") or iface,
                                       state_interface=f.get("StateInterface") or iface, penalty=penalty,
                                       paused=paused, login_time=now)
        self.respond(aid, ("Message", "Added interface to queue"))
        self.server.broadcast(self._member_event("QueueMemberAdded", q.name, q.members[iface]))

    def act_queueremove(self, f: Frame, aid: str | None) -> None:
        from callcenter.simulator.pbx import Queue

        q = self._queue(f, aid)
        if not isinstance(q, Queue):
            return
        iface = f.get("Interface") or ""
        member = q.members.pop(iface, None)
        if member is None:
            self.respond_error(aid, "Unable to remove interface: Not there")
            return
        self.respond(aid, ("Message", "Removed interface from queue"))
        self.server.broadcast(self._member_event("QueueMemberRemoved", q.name, member))

    def act_queuepause(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        iface = f.get("Interface") or ""
        if not iface:
            self.respond_error(aid, "Need 'Interface' and 'Paused' fields.")
            return
        paused = (f.get("Paused") or "").lower() in ("true", "yes", "1")
        names = [f.get("Queue")] if f.get("Queue") else list(pbx.queues)
        found: list[tuple[str, QueueMember]] = []
        for qn in names:
            q = pbx.queues.get(qn or "")
            if q and iface in q.members:
                m = q.members[iface]
                m.paused = paused
                m.paused_reason = f.get("Reason") or "" if paused else ""
                m.last_pause = int(pbx.clock.now().timestamp()) if paused else m.last_pause
                found.append((q.name, m))
        if not found:
            self.respond_error(aid, "Interface not found")
            return
        self.respond(aid, ("Message", "Interface paused successfully" if paused
                           else "Interface unpaused successfully"))
        for qn, m in found:
            self.server.broadcast(self._member_event("QueueMemberPause", qn, m))

    def _member_event(self, name: str, queue: str, m: QueueMember) -> Fields:
        return [("Event", name), ("Privilege", "agent,all"), ("Queue", queue), ("MemberName", m.name),
                ("Interface", m.interface), ("StateInterface", m.state_interface), ("Membership", m.membership),
                ("Penalty", str(m.penalty)), ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)),
                ("LastPause", str(m.last_pause)), ("LoginTime", str(m.login_time)),
                ("InCall", "1" if m.in_call else "0"), ("Status", str(m.status)),
                ("Paused", "1" if m.paused else "0"), ("PausedReason", m.paused_reason),
                ("Ringinuse", "0"), ("Wrapuptime", "0")]

    def act_queuestatus(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        want = f.get("Queue")
        items: list[Fields] = []
        now = pbx.clock.monotonic()
        tail: Fields = [("ActionID", aid)] if aid is not None else []
        for q in pbx.queues.values():
            if want and q.name != want:
                continue
            total = q.completed + q.abandoned
            items.append([("Event", "QueueParams"), ("Queue", q.name), ("Max", "0"), ("Strategy", q.strategy),
                          ("Calls", str(len(q.callers))), ("Holdtime", str(q.holdtime)),
                          ("TalkTime", str(q.talktime)), ("Completed", str(q.completed)),
                          ("Abandoned", str(q.abandoned)), ("ServiceLevel", "0"),
                          ("ServicelevelPerf", f"{(100.0 * q.completed / total) if total else 0.0:.1f}"),
                          ("ServicelevelPerf2", "0.0"), ("Weight", "0"), *tail])
            for m in q.members.values():
                items.append([("Event", "QueueMember"), ("Queue", q.name), ("Name", m.name),
                              ("Location", m.interface), ("StateInterface", m.state_interface),
                              ("Membership", m.membership), ("Penalty", str(m.penalty)),
                              ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)),
                              ("LastPause", str(m.last_pause)), ("LoginTime", str(m.login_time)),
                              ("InCall", "1" if m.in_call else "0"), ("Status", str(m.status)),
                              ("Paused", "1" if m.paused else "0"), ("PausedReason", m.paused_reason),
                              ("Wrapuptime", "0"), *tail])
            for pos, c in enumerate(q.callers, 1):
                items.append([("Event", "QueueEntry"), ("Queue", q.name), ("Position", str(pos)),
                              ("Channel", c.name), ("Uniqueid", c.uniqueid),
                              ("CallerIDNum", c.cid_num or "<unknown>"), ("CallerIDName", c.cid_name or "<unknown>"),
                              ("ConnectedLineNum", c.conn_num or "<unknown>"),
                              ("ConnectedLineName", c.conn_name or "<unknown>"),
                              ("Wait", str(int(now - c.created))), ("Priority", "0"), *tail])
        self.list_items(aid, items, "QueueStatusComplete", "Queue status will follow")

    def act_queuesummary(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        want = f.get("Queue")
        tail: Fields = [("ActionID", aid)] if aid is not None else []
        now = pbx.clock.monotonic()
        items: list[Fields] = []
        for q in pbx.queues.values():
            if want and q.name != want:
                continue
            available = sum(1 for m in q.members.values() if not m.paused and not m.in_call and not m.ringing)
            longest = max((int(now - c.created) for c in q.callers), default=0)
            items.append([("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", str(len(q.members))),
                          ("Available", str(available)), ("Callers", str(len(q.callers))),
                          ("HoldTime", str(q.holdtime)), ("TalkTime", str(q.talktime)),
                          ("LongestHoldTime", str(longest)), *tail])
        self.list_items(aid, items, "QueueSummaryComplete", "Queue summary will follow")

    # ------------------------------------------------------------- channels
    def act_coreshowchannels(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        now = pbx.clock.monotonic()
        items: list[Fields] = []
        for c in pbx.channels.values():
            secs = int(now - c.created)
            item: Fields = [("Event", "CoreShowChannel")]
            if aid is not None:
                item.append(("ActionID", aid))
            item += ev.channel_fields(c)
            item += [("Application", c.app), ("ApplicationData", c.appdata),
                     ("Duration", f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"),
                     ("BridgeId", c.bridge.uniqueid if c.bridge else "")]
            items.append(item)
        self.list_items(aid, items, "CoreShowChannelsComplete", "Channels will follow")

    # ------------------------------------------------------------ voicemail
    def _mailbox(self, f: Frame) -> tuple[str, str, str]:
        spec = f.get("Mailbox") or ""
        box, _, ctx = spec.partition("@")
        return spec, box, ctx or "default"

    def act_mailboxcount(self, f: Frame, aid: str | None) -> None:
        spec, box, ctx = self._mailbox(f)
        if not box:
            self.respond_error(aid, "Mailbox not specified")
            return
        new, old = self.server.pbx.spool.count(ctx, box)
        self.respond(aid, ("Message", "Mailbox Message Count"), ("Mailbox", spec), ("UrgMessages", "0"),
                     ("NewMessages", str(new)), ("OldMessages", str(old)))

    def act_mailboxstatus(self, f: Frame, aid: str | None) -> None:
        spec, box, ctx = self._mailbox(f)
        if not box:
            self.respond_error(aid, "Mailbox not specified")
            return
        new, _ = self.server.pbx.spool.count(ctx, box)
        self.respond(aid, ("Message", "Mailbox Status"), ("Mailbox", spec), ("Waiting", "1" if new else "0"))

    def act_voicemailuserslist(self, f: Frame, aid: str | None) -> None:
        pbx = self.server.pbx
        items: list[Fields] = []
        for ctx, box, fullname in self.server.mailboxes:
            new, old = pbx.spool.count(ctx, box)
            item: Fields = [("Event", "VoicemailUserEntry")]
            if aid is not None:
                item.append(("ActionID", aid))
            item += [("VMContext", ctx), ("VoiceMailbox", box), ("Fullname", fullname), ("Email", ""),
                     ("Pager", ""), ("ServerEmail", "asterisk@localhost"), ("FromString", ""),
                     ("MailCommand", "/bin/true"), ("Language", ""), ("TimeZone", ""), ("Callback", ""),
                     ("Dialout", ""), ("UniqueID", ""), ("ExitContext", ""), ("SayDurationMinimum", "2"),
                     ("SayEnvelope", "Yes"), ("SayCID", "No"), ("AttachMessage", "No"), ("AttachmentFormat", ""),
                     ("DeleteMessage", "No"), ("VolumeGain", "0.00"), ("CanReview", "No"),
                     ("CanMarkUrgent", "Yes"), ("CallOperator", "No"), ("MaxMessageCount", "100"),
                     ("MaxMessageLength", "120"), ("NewMessageCount", str(new)), ("OldMessageCount", str(old))]
            items.append(item)
        self.list_items(aid, items, "VoicemailUserEntryComplete", "Voicemail user list will follow")


class AmiServer:
    def __init__(self, pbx: Pbx, *, host: str, port: int, users: dict[str, str],
                 mailboxes: list[tuple[str, str, str]], segment_size: int | None = None,
                 read: dict[str, str] | None = None) -> None:
        self.pbx = pbx
        self.host = host
        self.port = port
        self.users = users
        #: user → manager.conf ``read=`` (a user not named here reads ``all``)
        self.read = dict(read or {})
        self.mailboxes = mailboxes
        self.segment_size = segment_size
        self.sessions: set[AmiSession] = set()
        self.frozen = False
        self.frozen_login = False
        self.astdb = astdb.AstDb()  # on disk in Asterisk: kept across restart()
        self.lifecycle = astdb.Lifecycle()
        self.started = pbx.clock.monotonic()
        self.started_at = pbx.clock.now()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count()
        self._session_tasks: set[asyncio.Task[object]] = set()

    def read_classes(self, user: str) -> frozenset[str] | None:
        return parse_classes(self.read.get(user, "all"))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = standin_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.started = self.pbx.clock.monotonic()
        self.started_at = self.pbx.clock.now()
        return self.port

    async def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
        try:
            await session.serve()
        except asyncio.CancelledError:
            pass
        finally:
            self.sessions.discard(session)
            if task is not None:
                self._session_tasks.discard(task)

    def broadcast(self, fields: Fields) -> None:
        cls = _class_of(fields)
        for s in list(self.sessions):
            s.deliver_event(fields, cls)

    def drop_clients(self) -> None:
        for s in list(self.sessions):
            s.abort()
        self.sessions.clear()

    async def close(self) -> None:
        await self.stop_listening()
        for s in list(self.sessions):
            s.abort()
        self.sessions.clear()
        tasks = list(self._tasks) + list(self._session_tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 1.0)
