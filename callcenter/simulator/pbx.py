"""The call model: channels, bridges, queues and a little dialplan.

Each call is a ``Call``: the channel that runs the dialplan (``app``) and
the channel of the scripted party (``party``: the ``;2`` half of a Local
pair from Originate, or the same channel for a trunk caller). Events come
out in the order Asterisk 20 emits them in the captures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.simulator import events as ev
from callcenter.simulator.astdb import HotlineGuard
from callcenter.simulator.dialplan import RIG_DIALPLAN, Dialplan
from callcenter.simulator.scenario import (
    Answer,
    Caller,
    HangUp,
    Phone,
    Press,
    Say,
    Step,
    Wait,
    rig_script,
    sim_script,
)
from callcenter.simulator.timing import Clock, standin_task
from callcenter.simulator.voicemail import VoicemailSpool

log = logging.getLogger(__name__)

Emit = Callable[[ev.Fields], None]
Cleanup = Callable[[], Awaitable[None]]


class Gone(Exception):
    """The party hung up (or the call was hung up from AMI)."""


class Redirected(Exception):
    """AMI Redirect moved the call elsewhere in the dialplan."""


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    priority: int = 1
    cid_num: str = ""
    cid_name: str = ""
    conn_num: str = ""
    conn_name: str = ""
    language: str = "en"
    accountcode: str = ""
    app: str = ""
    appdata: str = ""
    created: float = 0.0
    start_text: str = ""
    answer_text: str = ""
    answered_at: float | None = None
    bridge: Bridge | None = None
    variables: dict[str, str] = field(default_factory=dict)
    #: ``TIMEOUT(absolute)``: when (stand-in monotonic) the dialplan takes the call back
    hangup_at: float | None = None
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    speech: Say | None = None
    dead: bool = False
    cdr_done: bool = False
    call: Call | None = None


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    channels: list[Channel] = field(default_factory=list)


@dataclass(eq=False)
class Call:
    app: Channel
    party: Channel
    script: list[Step]
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    cleanups: list[Cleanup] = field(default_factory=list)
    post_cleanups: list[Cleanup] = field(default_factory=list)
    ended: bool = False
    cdr_early: bool = False
    extra_channels: list[Channel] = field(default_factory=list)
    ivr_transport: str | None = None
    fastagi_url: str | None = None
    origin_reply: Callable[[], None] | None = None
    agi: Any = None
    redirect_to: tuple[str, str] | None = None
    #: what AMD() says of the answered party (``Phone.amd``), outbound contexts only
    amd: str = "HUMAN"
    #: set when the dialplan side first sends audio: a Local ``;2`` party's Answer()
    #: returns only then (02_asyncagi: the caller's Wait starts with STREAM FILE)
    media: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def local_pair(self) -> bool:
        return self.app is not self.party


@dataclass(eq=False)
class QueueMember:
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    membership: str = "dynamic"
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    ringing: bool = False

    @property
    def status(self) -> int:
        # AST_DEVICE_*: 1 not in use, 2 in use, 6 ringing
        if self.ringing:
            return 6
        return 2 if self.in_call else 1


@dataclass(eq=False)
class Queue:
    name: str
    strategy: str = "ringall"
    members: dict[str, QueueMember] = field(default_factory=dict)
    callers: list[Channel] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0


_LOCAL = re.compile(r"^Local/(?P<exten>[^@]+)@(?P<context>[^/]+)(?:/n)?$", re.I)


class Pbx:
    def __init__(self, *, clock: Clock, emit: Emit, spool: VoicemailSpool,
                 phones: dict[str, Phone] | None = None, ivr_transport: str = "asyncagi",
                 fastagi_url: str = "agi://127.0.0.1:4573/ivr", prompt_seconds: float = 1.0,
                 member_ring_timeout: float = 15.0, queue_retry: float = 5.0,
                 fastagi_close_timeout: float = 30.0, record_root: Path | None = None,
                 hotline_context: str = "hotline", dialplan: Dialplan | None = None) -> None:
        self.clock = clock
        #: which contexts and extensions exist (what Originate and Local channels check)
        self.dialplan = dialplan if dialplan is not None else Dialplan.parse(RIG_DIALPLAN)
        self._emit = emit
        self.spool = spool
        self.phones: dict[str, Phone] = dict(phones or {})
        self.ivr_transport = ivr_transport
        self.fastagi_url = fastagi_url
        self.prompt_seconds = prompt_seconds
        self.member_ring_timeout = member_ring_timeout
        self.queue_retry = queue_retry
        self.fastagi_close_timeout = fastagi_close_timeout
        self.record_root = record_root
        self.hotline_context = hotline_context
        #: the printed hotline's heartbeat check and fallback (``astdb.HotlineGuard``); None: the rig's plain AGI
        self.hotline_guard: HotlineGuard | None = None
        #: contexts that run the IVR over AGI ("fastagi" always uses FastAGI, as in the capture rig)
        # The contexts `callcenter asterisk-config` writes, plus the capture rig's own.
        self.fastagi_contexts = {"fastagi", f"{hotline_context}-fastagi"}
        self.asyncagi_contexts = {"callcenter-page", "callcenter-outbound"}
        #: contexts whose printed dialplan runs AMD() before AGI (callcenter asterisk-config)
        self.amd_contexts = {"callcenter-outbound", "callcenter-outbound-fastagi"}
        self.fastagi_contexts.add("callcenter-outbound-fastagi")
        #: Local contexts whose phones signal Ringing() before they answer (the capture rig's)
        self.ringing_contexts = {"rig-phone"}
        self.ivr_contexts = {"hotline", hotline_context} | self.fastagi_contexts | self.asyncagi_contexts
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, Queue] = {"frontdesk": Queue("frontdesk")}
        self.global_vars: dict[str, str] = {"SIMFILE": "/srv/pbx/sounds/caller-msg"}
        self.processed_calls = 0
        self._epoch = int(clock.now().timestamp())
        self._uid = itertools.count()
        self._local = itertools.count()
        self._tech = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- basics
    def emit(self, fields: ev.Fields) -> None:
        self._emit(fields)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = standin_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stand-in task failed", exc_info=task.exception())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        self.channels.clear()

    def reset(self) -> None:
        """Forget every channel (a restarted Asterisk has none of the old ones)."""
        for t in list(self._tasks):
            t.cancel()
        self.channels.clear()
        for q in self.queues.values():
            q.callers.clear()
            for m in q.members.values():
                m.in_call = m.ringing = False
        self._epoch = int(self.clock.now().timestamp())

    def new_uniqueid(self) -> str:
        return f"{self._epoch}.{next(self._uid)}"

    def _timestamp(self) -> str:
        return self.clock.now().strftime("%Y-%m-%d %H:%M:%S")

    def _make_channel(self, name: str, context: str, exten: str, *, uniqueid: str | None = None,
                      linkedid: str | None = None, state: int = 0) -> Channel:
        uid = uniqueid or self.new_uniqueid()
        ch = Channel(name=name, uniqueid=uid, linkedid=linkedid or uid, context=context, exten=exten,
                     state=state, created=self.clock.monotonic(), start_text=self._timestamp())
        self.channels[name] = ch
        return ch

    def find(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def set_callerid(self, ch: Channel, num: str, name: str, *, event: bool = True) -> None:
        ch.cid_num, ch.cid_name = num, name
        if event:
            self.emit(ev.newcallerid(ch))

    def set_connected(self, ch: Channel, num: str, name: str) -> None:
        ch.conn_num, ch.conn_name = num, name
        self.emit(ev.chan_event("NewConnectedLine", "call,all", ch))

    def set_state(self, ch: Channel, state: int) -> None:
        ch.state = state
        if state == 6 and ch.answered_at is None:
            ch.answered_at = self.clock.monotonic()
            ch.answer_text = self._timestamp()
        self.emit(ev.newstate(ch))

    def set_app(self, ch: Channel, app: str, data: str, priority: int | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        ch.app, ch.appdata = app, data
        self.emit(ev.newexten(ch, app, data))

    def setvar(self, ch: Channel, name: str, value: str) -> None:
        if name.upper() == "TIMEOUT(ABSOLUTE)":  # a function: no VarSet
            try:
                seconds = float(value)
            except ValueError:
                seconds = 0.0
            ch.hangup_at = self.clock.monotonic() + seconds if seconds > 0 else None
            return
        ch.variables[name] = value
        self.emit(ev.varset(ch, name, value))

    def getvar(self, ch: Channel, name: str) -> str | None:
        upper = name.upper()
        special = {
            "CALLERID(NAME)": ch.cid_name, "CALLERID(NUM)": ch.cid_num,
            "CALLERID(ALL)": f'"{ch.cid_name}" <{ch.cid_num}>',
            "UNIQUEID": ch.uniqueid, "CHANNEL": ch.name, "EXTEN": ch.exten, "CONTEXT": ch.context,
            "CHANNEL(LINKEDID)": ch.linkedid, "CHANNEL(UNIQUEID)": ch.uniqueid,
        }
        if upper in special:
            return special[upper]
        if name in ch.variables:
            return ch.variables[name]
        return self.global_vars.get(name)

    @staticmethod
    def _cid_all(ch: Channel) -> str:
        return f'"{ch.cid_name}" <{ch.cid_num}>' if ch.cid_name else f"<{ch.cid_num}>"

    def _destroy(self, ch: Channel) -> None:
        ch.dead = True
        self.channels.pop(ch.name, None)

    def _cdr(self, ch: Channel, dest: str = "") -> None:
        if ch.cdr_done:
            return
        ch.cdr_done = True
        now = self.clock.monotonic()
        duration = round(now - ch.created)
        billable = round(now - ch.answered_at) if ch.answered_at is not None else 0
        self.emit(ev.cdr(ch, dest_channel=dest, end=self._timestamp(), duration=duration, billable=billable))

    # ------------------------------------------------------------- sleeping
    async def sleep(self, call: Call | None, seconds: float) -> None:
        """Sleep in simulated time; raises ``Gone`` if the party hangs up meanwhile."""
        if call is None:
            await self.clock.sleep(seconds)
            return
        self.check(call)
        sleeper = standin_task(self.clock.sleep(seconds))
        waiter = standin_task(call.gone.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
        self.check(call)

    @staticmethod
    def check(call: Call) -> None:
        if call.redirect_to is not None and not call.ended:
            raise Redirected
        if call.gone.is_set():
            raise Gone

    async def next_digit(self, call: Call, within: float | None) -> str | None:
        """A DTMF digit from the party within ``within`` seconds (None = forever)."""
        q = call.app.dtmf
        if not q.empty():
            return q.get_nowait()
        if call.gone.is_set():
            self.check(call)
            raise Gone
        getter = standin_task(q.get())
        waiter = standin_task(call.gone.wait())
        waits: set[asyncio.Future[Any]] = {getter, waiter}
        sleeper = None
        if within is not None:
            sleeper = standin_task(self.clock.sleep(within))
            waits.add(sleeper)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                if w is not getter:
                    w.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        self.check(call)
        return None

    # ----------------------------------------------------------- party side
    def media(self, call: Call) -> None:
        call.media.set()

    def playback_done(self, ch: Channel) -> None:
        """Playback() sets PLAYBACKSTATUS when it ends, also when cut short by a hangup."""
        if ch.app == "Playback" and not ch.variables.get("__playback_done"):
            ch.variables["__playback_done"] = "1"
            self.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")

    async def _run_script(self, call: Call, script: list[Step]) -> None:
        party = call.party
        if call.local_pair:
            await call.media.wait()
        base = party.priority
        for index, step in enumerate(script):
            if call.ended or party.dead:
                return
            if call.local_pair:
                # the party half runs [caller-sim]: one priority per step, as the rig's dialplan
                app, data = {
                    Wait: ("Wait", f"{getattr(step, 'seconds', 0):g}"),
                    Press: ("SendDTMF", f"{getattr(step, 'digits', '')},250"),
                    Say: ("Playback", str(getattr(step, "wav", None) or self.global_vars.get(
                        "SIMFILE", "/srv/pbx/sounds/caller-msg"))),
                    HangUp: ("Hangup", ""),
                }[type(step)]
                self.set_app(party, app, data, base + index + 1)
            if isinstance(step, Wait):
                await self.clock.sleep(step.seconds)
            elif isinstance(step, Press):
                for digit in step.digits:
                    target = call.app
                    self.emit(ev.dtmf_begin(target, digit))
                    self.emit(ev.dtmf_end(target, digit))
                    target.dtmf.put_nowait(digit)
                    await self.clock.sleep(step.gap)
            elif isinstance(step, Say):
                call.app.speech = step
                party.variables.pop("__playback_done", None)
                await self.clock.sleep(step.seconds)
                if call.local_pair and not call.ended:
                    self.playback_done(party)
            elif isinstance(step, HangUp):
                self.party_hangup(call)
                return
            if call.local_pair and index + 1 < len(script) and isinstance(script[index + 1], HangUp) \
                    and call.cdr_early:
                # the CDR engine posts the party's record as Hangup() starts: 05_queue
                party.app, party.appdata = "Hangup", ""
                self._cdr(party)

    def party_hangup(self, call: Call) -> None:
        if not call.ended:
            call.gone.set()

    def redirect(self, ch: Channel, context: str, exten: str) -> None:
        """AMI Redirect: the call's dialplan channel continues at ``context,exten,1``."""
        call = ch.call
        if call is None or call.ended:
            return
        call.redirect_to = (context, exten)
        call.gone.set()  # wakes whatever the channel is doing

    # -------------------------------------------------------------- calling
    def place_call(self, caller: Caller) -> Call:
        """A scripted caller dials in over the trunk (``PJSIP/trunk-…``)."""
        name = f"PJSIP/trunk-{next(self._tech):08x}"
        ch = self._make_channel(name, "from-trunk", caller.did, state=4)
        ch.cid_num = caller.number
        self.emit(ev.newchannel(ch))  # name not known yet: <unknown>
        ch.variables["DNID"] = caller.did
        call = Call(app=ch, party=ch, script=list(caller.script), ivr_transport=caller.ivr_transport,
                    fastagi_url=caller.fastagi_url)
        ch.call = call
        self.processed_calls += 1
        self.spawn(self._trunk_call(call, caller))
        return call

    async def _trunk_call(self, call: Call, caller: Caller) -> None:
        ch = call.app
        if caller.name:
            self.set_callerid(ch, caller.number, caller.name)
        context = caller.context or self.hotline_context
        exten = caller.exten or ("s" if context in self.ivr_contexts | {"queue-entry"} else caller.did)
        ch.context, ch.exten, ch.priority = context, exten, 1
        script_task = self.spawn(self._run_script(call, call.script))
        try:
            await self.run_dialplan(call, context, exten)
        finally:
            script_task.cancel()

    def originate(self, headers: dict[str, list[str]], action_id: str | None,
                  reply: Callable[[ev.Fields], None]) -> str | None:
        """Start an Originate; returns an error message or None if queued."""
        def one(key: str) -> str | None:
            vals = headers.get(key.lower())
            return vals[0] if vals else None

        target = one("Channel")
        if not target:
            return "Channel not specified"
        variables: dict[str, str] = {}
        for v in headers.get("variable", []):
            for part in v.split(","):
                k, _, val = part.partition("=")
                if k:
                    variables[k.strip()] = val
        cid = one("CallerID") or ""
        m = re.match(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$', cid)
        cid_name, cid_num = (m["name"], m["num"]) if m else ("", cid.strip())
        try:
            timeout = float(one("Timeout") or 30000) / 1000.0
        except ValueError:
            timeout = 30.0
        spec = OriginateSpec(
            target=target, context=one("Context"), exten=one("Exten"), priority=one("Priority") or "1",
            application=one("Application"), data=one("Data") or "", cid_num=cid_num, cid_name=cid_name,
            variables=variables, channel_id=one("ChannelId"), other_id=one("OtherChannelId"),
            timeout=timeout, action_id=action_id)
        if not spec.application and not spec.context:
            spec.context = "default"
        if not spec.application and not spec.exten:
            spec.exten = "s"
        if not spec.application and not self.dialplan.exists(spec.context or "", spec.exten or ""):
            # refused before any channel exists, even with Async (capture 10, c10-4)
            return "Extension does not exist."
        self.processed_calls += 1
        self.spawn(self._originate(spec, reply))
        return None

    async def _originate(self, spec: OriginateSpec, reply: Callable[[ev.Fields], None]) -> None:
        m = _LOCAL.match(spec.target)
        if m:
            await self._originate_local(spec, m["exten"], m["context"], reply)
        else:
            await self._originate_tech(spec, reply)

    def _phone_for(self, number: str) -> Phone:
        return self.phones.get(number) or Phone(number=number)

    async def _originate_local(self, spec: OriginateSpec, exten: str, context: str,
                               reply: Callable[[ev.Fields], None]) -> None:
        seq = next(self._local)
        base = f"Local/{exten}@{context}-{seq:08x}"
        uid1 = spec.channel_id or self.new_uniqueid()
        uid2 = spec.other_id or (f"{uid1};2" if spec.channel_id else self.new_uniqueid())
        one = self._make_channel(f"{base};1", context, exten, uniqueid=uid1, state=0)
        two = self._make_channel(f"{base};2", context, exten, uniqueid=uid2, linkedid=one.linkedid, state=4)
        self.emit(ev.newchannel(one))
        self.emit(ev.newchannel(two))
        # the order of full/02_asyncagi_hotline.log (Variables land on ;1 in reverse)
        self.set_app(one, "AppDial2", "(Outgoing Line)")
        for k, v in reversed(spec.variables.items()):
            one.variables[k] = v
            self.emit(ev.varset(one, k, v))
        self.set_callerid(one, spec.cid_num, spec.cid_name)
        self.set_connected(one, spec.cid_num, spec.cid_name)
        for k, v in spec.variables.items():
            two.variables[k] = v
            self.emit(ev.varset(two, k, v))
        two.conn_num, two.conn_name = spec.cid_num, spec.cid_name
        self.set_callerid(two, spec.cid_num, spec.cid_name)
        self.emit(ev.chan_event("NewConnectedLine", "call,all", two))
        if not self.dialplan.exists(context, exten):
            # "No such extension/context" while calling the Local channel: capture 10
            self.emit(ev.hangup(two, 0))
            self._destroy(two)
            reply(ev.originate_failed(spec.action_id, spec.target, one, context=spec.context,
                                      exten=spec.exten, application=spec.application, data=spec.data))
            self.emit(ev.hangup(one, 0))
            self._destroy(one)
            return
        self.emit(ev.local_bridge(one, two, context, exten))
        self.emit(ev.dial_begin(None, one, f"{exten}@{context}"))

        if context == "caller-sim":
            script = sim_script(spec.variables, exten)
            answer = Answer.ANSWER
            delay = 0.0
        elif context == "rig-caller":
            script, answer, delay = rig_script(spec.variables), Answer.ANSWER, 0.0
        else:
            phone = self._phone_for(exten)
            script, answer, delay = list(phone.script), phone.behaviour, phone.answer_after
        call = Call(app=one, party=two, script=script)
        if context not in ("caller-sim", "rig-caller"):
            call.amd = phone.amd
        one.call = two.call = call
        if answer is Answer.ANSWER and delay > 0:
            self.set_state(two, 5)
        result = await self._await_answer(answer, delay, spec.timeout)
        if result != 4:
            await self._fail_originate(call, spec, result, reply)
            return
        if context == "caller-sim" and exten != "wait":
            sim = spec.variables
            noop = (f"caller-sim delay={sim.get('SIM_DELAY', '')} digits={sim.get('SIM_DIGITS', '')} "
                    f"file={sim.get('SIM_FILE', '')}" if exten != "vm" else "caller-sim voicemail depositor")
            self.set_app(two, "NoOp", noop, 1)
        self.set_app(two, "Answer", "", 2 if exten != "wait" else 1)
        self.set_state(two, 6)
        self.set_state(one, 6)
        self.emit(ev.dial_end(None, one, "ANSWER"))
        script_task = self.spawn(self._run_script(call, call.script))
        sent = False

        def send_response() -> None:
            nonlocal sent
            if not sent:
                sent = True
                reply(ev.originate_response(spec.action_id, one, spec.context or "", spec.exten or "",
                                            4, success=True))

        call.origin_reply = send_response
        try:
            if spec.application:
                send_response()
                await self.run_application(call, spec.application, spec.data, final=True)
            else:
                await self.run_dialplan(call, spec.context or "default", spec.exten or "s")
        finally:
            send_response()
            script_task.cancel()

    async def _await_answer(self, answer: Answer, delay: float, ring_for: float) -> int:
        if answer is Answer.BUSY:
            await self.clock.sleep(min(delay, 0.5))
            return 5
        if answer is Answer.UNREACHABLE:
            return 8
        if answer is Answer.NO_ANSWER or delay >= ring_for:
            await self.clock.sleep(ring_for)
            return 3
        await self.clock.sleep(delay)
        return 4

    async def _fail_originate(self, call: Call, spec: OriginateSpec, reason: int,
                              reply: Callable[[ev.Fields], None]) -> None:
        cause = {3: 19, 5: 17, 8: 34}.get(reason, 16)
        status = {3: "NOANSWER", 5: "BUSY", 8: "CONGESTION"}.get(reason, "CHANUNAVAIL")
        self.emit(ev.dial_end(None, call.app, status))
        for ch in (call.party, call.app):
            self.emit(ev.hangup(ch, cause))
            self._destroy(ch)
        reply(ev.originate_response(spec.action_id, call.app, spec.context or "", spec.exten or "",
                                    reason, success=False))

    async def _originate_tech(self, spec: OriginateSpec, reply: Callable[[ev.Fields], None]) -> None:
        tech, _, resource = spec.target.partition("/")
        number = resource.split("@")[0].split("/")[0]
        ch = self._make_channel(f"{tech}/{number}-{next(self._tech):08x}", spec.context or "default",
                                spec.exten or "s", uniqueid=spec.channel_id, state=0)
        self.emit(ev.newchannel(ch))
        # Originate's Variable headers are set on the new channel before it dials out.
        for k, v in spec.variables.items():
            ch.variables[k] = v
            self.emit(ev.varset(ch, k, v))
        self.set_callerid(ch, spec.cid_num, spec.cid_name)
        phone = self._phone_for(number)
        call = Call(app=ch, party=ch, script=list(phone.script), amd=phone.amd)
        ch.call = call
        if phone.behaviour is Answer.ANSWER:
            self.set_state(ch, 5)
        result = await self._await_answer(phone.behaviour, phone.answer_after, spec.timeout)
        if result != 4:
            cause = {3: 19, 5: 17, 8: 34}.get(result, 16)
            self.emit(ev.hangup(ch, cause))
            self._destroy(ch)
            reply(ev.originate_response(spec.action_id, ch, spec.context or "", spec.exten or "",
                                        result, success=False))
            return
        self.set_state(ch, 6)
        reply(ev.originate_response(spec.action_id, ch, spec.context or "", spec.exten or "", 4, success=True))
        script_task = self.spawn(self._run_script(call, call.script))
        try:
            if spec.application:
                await self.run_application(call, spec.application, spec.data, final=True)
                if not ch.dead:
                    # Asterisk hangs an originated channel up when its application returns
                    # (a click-to-call whose Dial found the owner busy).
                    await self.teardown_dialplan(call)
            else:
                await self.run_dialplan(call, spec.context or "default", spec.exten or "s")
        finally:
            script_task.cancel()

    # ------------------------------------------------------------- dialplan
    async def run_dialplan(self, call: Call, context: str, exten: str) -> None:
        while True:
            try:
                await self._run_context(call, context, exten)
                return
            except Redirected:
                assert call.redirect_to is not None
                context, exten = call.redirect_to
                call.redirect_to = None
                call.gone.clear()
                for cleanup in reversed(call.cleanups):
                    await cleanup()
                call.cleanups.clear()
                for post in call.post_cleanups:
                    await post()
                call.post_cleanups.clear()
                call.agi = None

    async def _run_context(self, call: Call, context: str, exten: str) -> None:
        ch = call.app
        ch.context, ch.exten, ch.priority = context, exten, 1
        try:
            if context in self.ivr_contexts:
                self.set_app(ch, "NoOp", f"{context}: {self._cid_all(ch)}", 1)
                self.set_app(ch, "Answer", "", 2)
                if ch.state != 6:
                    self.set_state(ch, 6)
                if context in self.amd_contexts:
                    # AMD(): app_amd sets AMDSTATUS and AMDCAUSE (e.g. "HUMAN-1000-1000",
                    # "LONGGREETING-1600-1500") after listening to the first words
                    self.set_app(ch, "AMD", "", 3)
                    status = call.amd.upper()
                    cause = {"HUMAN": "HUMAN-1000-1000", "MACHINE": "LONGGREETING-1600-1500",
                             "NOTSURE": "TOOLONG-5000"}.get(status, "TOOLONG-5000")
                    self.setvar(ch, "AMDSTATUS", status)
                    self.setvar(ch, "AMDCAUSE", cause)
                if context in self.fastagi_contexts:
                    transport = "fastagi"
                elif context in self.asyncagi_contexts:
                    transport = "asyncagi"
                else:
                    transport = call.ivr_transport or self.ivr_transport
                if transport == "fastagi":
                    url = call.fastagi_url or self.fastagi_url
                    self.set_app(ch, "AGI", url, 3)
                    if call.origin_reply:
                        call.origin_reply()
                    await self._run_fastagi(call, url)
                elif (guard := self.hotline_guard) is not None and context == self.hotline_context \
                        and not guard.alive(self):
                    await guard.fallback(self, call)  # no fresh heartbeat: nobody would take AGI()
                else:
                    if guard is not None and context == self.hotline_context and guard.agi_wait_s:
                        self.setvar(ch, "TIMEOUT(absolute)", f"{guard.agi_wait_s:g}")
                    self.set_app(ch, "AGI", "agi:async", 3)
                    await self._run_asyncagi(call)
                    if guard is not None and call.agi is not None and call.agi.timed_out \
                            and not ch.dead:
                        await guard.fallback(self, call)  # exten T: no server took the call in time
                if (guard := self.hotline_guard) is not None and not ch.dead \
                        and ch.variables.get("AGISTATUS") == "FAILURE":
                    await guard.fallback(self, call)  # the FastAGI server is not there
                if ch.dead:
                    return
                kind = "FastAGI" if transport == "fastagi" else "AsyncAGI"
                self.set_app(ch, "NoOp", f"{kind} done, AGISTATUS={ch.variables.get('AGISTATUS', 'SUCCESS')}", 4)
                self.set_app(ch, "Hangup", "", 5)
            elif context == "queue-entry":
                self.set_app(ch, "NoOp", f"queue entry {self._cid_all(ch)}", 1)
                self.set_app(ch, "Answer", "", 2)
                if ch.state != 6:
                    self.set_state(ch, 6)
                await self.run_application(call, "Queue", "frontdesk,r,,,60", priority=3)
                self.set_app(ch, "NoOp", f"QUEUESTATUS={ch.variables.get('QUEUESTATUS', '')}", 4)
                self.set_app(ch, "Hangup", "", 5)
            elif context == "voicemail-deposit":
                await self.run_application(call, "VoiceMail", f"{exten}@default,s", priority=1)
                self.set_app(ch, "Hangup", "", 2)
            else:
                if call.origin_reply:
                    call.origin_reply()
                if exten in self.phones or exten.isdigit():
                    await self.run_application(call, "Dial", f"Local/{exten}@phones,30", priority=1)
                self.set_app(ch, "Hangup", "", 2)
        except Gone:
            await self.teardown_party(call)
            return
        await self.teardown_dialplan(call)

    async def run_application(self, call: Call, app: str, data: str, *, priority: int | None = None,
                              final: bool = False) -> int:
        """Run one dialplan application on the call's app channel; returns its result."""
        ch = call.app
        self.set_app(ch, app, data, priority)
        name = app.lower()
        if name not in ("hangup", "noop", "set", "answer", "agi"):
            self.media(call)
        if name != "queue" and call.origin_reply:
            call.origin_reply()
        if name == "queue":
            return await self._app_queue(call, data)
        if name == "dial":
            return await self._app_dial(call, data)
        if name == "voicemail":
            return await self._app_voicemail(call, data)
        if name in ("playback", "background"):
            await self.sleep(call, self.prompt_seconds)
            return 0
        if name == "wait":
            try:
                await self.sleep(call, float(data or 1))
            except ValueError:
                await self.sleep(call, 1)
            return 0
        if name == "hangup":
            call.ended = True
            return -1
        if name == "agi":
            if data.startswith("agi:async"):
                await self._run_asyncagi(call)
            else:
                await self._run_fastagi(call, data)
            return 0
        return 0

    # ------------------------------------------------------------ teardown
    async def teardown_dialplan(self, call: Call, cause: int = 16) -> None:
        """The dialplan hung the call up (Hangup() or HANGUP): 02_asyncagi's order."""
        if call.ended and call.app.dead:
            return
        call.ended = True
        one, two = call.app, call.party
        self.emit(ev.soft_hangup_request(one, cause))
        if call.local_pair:
            self.emit(ev.hangup_request(two, cause))
        self.emit(ev.hangup(one, cause))
        self._destroy(one)
        self._cdr(one)
        if call.local_pair:
            self.playback_done(two)
            self.emit(ev.soft_hangup_request(two, cause))
            self._cdr(two)
            self.emit(ev.hangup(two, cause))
            self._destroy(two)
        for extra in call.extra_channels:
            if not extra.dead:
                self.emit(ev.hangup(extra, cause))
                self._destroy(extra)

    async def teardown_party(self, call: Call) -> None:
        """The party hung up: 04_voicemail's order (05_queue's with ``cdr_early``)."""
        if call.app.dead:
            return
        call.ended = True
        one, two = call.app, call.party
        if call.local_pair:
            if call.cdr_early:
                self._cdr(two)
            self.emit(ev.soft_hangup_request(two, 16))
            self.emit(ev.hangup_request(one, 16))
            self.emit(ev.hangup(two, 16))
            self._destroy(two)
            if call.cdr_early:
                self._cdr(one, call.extra_channels[0].name if call.extra_channels else "")
        else:
            self.emit(ev.hangup_request(one, 16))
        for cleanup in reversed(call.cleanups):
            await cleanup()
        call.cleanups.clear()
        self.emit(ev.soft_hangup_request(one, 16))
        self.emit(ev.hangup(one, 16))
        self._destroy(one)
        if not call.cdr_early:
            if call.local_pair:
                self._cdr(two)
            self._cdr(one)
        for post in call.post_cleanups:
            await post()
        call.post_cleanups.clear()

    def hangup_channel(self, ch: Channel, cause: int = 16) -> None:
        """AMI Hangup / HANGUP of a channel: hang its whole call up."""
        call = ch.call
        if call is None:
            self.emit(ev.hangup(ch, cause))
            self._destroy(ch)
            return
        if ch is call.party or ch is call.app:
            self.party_hangup(call)
            return
        # a dialled leg that belongs to no call of its own
        self.emit(ev.hangup(ch, cause))
        self._destroy(ch)

    # --------------------------------------------------------------- AGI
    async def _run_asyncagi(self, call: Call) -> None:
        from callcenter.simulator.asyncagi import AsyncAgiSession

        session = AsyncAgiSession(self, call)
        call.agi = session
        await session.run()

    async def _run_fastagi(self, call: Call, url: str) -> None:
        from callcenter.simulator.fastagi_client import FastAgiSession

        session = FastAgiSession(self, call, url)
        call.agi = session
        await session.run()

    # ------------------------------------------------------------ voicemail
    async def _app_voicemail(self, call: Call, data: str) -> int:
        ch = call.app
        box_spec = data.split(",")[0]
        mailbox, _, vm_context = box_spec.partition("@")
        vm_context = vm_context or "default"
        started = self.clock.monotonic()
        saved = False

        async def save() -> None:
            nonlocal saved
            if saved:
                return
            saved = True
            seconds = max(1, round(self.clock.monotonic() - started))
            speech = ch.speech
            path = self.spool.deposit(
                vm_context, mailbox, channel=ch, caller_channel_name=ch.name,
                duration=seconds, wav=Path(speech.wav) if speech and speech.wav else None,
                when=self.clock.now(), exten=ch.exten, dial_context=ch.context)
            self.setvar(ch, "VM_MESSAGEFILE", str(path.with_suffix("")))
            new, old = self.spool.count(vm_context, mailbox)
            self.emit(ev.message_waiting(ch, f"{mailbox}@{vm_context}", new, old))
            self.setvar(ch, "VMSTATUS", "SUCCESS")

        call.cleanups.append(save)
        # greeting + beep, then record until the caller hangs up (max 120 s)
        await self.sleep(call, 120.0)
        call.cleanups.remove(save)
        await save()
        return 0

    # ----------------------------------------------------------------- dial
    def _member_target(self, interface: str) -> tuple[str, str | None]:
        """``Local/1001@agents/n`` → ("1001", "agents"); ``PJSIP/8001`` → ("8001", None);
        ``PJSIP/13700000001@trunk`` → ("13700000001", None): the number behind the endpoint."""
        m = _LOCAL.match(interface)
        if m:
            return m["exten"], m["context"]
        return interface.partition("/")[2].split("/")[0].split("@")[0], None

    def _make_leg(self, caller: Channel, interface: str, app: str = "AppDial") -> tuple[Channel, Channel | None]:
        """The outgoing channel(s) for a dialled interface, in 05_queue's event order."""
        number, context = self._member_target(interface)
        peer = interface.partition("/")[2]
        if context is not None:
            seq = next(self._local)
            base = f"Local/{number}@{context}-{seq:08x}"
            m1 = self._make_channel(f"{base};1", context, number, linkedid=caller.linkedid, state=0)
            m2 = self._make_channel(f"{base};2", context, number, linkedid=caller.linkedid, state=4)
            self.emit(ev.newchannel(m1))
            self.emit(ev.newchannel(m2))
            m1.cid_num, m1.cid_name = caller.cid_num, caller.cid_name
            self.set_app(m1, app, "(Outgoing Line)")
            self.emit(ev.newcallerid(m1))
            self.setvar(m1, "DIALEDPEERNUMBER", peer)
            self.setvar(m2, "DIALEDPEERNUMBER", peer)
            m2.conn_num, m2.conn_name = caller.cid_num, caller.cid_name
            self.set_callerid(m2, caller.cid_num, caller.cid_name)
            self.emit(ev.chan_event("NewConnectedLine", "call,all", m2))
            self.emit(ev.local_bridge(m1, m2, context, number, optimize=not interface.endswith("/n")))
            return m1, m2
        tech = interface.partition("/")[0]
        # Asterisk names the channel after the endpoint: PJSIP/8001-…, but a number
        # dialled through one is PJSIP/trunk-… (PJSIP/13812345678@trunk).
        endpoint = peer.split("/")[0].rpartition("@")[2] or number
        leg = self._make_channel(f"{tech}/{endpoint}-{next(self._tech):08x}", "default", "s",
                                 linkedid=caller.linkedid, state=0)
        self.emit(ev.newchannel(leg))
        self.set_app(leg, app, "(Outgoing Line)")
        self.set_callerid(leg, caller.cid_num, caller.cid_name)
        self.setvar(leg, "DIALEDPEERNUMBER", peer)
        return leg, None

    def _dialled(self, call: Call, leg: Channel, half: Channel | None) -> None:
        if half is not None:
            leg.exten = "s"
            self.set_app(half, "NoOp", f"agent {half.exten} ringing", 1)
            self.set_app(half, "Wait", "1", 2)
        self.media(call)  # ringing: a Local ;2 caller's Answer() returns now

    async def _ring_leg(self, call: Call, leg: Channel, half: Channel | None, number: str, *,
                        dialing: bool = False) -> str:
        """Ring one leg until answer; returns ANSWER/NOANSWER/BUSY/CHANUNAVAIL. ``dialing``:
        app_dial's leg, which reports its ringing in a DialState (capture 09)."""
        phone = self._phone_for(number)
        if phone.behaviour is Answer.UNREACHABLE:
            return "CHANUNAVAIL"
        if phone.behaviour is Answer.BUSY:
            await self.sleep(call, 0.2)
            return "BUSY"
        if half is None or half.context in self.ringing_contexts:
            # a phone that rings (a Local leg whose dialplan runs Ringing(), capture 09)
            self.set_state(leg, 5)
            if dialing:
                self.emit(ev.dial_state(call.app, leg))
        if phone.behaviour is Answer.NO_ANSWER:
            await self.sleep(call, 3600)
            return "NOANSWER"
        await self.sleep(call, phone.answer_after)
        if half is not None:
            self.set_app(half, "Answer", "", 3)
            self.set_state(half, 6)
        leg.conn_num, leg.conn_name = call.app.cid_num, call.app.cid_name
        self.set_state(leg, 6)
        self.set_app(leg, leg.app, leg.appdata)
        self.emit(ev.chan_event("NewConnectedLine", "call,all", leg))
        return "ANSWER"

    def _drop_leg(self, leg: Channel, half: Channel | None, cause: int, *, requests: bool = False) -> None:
        """Hang a dialled leg up. ``requests``: a Local pair's order in capture 09
        (HangupRequest ;2, Hangup ;1, SoftHangupRequest ;2, Hangup ;2)."""
        if requests and half is not None and not leg.dead and not half.dead:
            self.emit(ev.hangup_request(half, cause))
            self.emit(ev.hangup(leg, cause))
            self._destroy(leg)
            self.emit(ev.soft_hangup_request(half, 16))
            self.emit(ev.hangup(half, cause))
            self._destroy(half)
            return
        for ch in (leg, half):
            if ch is not None and not ch.dead:
                self.emit(ev.hangup(ch, cause))
                self._destroy(ch)

    async def _bridge_call(self, call: Call, leg: Channel, half: Channel | None, number: str,
                           on_agent_hangup: Callable[[], None] | None = None,
                           on_caller_hangup: Cleanup | None = None) -> str:
        """Bridge the caller with an answered leg; returns "caller" or "agent" (who hung up)."""
        caller = call.app
        br = Bridge(str(uuid.uuid4()))
        self.emit(ev.bridge_create(br))
        for ch in (leg, caller):
            br.channels.append(ch)
            ch.bridge = br
            self.emit(ev.bridge_enter(br, ch))
        self.setvar(leg, "BRIDGEPEER", caller.name)
        self.setvar(caller, "BRIDGEPEER", leg.name)
        if half is not None:
            # [agents] plays demo-congrats to the bridged caller, as the capture rig does
            if half.context == "agents":
                self.set_app(half, "Playback", "demo-congrats", 4)
            else:
                self.set_app(half, "Wait", "3600", 4)
        phone = self._phone_for(number)
        agent_done = asyncio.Event()

        async def agent_script() -> None:
            for step in phone.script:
                if isinstance(step, Wait):
                    await self.clock.sleep(step.seconds)
                elif isinstance(step, Press):
                    for d in step.digits:
                        self.emit(ev.dtmf_begin(leg, d))
                        self.emit(ev.dtmf_end(leg, d))
                elif isinstance(step, HangUp):
                    agent_done.set()
                    return

        script = self.spawn(agent_script())

        async def leave_all() -> None:
            self.setvar(caller, "BRIDGEPEER", "")
            self.setvar(leg, "BRIDGEPEER", "")
            for ch in (caller,):
                if ch in br.channels:
                    br.channels.remove(ch)
                    self.emit(ev.bridge_leave(br, ch))
                    ch.bridge = None

        async def member_teardown() -> None:
            if leg in br.channels:
                br.channels.remove(leg)
                self.emit(ev.bridge_leave(br, leg))
            self.emit(ev.bridge_destroy(br))
            if half is not None:
                self.emit(ev.hangup_request(half, 16))
            self.emit(ev.hangup(leg, 16))
            self._destroy(leg)
            if half is not None:
                self._cdr(half)
                self.playback_done(half)
                self.emit(ev.soft_hangup_request(half, 16))
                self.emit(ev.hangup(half, 16))
                self._destroy(half)

        call.post_cleanups.append(member_teardown)
        call.cleanups.append(leave_all)
        if on_caller_hangup is not None:
            call.cleanups.append(on_caller_hangup)  # runs before leave_all (cleanups run last-in first)
        gone = standin_task(call.gone.wait())
        agent = standin_task(agent_done.wait())
        try:
            await asyncio.wait({gone, agent}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            agent.cancel()
            script.cancel()
        if call.gone.is_set():
            self.check(call)
            raise Gone
        # the agent hung up first: the leg leaves, the caller goes on in the dialplan
        call.cleanups.remove(leave_all)
        if on_caller_hangup is not None:
            call.cleanups.remove(on_caller_hangup)
        call.post_cleanups.remove(member_teardown)
        if on_agent_hangup:
            on_agent_hangup()
        if half is not None:
            # the callee's half hangs up, its ;1 leaves the bridge: capture 08's order
            self.emit(ev.soft_hangup_request(half, 16))
            self.emit(ev.hangup_request(leg, 16))
            self.emit(ev.hangup(half, 16))
            self._destroy(half)
        br.channels.remove(leg)
        self.emit(ev.bridge_leave(br, leg))
        if half is None:
            self.emit(ev.hangup(leg, 16))
            self._destroy(leg)
        br.channels.remove(caller)
        self.emit(ev.bridge_leave(br, caller))
        caller.bridge = None
        self.emit(ev.bridge_destroy(br))
        if half is not None:
            self.emit(ev.hangup(leg, 16))
            self._destroy(leg)
        return "agent"

    async def _app_dial(self, call: Call, data: str) -> int:
        """``Dial(A&B&...,timeout)``: every leg rings at once, the first to answer wins
        and the others are cancelled (capture 09). Returns 0 when nobody answered,
        -1 when the answered callee hung up first (capture 08)."""
        ch = call.app
        parts = data.split(",")
        targets = [t for t in parts[0].split("&") if t.strip()]
        try:
            timeout = float(parts[1]) if len(parts) > 1 and parts[1] else 3600.0
        except ValueError:
            timeout = 3600.0
        legs: list[tuple[str, Channel, Channel | None]] = []
        for target in targets:
            number, _ = self._member_target(target)
            leg, half = self._make_leg(ch, target)
            legs.append((number, leg, half))
        for target, (_, leg, half) in zip(targets, legs, strict=True):
            self.emit(ev.dial_begin(ch, leg, target.partition("/")[2]))
            self._dialled(call, leg, half)
        rings: dict[asyncio.Future[Any], tuple[str, Channel, Channel | None]] = {
            standin_task(self._ring_leg(call, leg, half, number, dialing=True)): (number, leg, half)
            for number, leg, half in legs}
        # Dial's timeout, in the stand-in's time: legs still ringing end NOANSWER.
        expiry = standin_task(self.clock.sleep(timeout))
        pending: set[asyncio.Future[Any]] = set(rings)
        winner: tuple[str, Channel, Channel | None] | None = None
        failed: list[tuple[tuple[str, Channel, Channel | None], str]] = []
        try:
            while pending and winner is None and not expiry.done():
                done, _ = await asyncio.wait(pending | {expiry}, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is expiry:
                        continue
                    pending.discard(t)
                    if t.cancelled() or t.exception() is not None:
                        continue
                    if t.result() == "ANSWER" and winner is None:
                        winner = rings[t]
                    elif t.result() != "ANSWER":
                        failed.append((rings[t], str(t.result())))
        finally:
            expiry.cancel()
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Gone):
                    await t
        settled = [w for w in (winner,) if w is not None] + [f for f, _ in failed]
        still = [leg for leg in legs if leg not in settled]  # ringing (or cut short by a hang-up)
        if call.gone.is_set():
            for _, leg, half in still + [w for w in (winner,) if w is not None]:
                self.emit(ev.dial_end(ch, leg, "CANCEL"))
                self._drop_leg(leg, half, 16)
            self.check(call)
            raise Gone()
        for (_, leg, half), status in failed:
            self.emit(ev.dial_end(ch, leg, status))
            self._drop_leg(leg, half, {"BUSY": 17}.get(status, 34))
        if winner is None:
            status = "NOANSWER" if still else (failed[-1][1] if failed else "CHANUNAVAIL")
            for _, leg, _half in still:
                self.emit(ev.dial_end(ch, leg, "NOANSWER"))
            for _, leg, half in still:
                self._drop_leg(leg, half, 0, requests=True)  # capture 09: cause 0 at Dial's timeout
            ch.variables["DIALSTATUS"] = status
            self.emit(ev.varset(ch, "DIALSTATUS", status))
            return 0
        # the others hear "answered elsewhere" (cause 26) before the winner's DialEnd
        for _, leg, half in still:
            self.emit(ev.dial_end(ch, leg, "CANCEL"))
            self._drop_leg(leg, half, 26, requests=True)
        number, leg, half = winner
        self.emit(ev.dial_end(ch, leg, "ANSWER"))
        self.setvar(ch, "DIALEDPEERNAME", leg.name)
        self.setvar(ch, "DIALEDPEERNUMBER", leg.variables.get("DIALEDPEERNUMBER", ""))
        ch.variables["DIALSTATUS"] = "ANSWER"
        self.emit(ev.varset(ch, "DIALSTATUS", "ANSWER"))
        await self._bridge_call(call, leg, half, number)
        # the callee hung up and the caller is still here: Asterisk's Dial returns -1 (capture 08)
        self.setvar(ch, "HANGUPCAUSE", "16")
        return -1

    # ---------------------------------------------------------------- queue
    async def _app_queue(self, call: Call, data: str) -> int:
        ch = call.app
        args = data.split(",")
        q = self.queues.setdefault(args[0], Queue(args[0]))
        try:
            q_timeout = float(args[4]) if len(args) > 4 and args[4] else None
        except ValueError:
            q_timeout = None
        for var in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            self.setvar(ch, var, "")
        if call.origin_reply:
            call.origin_reply()
        q.callers.append(ch)
        position = len(q.callers)
        self.emit(ev.queue_caller("QueueCallerJoin", ch, q.name, position, len(q.callers)))
        joined = self.clock.monotonic()
        deadline = joined + q_timeout if q_timeout else None
        ringing: list[tuple[QueueMember, Channel, Channel | None]] = []

        async def abandon() -> None:
            pos = q.callers.index(ch) + 1 if ch in q.callers else 1
            for member, leg, half in ringing:
                member.ringing = False
                self.emit(ev.dial_end(ch, leg, "CANCEL"))
                self._drop_leg(leg, half, 16)
            ringing.clear()
            if ch in q.callers:
                q.callers.remove(ch)
                q.abandoned += 1
                hold = round(self.clock.monotonic() - joined)
                self.emit(ev.queue_caller_abandon(ch, q.name, pos, position, hold))
                self.emit(ev.queue_caller("QueueCallerLeave", ch, q.name, pos, len(q.callers)))

        call.cleanups.append(abandon)
        while True:
            if deadline is not None and self.clock.monotonic() >= deadline:
                call.cleanups.remove(abandon)
                pos = q.callers.index(ch) + 1
                q.callers.remove(ch)
                self.emit(ev.queue_caller("QueueCallerLeave", ch, q.name, pos, len(q.callers)))
                self.setvar(ch, "QUEUESTATUS", "TIMEOUT")
                return 0
            available = [m for m in q.members.values() if not m.paused and not m.in_call]
            if not available or q.callers[0] is not ch:
                self.media(call)
                await self.sleep(call, 1.0)
                continue
            winner = await self._ring_members(call, q, available, ringing, joined)
            if winner is None:
                await self.sleep(call, self.queue_retry)
                continue
            member, leg, half = winner
            call.cleanups.remove(abandon)
            hold = round(self.clock.monotonic() - joined)
            ring_time = max(0, round(self.clock.monotonic() - leg.created))
            pos = q.callers.index(ch) + 1
            q.callers.remove(ch)
            self.emit(ev.queue_caller("QueueCallerLeave", ch, q.name, pos, len(q.callers)))
            self.setvar(ch, "QUEUEPOSITION", str(pos))
            member.in_call = True
            waited = self.clock.monotonic() - joined
            self.setvar(ch, "QUEUEWAIT", str(int(waited)))
            self.setvar(ch, "QUEUEWAIT_MS", str(int(waited * 1000)))
            self.emit(ev.agent_event("AgentConnect", ch, leg, q.name, member.interface, member.name,
                                     [("HoldTime", str(hold)), ("RingTime", str(ring_time))]))
            ch.variables["MEMBERINTERFACE"] = member.interface
            times = functools.partial(self._queue_times, ch, self.clock.monotonic(), joined)
            call.cleanups.append(times)
            q.holdtime = hold
            call.cdr_early = True
            call.extra_channels.append(leg)
            done = _Completion(self, q, member, ch, leg, hold, self.clock.monotonic())
            number, _ = self._member_target(member.interface)
            await self._bridge_call(call, leg, half, number, on_agent_hangup=functools.partial(done.complete, "agent"),
                                    on_caller_hangup=done.caller_hung_up)
            call.cleanups.remove(times)
            await times()
            self.setvar(ch, "QUEUESTATUS", "")
            return -1  # the member hung up first, the caller is still here: as Dial, -1

    async def _queue_times(self, ch: Channel, answered: float, joined: float) -> None:
        now = self.clock.monotonic()
        self.setvar(ch, "ANSWEREDTIME", str(int(now - answered)))
        self.setvar(ch, "ANSWEREDTIME_MS", str(int((now - answered) * 1000)))
        self.setvar(ch, "DIALEDTIME", str(int(now - joined)))
        self.setvar(ch, "DIALEDTIME_MS", str(int((now - joined) * 1000)))

    async def _ring_members(self, call: Call, q: Queue, members: list[QueueMember],
                            ringing: list[tuple[QueueMember, Channel, Channel | None]],
                            joined: float) -> tuple[QueueMember, Channel, Channel | None] | None:
        ch = call.app
        tasks: dict[asyncio.Future[Any], tuple[QueueMember, Channel, Channel | None]] = {}
        for member in members:
            leg, half = self._make_leg(ch, member.interface, "AppQueue")
            member.ringing = True
            ringing.append((member, leg, half))
            # app_queue's AgentCalled already shows the leg as dialled (exten s, connected
            # line set) while the DialBegin after it still has the fresh one: 05_queue.
            dialled = dataclasses.replace(leg, exten="s" if half is not None else leg.exten,
                                          conn_num=ch.cid_num, conn_name=ch.cid_name)
            self.emit(ev.agent_event("AgentCalled", ch, dialled, q.name, member.interface, member.name))
            self.emit(ev.dial_begin(ch, leg, member.interface))
            self._dialled(call, leg, half)
            number, _ = self._member_target(member.interface)
            tasks[standin_task(self._ring_leg(call, leg, half, number))] = (member, leg, half)
        winner = None
        pending: set[asyncio.Future[Any]] = set(tasks)
        timer: asyncio.Future[Any] = standin_task(self.clock.sleep(self.member_ring_timeout))
        try:
            while pending and winner is None:
                done, _ = await asyncio.wait(pending | {timer}, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is timer:
                        continue
                    pending.discard(t)
                    member, leg, half = tasks[t]
                    if t.exception() is not None:
                        continue
                    if t.result() == "ANSWER" and winner is None:
                        winner = tasks[t]
                    elif t.result() != "ANSWER":
                        member.ringing = False
                        ringing.remove(tasks[t])
                        self.emit(ev.dial_end(ch, leg, t.result()))
                        self._drop_leg(leg, half, 17 if t.result() == "BUSY" else 34)
                if timer.done():
                    break
        finally:
            timer.cancel()
            for t in pending:
                t.cancel()
        if call.gone.is_set():
            self.check(call)
            raise Gone
        for t in pending:
            member, leg, half = tasks[t]
            member.ringing = False
            ringing.remove(tasks[t])
            ring_time = round(self.clock.monotonic() - leg.created)
            self.emit(ev.agent_event("AgentRingNoAnswer", ch, leg, q.name, member.interface, member.name,
                                     [("RingTime", str(ring_time))]))
            self.emit(ev.dial_end(ch, leg, "NOANSWER" if winner is None else "CANCEL"))
            self._drop_leg(leg, half, 16 if winner is None else 26)
        if winner is not None:
            member, leg, half = winner
            member.ringing = False
            ringing.remove(winner)
            self.emit(ev.dial_end(ch, leg, "ANSWER"))
        return winner


@dataclass
class _Completion:
    """AgentComplete for one answered queue call, whoever hangs up."""

    pbx: Pbx
    queue: Queue
    member: QueueMember
    caller: Channel
    leg: Channel
    hold: int
    talk_start: float

    def complete(self, reason: str) -> None:
        pbx, q, member = self.pbx, self.queue, self.member
        talk = round(pbx.clock.monotonic() - self.talk_start)
        q.completed += 1
        q.talktime = talk
        member.in_call = False
        member.calls_taken += 1
        member.last_call = int(pbx.clock.now().timestamp())
        pbx.emit(ev.agent_event("AgentComplete", self.caller, self.leg, q.name, member.interface, member.name,
                                [("HoldTime", str(self.hold)), ("TalkTime", str(talk)), ("Reason", reason)]))

    async def caller_hung_up(self) -> None:
        self.complete("caller")


@dataclass
class OriginateSpec:
    target: str
    context: str | None
    exten: str | None
    priority: str
    application: str | None
    data: str
    cid_num: str
    cid_name: str
    variables: dict[str, str]
    channel_id: str | None
    other_id: str | None
    timeout: float
    action_id: str | None
