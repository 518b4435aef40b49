"""The built-in Asterisk stand-in: an Asterisk 20.20.1 look-alike over real TCP.

    standin = AsteriskStandIn(users={"cc": "ccsecret"}, spool_dir=tmp / "vm",
                              clock=ScaledClock(speed=50))
    await standin.start()           # standin.ami_port is the bound port
    standin.add_phone(Phone("1001", answer_after=2))
    standin.place_call(Caller(number="13812345678", name="王建国",
                              script=[Wait(3), Press("1"), HangUp()]))
    ...
    await standin.stop()

Hooks for tests: ``drop_clients()``, ``restart()``, ``freeze_actions()``,
``send_raw(bytes)``, ``segment_size`` (write events in tiny TCP segments).
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.simulator import events as ev
from callcenter.simulator.ami_server import AmiServer
from callcenter.simulator.astdb import HotlineGuard
from callcenter.simulator.dialplan import Dialplan, standin_dialplan
from callcenter.simulator.errors import StandInConfigError
from callcenter.simulator.events import Fields
from callcenter.simulator.manager_conf import parse_manager_conf
from callcenter.simulator.pbx import Call, Pbx, QueueMember
from callcenter.simulator.scenario import Answer, Caller, HangUp, Phone, Press, Say, Wait
from callcenter.simulator.timing import Clock, ScaledClock, SystemClock
from callcenter.simulator.voicemail import VoicemailSpool

if TYPE_CHECKING:
    from callcenter.settings import Settings

__all__ = [
    "Answer", "AsteriskStandIn", "Call", "Caller", "Dialplan", "HangUp", "Phone", "Press", "Say", "ScaledClock",
    "StandInConfigError", "Wait",
]


class AsteriskStandIn:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        spool_dir: Path,
        clock: Clock | None = None,
        phones: list[Phone] | None = None,
        ivr_transport: str = "asyncagi",
        fastagi_url: str = "agi://127.0.0.1:4573/ivr",
        segment_size: int | None = None,
        mailboxes: list[tuple[str, str, str]] | None = None,
        prompt_seconds: float = 1.0,
        member_ring_timeout: float = 15.0,
        queue_retry: float = 5.0,
        fastagi_close_timeout: float = 30.0,
        record_root: Path | None = None,
        restart_downtime: float = 0.33,
        restart_shutdown_s: float = 1.1,
        restart_boot_s: float = 0.065,
        hotline_context: str = "hotline",
        event_log_size: int = 10_000,
        heartbeat_max_age: float | None = None,
        fallback_dial: str = "",
        fallback_mailbox: str = "8000@default",
        read: dict[str, str] | None = None,
        dialplan: Dialplan | None = None,
        persistent_members: bool = True,
        agi_wait_s: float | None = None,
    ) -> None:
        """``heartbeat_max_age``: model the printed hotline's heartbeat check (``astdb.HotlineGuard``):
        a call to ``hotline_context`` whose ``callcenter/alive`` is missing or older goes to the
        fallback (``Dial(fallback_dial)``, then ``VoiceMail(fallback_mailbox)``); None: plain
        ``AGI(agi:async)`` as in the capture rig. ``restart_*``: the phases of ``restart()``
        (capture 11: refusing ~1.1 s, down ~0.33 s, logins before FullyBooted ~0.065 s).
        ``read``: user → manager.conf ``read=`` (capture 12: a session gets only the events
        of those classes; a user not named reads ``all``). ``dialplan``: the contexts and
        extensions that exist (capture 10: an Originate elsewhere fails as on Asterisk);
        by default the capture rig's plus what ``callcenter asterisk-config`` prints.
        ``agi_wait_s``: the printed ``Set(TIMEOUT(absolute)=...)`` before ``AGI(agi:async)``:
        a call no server takes in time goes to the fallback (exten ``T``).
        ``persistent_members``: queues.conf's ``persistentmembers``; False: a restart loses
        the members added by ``QueueAdd`` (the ones from queues.conf stay)."""
        if ivr_transport not in ("asyncagi", "fastagi"):
            raise StandInConfigError("ivr_transport must be 'asyncagi' or 'fastagi'", field="ivr_transport",
                                     details={"value": ivr_transport})
        self.host = host
        self._port = port
        self.restart_downtime = restart_downtime
        self.restart_shutdown_s = restart_shutdown_s
        self.restart_boot_s = restart_boot_s
        self.persistent_members = persistent_members
        self.clock: Clock = clock or SystemClock()
        self.spool = VoicemailSpool(spool_dir)
        self.pbx = Pbx(clock=self.clock, emit=self._emit, spool=self.spool,
                       phones={p.number: p for p in phones or []}, ivr_transport=ivr_transport,
                       fastagi_url=fastagi_url, prompt_seconds=prompt_seconds,
                       member_ring_timeout=member_ring_timeout, queue_retry=queue_retry,
                       fastagi_close_timeout=fastagi_close_timeout, record_root=record_root,
                       hotline_context=hotline_context,
                       dialplan=dialplan if dialplan is not None else standin_dialplan())
        self.ami = AmiServer(self.pbx, host=host, port=port, users=dict(users or {"cc": "ccsecret"}),
                             mailboxes=list(mailboxes or [("default", "8000", "Front Desk")]),
                             segment_size=segment_size, read=read)
        self.astdb = self.ami.astdb
        if heartbeat_max_age is not None:
            self.pbx.hotline_guard = HotlineGuard(self.astdb, max_age_s=heartbeat_max_age,
                                                  fallback_dial=fallback_dial, mailbox=fallback_mailbox,
                                                  agi_wait_s=agi_wait_s)
        #: the latest events emitted, in order (for tests; bounded so a long demo does not grow)
        self.events: deque[Fields] = deque(maxlen=event_log_size)
        self._restart_task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, index: int = 0, fastagi_script: str = "hotline",
                      **kwargs: Any) -> AsteriskStandIn:
        """A stand-in for ``settings.asterisk[index]``: same port, user, secret,
        hotline context, voicemail spool and FastAGI address as the server expects,
        the ``read=`` classes and the dialplan ``callcenter asterisk-config`` prints for it."""
        from callcenter.ami.heartbeat import agi_wait_s
        from callcenter.asterisk_config import manager_conf

        pbx = settings.asterisk[index]
        printed_user = parse_manager_conf(manager_conf(pbx)).get(pbx.username)
        vm = settings.voicemail
        mailbox = settings.oncall.voicemail_mailbox or (vm.mailboxes[0] if vm.mailboxes else "8000")
        defaults: dict[str, Any] = {
            # the printed [callcenter-hotline] checks the server's heartbeat before AGI(agi:async)
            "heartbeat_max_age": 3 * pbx.heartbeat_interval_s, "fallback_dial": pbx.fallback_dial,
            "agi_wait_s": agi_wait_s(pbx.heartbeat_interval_s),
            "fallback_mailbox": mailbox if "@" in mailbox else f"{mailbox}@{vm.context}",
            "host": pbx.host, "port": pbx.port, "users": {pbx.username: pbx.secret.reveal()},
            "spool_dir": vm.spool_dir, "mailboxes": [(vm.context, m, "") for m in vm.mailboxes],
            "fastagi_url": f"agi://{settings.fastagi.host}:{settings.fastagi.port}/{fastagi_script}",
            "hotline_context": pbx.hotline_context,
            "read": {pbx.username: printed_user.read} if printed_user else None,
            "dialplan": standin_dialplan(settings, pbx),
        }
        defaults.update(kwargs)
        return cls(**defaults)

    # ---------------------------------------------------------------- life
    async def start(self) -> None:
        self._port = await self.ami.start()

    async def stop(self) -> None:
        if self._restart_task is not None:
            self._restart_task.cancel()
        await self.ami.close()
        await self.pbx.close()

    async def __aenter__(self) -> AsteriskStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ami_port(self) -> int:
        return self._port

    def _emit(self, fields: Fields) -> None:
        self.events.append(fields)
        self.ami.broadcast(fields)

    # ------------------------------------------------------------- parties
    def add_phone(self, phone: Phone) -> None:
        self.pbx.phones[phone.number] = phone

    def place_call(self, caller: Caller) -> Call:
        """A scripted caller dials in now."""
        number = caller.number.removeprefix("+")
        if not number.isdigit():
            raise StandInConfigError("caller number must be digits", field="number",
                                     details={"value": caller.number})
        if caller.ivr_transport not in (None, "asyncagi", "fastagi"):
            raise StandInConfigError("ivr_transport must be 'asyncagi' or 'fastagi'", field="ivr_transport",
                                     details={"value": caller.ivr_transport})
        for step in caller.script:
            if not isinstance(step, (Wait, Press, Say, HangUp)):
                raise StandInConfigError("unknown script step", field="script", details={"step": repr(step)})
            if isinstance(step, Wait) and step.seconds < 0:
                raise StandInConfigError("Wait needs seconds >= 0", field="script", details={"step": repr(step)})
            if isinstance(step, Press) and not all(d in "0123456789*#ABCD" for d in step.digits):
                raise StandInConfigError("Press takes DTMF digits only", field="script",
                                         details={"step": repr(step)})
        return self.pbx.place_call(caller)

    def add_member(self, queue: str, interface: str, name: str | None = None, *, paused: bool = False) -> None:
        """Like ``QueueAdd``, without an AMI client."""
        from callcenter.simulator.pbx import Queue

        q = self.pbx.queues.setdefault(queue, Queue(queue))
        q.members[interface] = QueueMember(interface=interface, name=name or interface, state_interface=interface,
                                           paused=paused, membership="static",
                                           login_time=int(self.clock.now().timestamp()))

    @property
    def segment_size(self) -> int | None:
        return self.ami.segment_size

    @segment_size.setter
    def segment_size(self, size: int | None) -> None:
        self.ami.segment_size = size

    # --------------------------------------------------------------- hooks
    def drop_clients(self) -> None:
        """Cut every AMI connection at once (no goodbye)."""
        self.ami.drop_clients()

    def freeze_actions(self, frozen: bool = True, *, include_login: bool = False) -> None:
        """Accept actions but never answer them (a wedged Asterisk). Login and
        Challenge are still answered unless ``include_login``; events keep flowing."""
        self.ami.frozen = frozen
        self.ami.frozen_login = frozen and include_login

    def send_raw(self, data: bytes) -> None:
        """Write bytes as-is to every logged-in client (junk, split frames...)."""
        for s in list(self.ami.sessions):
            if s.authenticated:
                s.send_raw(data)

    def send_event(self, fields: Fields) -> None:
        self.ami.broadcast(fields)

    async def restart(self, downtime: float | None = None, *, then: list[Caller] | None = None,
                      shutdown_s: float | None = None, boot_s: float | None = None) -> None:
        """``core restart now`` as capture 11 shows it: live calls hung up at once
        (SoftHangupRequest Cause 4, Hangup Cause 0); for ``shutdown_s`` every action is
        refused (``Asterisk is shutting down``); ``Shutdown`` (Cleanly, Restart: True), EOF;
        connections refused for ``downtime``; then logins are accepted but app_queue is
        not loaded (QueueStatus unknown, no FullyBooted at login) for ``boot_s``, until
        ``FullyBooted`` (Uptime 0). AstDB is kept; none of the old channels are; queue
        members are kept unless ``persistent_members`` is False.
        ``then`` are callers already in progress when it is back."""
        lifecycle = self.ami.lifecycle
        channels = list(self.pbx.channels.values())
        for ch in channels:
            self._emit(ev.soft_hangup_request(ch, 4))
        for ch in channels:
            ch.dead = True
            self._emit(ev.hangup(ch, 0))
        self.pbx.reset()
        lifecycle.phase = "shutting_down"
        await asyncio.sleep(self.restart_shutdown_s if shutdown_s is None else shutdown_s)
        shutdown: Fields = [("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"),
                            ("Restart", "True")]
        for s in list(self.ami.sessions):
            s.deliver_event(shutdown)
        await asyncio.sleep(0.01)
        await self.ami.stop_listening()
        for s in list(self.ami.sessions):
            await s.close()
        self.ami.sessions.clear()
        self.pbx.reset()
        if not self.persistent_members:
            for q in self.pbx.queues.values():
                q.members = {i: m for i, m in q.members.items() if m.membership == "static"}
        await asyncio.sleep(self.restart_downtime if downtime is None else downtime)
        self.ami.port = self._port
        lifecycle.phase = "booting"
        for caller in then or []:
            self.place_call(caller)
        await self.ami.start()
        await asyncio.sleep(self.restart_boot_s if boot_s is None else boot_s)
        lifecycle.phase = "up"
        self.ami.broadcast([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"),
                            ("Uptime", "0"), ("LastReload", "0")])
