"""Live calls from AMI events: pure (frames in, state + domain events out).

A call is every channel sharing one ``Linkedid``; its primary channel is the
one whose ``Uniqueid`` is the ``Linkedid`` (else the first seen). The tracker
keeps who called (mind ``<unknown>`` in the first ``Newchannel``: the name
arrives later with ``NewCallerid``/``DialBegin``/``Newstate``), the DID, the
state (ringing → ivr → queued → ringing_agent → answered → ended), who was
rung, who answered, and timestamps, and publishes ``call.*`` and
``voicemail.left`` domain events through the ``publish`` callable it is given.

An outgoing call (its primary channel made Down: an Originate such as a page or
a click-to-call) is announced only once it gets somewhere (answered, IVR, queue,
a ring, a message); one that ends before (capture 10's missing extension, a page
nobody answers) publishes nothing: the paging audit has the attempt, and it is
no owner's abandoned call in the call log or on the wall (``failed_originates``
counts them).

No I/O and no clock of its own: ``handle(frame, now)`` is all it needs, so a
recorded capture replays to the same states and events every time. After a
(re)connect, ``apply_snapshot`` corrects the state from what Asterisk reports
(``CoreShowChannels``, ``QueueStatus``, ``MailboxCount``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from callcenter.ami.parser import Frame
from callcenter.bus import DomainEvent
from callcenter.logs import bind_call

log = logging.getLogger(__name__)

Publish = Callable[[DomainEvent], None]
Headers = dict[str, str]

UNKNOWN = {"", "<unknown>", "unknown", "anonymous", "<none>"}
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;\d)?$")
_MOBILE = re.compile(r"^(?:\+?86|0)?1[3-9]\d{9}$")


class CallState(StrEnum):
    RINGING = "ringing"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING_AGENT = "ringing_agent"
    ANSWERED = "answered"
    ENDED = "ended"


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    EMERGENCY = "emergency"
    IVR_ONLY = "ivr_only"


def known(value: str | None) -> str | None:
    """``<unknown>`` and friends are no value."""
    if value is None or value.strip().lower() in UNKNOWN:
        return None
    return value


def target_of(interface: str) -> tuple[str, str]:
    """``PJSIP/1001-0000002a`` / ``Local/1001@agents/n`` / ``PJSIP/138...@trunk``
    → (number or extension, kind: ``extension`` | ``mobile`` | ``other``)."""
    base = _CHANNEL_SUFFIX.sub("", interface.strip())
    _, _, rest = base.partition("/")
    rest = rest or base
    ident = re.split(r"[@/;,]", rest, maxsplit=1)[0]
    if _MOBILE.match(ident):
        return ident, "mobile"
    if ident.isdigit():
        return ident, "extension"
    return ident or base, "other"


def channel_base(name: str) -> str:
    return _CHANNEL_SUFFIX.sub("", name)


@dataclass(slots=True)
class ChannelInfo:
    uniqueid: str
    name: str
    linkedid: str
    context: str = ""
    exten: str = ""
    up: bool = False
    bridge: str | None = None
    seen_at: datetime | None = None


@dataclass(slots=True)
class Call:
    linkedid: str
    uniqueid: str
    asterisk: str
    community: str | None
    started_at: datetime
    caller_number: str | None = None
    caller_name: str | None = None
    did: str | None = None
    state: CallState = CallState.RINGING
    queue: str | None = None
    channels: dict[str, ChannelInfo] = field(default_factory=dict)
    ringing: dict[str, dict[str, Any]] = field(default_factory=dict)
    rung: list[dict[str, Any]] = field(default_factory=list)
    answered_by: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ivr_path: list[str] = field(default_factory=list)
    voicemail: str | None = None
    emergency: bool = False
    abandoned_published: bool = False
    started_published: bool = False
    hangup_cause: str | None = None
    transfers: list[dict[str, Any]] = field(default_factory=list)
    was_ivr: bool = False
    #: the primary channel was made Down: an outgoing channel (an Originate: a page,
    #: click-to-call), not a caller ringing in (a trunk's channel starts Ring)
    outgoing: bool = False
    primary_up: bool = False

    @property
    def reached(self) -> bool:
        """Whether the call got anywhere: its primary channel answered, it ran the
        IVR, queued, rang someone or left a message. An outgoing call that never
        did is a failed Originate (capture 10, or nobody answering a page)."""
        return bool(self.primary_up or self.was_ivr or self.ivr_path or self.queue or self.rung
                    or self.voicemail or self.answered_at or self.emergency)

    @property
    def wait_s(self) -> float | None:
        end = self.answered_at or self.ended_at
        return round((end - self.started_at).total_seconds(), 3) if end else None

    @property
    def talk_s(self) -> float | None:
        if self.answered_at and self.ended_at:
            return round((self.ended_at - self.answered_at).total_seconds(), 3)
        return None

    @property
    def outcome(self) -> Outcome | None:
        if self.state is not CallState.ENDED:
            return None
        if self.emergency:
            return Outcome.EMERGENCY
        if self.answered_at is not None:
            return Outcome.ANSWERED
        if self.voicemail:
            return Outcome.VOICEMAIL
        if self.queue or self.rung:
            return Outcome.ABANDONED
        if self.ivr_path or self.was_ivr:
            return Outcome.IVR_ONLY
        return Outcome.ABANDONED

    def to_json(self) -> dict[str, Any]:
        return {
            "linkedid": self.linkedid,
            "uniqueid": self.uniqueid,
            "asterisk": self.asterisk,
            "community": self.community,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "did": self.did,
            "state": self.state.value,
            "queue": self.queue,
            "ringing": sorted(t["target"] for t in self.ringing.values()),
            "rung": list(self.rung),
            "answered_by": self.answered_by,
            "started_at": self.started_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ivr_path": list(self.ivr_path),
            "voicemail": self.voicemail,
            "wait_s": self.wait_s,
            "talk_s": self.talk_s,
            "outcome": self.outcome.value if self.outcome else None,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Asterisk reports after a (re)connect."""

    channels: tuple[Frame, ...] = ()
    """``CoreShowChannel`` events."""
    queue_entries: tuple[Frame, ...] = ()
    """``QueueEntry`` events from ``QueueStatus``."""
    mailboxes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """mailbox → (new, old) from ``MailboxCount``."""
    requested_at: datetime | None = None
    """When the snapshot was asked for: calls and channels first seen after
    that (from live events racing the snapshot) are kept as they are."""


class CallTracker:
    """Live calls of one Asterisk."""

    def __init__(self, asterisk: str, publish: Publish, *, community: str | None = None,
                 keep_ended: int = 200) -> None:
        self.asterisk = asterisk
        self.community = community
        self._publish = publish
        self.calls: dict[str, Call] = {}
        self._by_uniqueid: dict[str, str] = {}
        self.ended: list[Call] = []
        self._keep_ended = keep_ended
        self.mailboxes: dict[str, tuple[int, int]] = {}
        self.skipped = 0
        #: outgoing calls that ended without getting anywhere (not published)
        self.failed_originates = 0
        self._handlers: dict[str, Callable[[Headers, datetime], None]] = {
            "Newchannel": self._newchannel,
            "Newstate": self._update_caller_ev,
            "NewCallerid": self._update_caller_ev,
            "NewConnectedLine": self._update_caller_ev,
            "Newexten": self._newexten,
            "AsyncAGIStart": self._agi,
            "AGIExecStart": self._agi,
            "DialBegin": self._dialbegin,
            "DialEnd": self._dialend,
            "BridgeEnter": self._bridgeenter,
            "BridgeLeave": self._bridgeleave,
            "Hangup": self._hangup,
            "QueueCallerJoin": self._queue_join,
            "QueueCallerLeave": self._queue_leave,
            "QueueCallerAbandon": self._queue_abandon,
            "AgentCalled": self._agent_called,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._noop_update,
            "AgentRingNoAnswer": self._agent_noanswer,
            "BlindTransfer": self._blind_transfer,
            "AttendedTransfer": self._attended_transfer,
            "MessageWaiting": self._message_waiting,
        }

    # ------------------------------------------------------------------ API
    def live(self) -> list[Call]:
        return sorted(self.calls.values(), key=lambda c: c.started_at)

    def get(self, linkedid: str) -> Call | None:
        return self.calls.get(linkedid)

    def call_for_uniqueid(self, uniqueid: str) -> Call | None:
        lid = self._by_uniqueid.get(uniqueid)
        return self.calls.get(lid) if lid else None

    def handle(self, frame: Frame, now: datetime) -> None:
        """Apply one AMI event. Unknown events are ignored; a malformed known
        event is logged and skipped."""
        name = frame.event
        if name is None:
            return
        handler = self._handlers.get(name)
        if handler is None:
            return
        if name == "Newexten" and frame.get("Application") not in ("AGI", "VoiceMail"):
            return  # the commonest event: answered from the frame's text alone
        if name == "AGIExecStart":
            # One per AGI command: only the first of a call can change anything.
            seen = self.call_for_uniqueid(frame.get("Uniqueid") or "")
            if seen is None or seen.was_ivr:
                return
        try:
            handler(dict(frame.headers), now)
        except (KeyError, ValueError) as exc:
            self.skipped += 1
            with bind_call(pbx=self.asterisk, linkedid=frame.get("Linkedid"),
                           uniqueid=frame.get("Uniqueid")):
                log.warning("%s: skipped malformed %s event (%s)", self.asterisk, name, exc)

    def record_ivr_choice(self, linkedid: str, step: str, now: datetime) -> None:
        """The IVR reports a step (menu key, branch). Publishes ``call.ivr_choice``."""
        call = self.calls.get(linkedid) or self.call_for_uniqueid(linkedid)
        if call is None:
            return
        call.ivr_path.append(step)
        if call.state is CallState.RINGING:
            self._set_state(call, CallState.IVR, now)
        self._emit("call.ivr_choice", call, now, step=step, ivr_path=list(call.ivr_path))

    def mark_emergency(self, linkedid: str) -> None:
        """The IVR routed this call to emergency paging (outcome ``emergency``)."""
        call = self.calls.get(linkedid) or self.call_for_uniqueid(linkedid)
        if call is not None:
            call.emergency = True

    # ------------------------------------------------------------- internals
    def _emit(self, name: str, call: Call | None, now: datetime, **extra: Any) -> None:
        data: dict[str, Any] = {}
        if call is not None:
            data = {
                "linkedid": call.linkedid,
                "uniqueid": call.uniqueid,
                "asterisk": call.asterisk,
                "community": call.community,
                "caller_number": call.caller_number,
                "caller_name": call.caller_name,
                "did": call.did,
                "state": call.state.value,
                "queue": call.queue,
                "started_at": call.started_at,
                # an Originate (click-to-call, a page): its "caller" is whom it dials
                "outgoing": call.outgoing,
            }
        else:
            data = {"asterisk": self.asterisk, "community": self.community}
        data.update(extra)
        self._publish(DomainEvent(name, data, at=now))

    def _maybe_started(self, call: Call, now: datetime, *, force: bool = False) -> None:
        if call.started_published:
            return
        if call.outgoing and not call.reached:
            return  # an Originate still trying: not a call until it gets somewhere
        if force or call.caller_number or call.state is not CallState.RINGING:
            call.started_published = True
            self._emit("call.started", call, now)

    def _set_state(self, call: Call, state: CallState, now: datetime) -> None:
        if call.state is state or call.state is CallState.ENDED:
            return
        if call.state is CallState.ANSWERED and state is not CallState.ENDED:
            return  # an answered call stays answered until it ends
        call.state = state
        self._maybe_started(call, now, force=True)

    def _call_of(self, h: Headers) -> Call | None:
        uid = h.get("Uniqueid")
        if uid:
            lid = self._by_uniqueid.get(uid)
            if lid:
                return self.calls.get(lid)
        lid = h.get("Linkedid")
        return self.calls.get(lid) if lid else None

    def _is_primary(self, call: Call, uniqueid: str | None) -> bool:
        return uniqueid is not None and uniqueid == call.uniqueid

    def _update_caller(self, call: Call, num: str | None, name: str | None) -> None:
        num, name = known(num), known(name)
        if num and num != call.caller_number:
            call.caller_number = num
        if name and name != call.caller_name:
            call.caller_name = name

    def _newchannel(self, h: Headers, now: datetime) -> None:
        uid = h["Uniqueid"]
        lid = h.get("Linkedid") or uid
        chan = ChannelInfo(uid, h.get("Channel", ""), lid, h.get("Context", ""),
                           h.get("Exten", ""), up=h.get("ChannelState") == "6", seen_at=now)
        call = self.calls.get(lid)
        if call is None:
            call = Call(linkedid=lid, uniqueid=uid,
                        asterisk=self.asterisk, community=self.community, started_at=now)
            self.calls[lid] = call
            exten = chan.exten
            if exten and exten not in ("s", "h", "i", "t") and exten[0] in "+0123456789":
                call.did = exten
        elif uid == lid and call.uniqueid != lid:
            call.uniqueid = uid
        call.channels[uid] = chan
        self._by_uniqueid[uid] = lid
        if self._is_primary(call, uid):
            call.outgoing = h.get("ChannelState") == "0"
            call.primary_up = chan.up
            # Not announced yet: the first Newchannel often says <unknown> for
            # the name, which follows in the next event (NewCallerid, DialBegin).
            self._update_caller(call, h.get("CallerIDNum"), h.get("CallerIDName"))

    def _update_caller_ev(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        uid = h.get("Uniqueid")
        chan = call.channels.get(uid or "")
        if chan is not None and h.get("ChannelState") == "6":
            chan.up = True
        if self._is_primary(call, uid):
            call.primary_up = call.primary_up or h.get("ChannelState") == "6"
            self._update_caller(call, h.get("CallerIDNum"), h.get("CallerIDName"))
            self._maybe_started(call, now)

    def _noop_update(self, h: Headers, now: datetime) -> None:
        self._update_caller_ev(h, now)

    def _newexten(self, h: Headers, now: datetime) -> None:
        app = h.get("Application", "")
        if app == "AGI":
            self._agi(h, now)
        elif app == "VoiceMail":
            call = self._call_of(h)
            if call is not None and call.voicemail is None:
                call.voicemail = (h.get("AppData") or "").split(",", 1)[0] or "voicemail"

    def _agi(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        self._update_caller_ev(h, now)
        call.was_ivr = True
        if call.state in (CallState.RINGING,):
            self._set_state(call, CallState.IVR, now)

    def _dialbegin(self, h: Headers, now: datetime) -> None:
        dest_uid = h.get("DestUniqueid")
        call = self._call_of(h) if h.get("Uniqueid") else None
        if call is None and dest_uid:
            dcall = self.call_for_uniqueid(dest_uid)
            if dcall is not None and self._is_primary(dcall, dest_uid):
                # An originate dialling the caller leg itself: caller info only.
                self._update_caller(dcall, h.get("DestCallerIDNum"), h.get("DestCallerIDName"))
                self._maybe_started(dcall, now)
            return
        if call is None or not dest_uid or self._is_primary(call, dest_uid):
            return
        if self._is_primary(call, h.get("Uniqueid")):
            self._update_caller(call, h.get("CallerIDNum"), h.get("CallerIDName"))
        if dest_uid in call.ringing:
            return  # already announced by AgentCalled
        interface = h.get("DialString") or channel_base(h.get("DestChannel", ""))
        self._ring(call, dest_uid, interface, now, kind=None, member=None, queue=None)

    def _ring(self, call: Call, dest_uid: str, interface: str, now: datetime, *,
              kind: str | None, member: str | None, queue: str | None) -> None:
        ident, ikind = target_of(interface)
        same = next((t for t in call.ringing.values() if t["target"] == ident), None)
        if same is not None:
            # The same person rung again through another leg (a queue member's
            # Local channel dialling the phone): one ring, not two.
            call.ringing[dest_uid] = same
            return
        target = {
            "target": ident,
            "kind": kind or ikind,
            "interface": interface,
            "member_name": member,
            "queue": queue,
            "at": now.isoformat(),
        }
        call.ringing[dest_uid] = target
        call.rung.append(target)
        if call.state is not CallState.ANSWERED:
            self._set_state(call, CallState.RINGING_AGENT, now)
        self._maybe_started(call, now, force=True)
        self._emit("call.ringing", call, now, target=ident, kind=target["kind"],
                   interface=interface, member_name=member, queue=queue or call.queue,
                   dest_uniqueid=dest_uid)

    def _dialend(self, h: Headers, now: datetime) -> None:
        dest_uid = h.get("DestUniqueid") or ""
        call = self._call_of(h) if h.get("Uniqueid") else None
        if call is None or self._is_primary(call, dest_uid):
            return
        status = h.get("DialStatus", "")
        target = call.ringing.get(dest_uid)
        if status == "ANSWER":
            who = (target or {}).get("member_name") or (target or {}).get("target") \
                or target_of(h.get("DestChannel", ""))[0]
            self._answer(call, who, now)
        call.ringing.pop(dest_uid, None)
        if status != "ANSWER" and call.state is CallState.RINGING_AGENT and not call.ringing:
            # Nobody rings any more: back to waiting in the queue (or plain ringing).
            call.state = CallState.QUEUED if call.queue else CallState.RINGING

    def _answer(self, call: Call, who: str | None, now: datetime) -> None:
        if call.answered_at is not None:
            return
        call.answered_at = now
        call.answered_by = who
        self._set_state(call, CallState.ANSWERED, now)
        call.ringing.clear()
        self._emit("call.answered", call, now, answered_by=who, wait_s=call.wait_s,
                   answered_at=now)

    def _bridgeenter(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        chan = call.channels.get(h.get("Uniqueid", ""))
        if chan is not None:
            chan.bridge = h.get("BridgeUniqueid")

    def _bridgeleave(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        chan = call.channels.get(h.get("Uniqueid", ""))
        if chan is not None:
            chan.bridge = None

    def _queue_join(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        self._update_caller_ev(h, now)
        call.queue = h.get("Queue") or call.queue
        self._set_state(call, CallState.QUEUED, now)

    def _queue_leave(self, h: Headers, now: datetime) -> None:
        self._update_caller_ev(h, now)

    def _queue_abandon(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None or call.abandoned_published:
            return
        call.abandoned_published = True
        call.queue = h.get("Queue") or call.queue
        self._emit("call.abandoned", call, now, position=h.get("Position"),
                   original_position=h.get("OriginalPosition"), hold_time=h.get("HoldTime"),
                   wait_s=round((now - call.started_at).total_seconds(), 3))

    def _agent_called(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        dest_uid = h.get("DestUniqueid") or h.get("DestChannel") or h.get("Interface", "")
        if dest_uid in call.ringing:
            return
        call.queue = h.get("Queue") or call.queue
        self._ring(call, dest_uid, h.get("Interface") or h.get("DestChannel", ""), now,
                   kind="agent", member=known(h.get("MemberName")), queue=h.get("Queue"))

    def _agent_connect(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        member = known(h.get("MemberName"))
        if call.answered_at is None:
            self._answer(call, member or target_of(h.get("Interface", ""))[0], now)
        elif member:
            call.answered_by = member

    def _agent_noanswer(self, h: Headers, now: datetime) -> None:
        call = self._call_of(h)
        if call is None:
            return
        call.ringing.pop(h.get("DestUniqueid", ""), None)
        if call.state is CallState.RINGING_AGENT and not call.ringing:
            call.state = CallState.QUEUED

    def _blind_transfer(self, h: Headers, now: datetime) -> None:
        uid = h.get("TransfereeUniqueid") or h.get("TransfererUniqueid") or ""
        call = self.call_for_uniqueid(uid)
        if call is None:
            return
        to = h.get("Extension", "")
        info = {"kind": "blind", "from": known(h.get("TransfererCallerIDNum")),
                "to": to, "context": h.get("Context"), "at": now.isoformat()}
        call.transfers.append(info)
        self._emit("call.transferred", call, now, transfer_kind="blind",
                   transferred_from=info["from"], transferred_to=to)

    def _attended_transfer(self, h: Headers, now: datetime) -> None:
        uid = (h.get("TransfereeUniqueid") or h.get("OrigTransfererUniqueid")
               or h.get("SecondTransfererUniqueid") or "")
        call = self.call_for_uniqueid(uid)
        if call is None:
            return
        to = (known(h.get("TransferTargetCallerIDNum"))
              or known(h.get("SecondTransfererCallerIDNum"))
              or target_of(h.get("SecondTransfererChannel", ""))[0])
        info = {"kind": "attended", "from": known(h.get("OrigTransfererCallerIDNum")),
                "to": to, "at": now.isoformat()}
        call.transfers.append(info)
        if to:
            call.answered_by = to
        self._emit("call.transferred", call, now, transfer_kind="attended",
                   transferred_from=info["from"], transferred_to=to)

    def _message_waiting(self, h: Headers, now: datetime) -> None:
        mailbox = h.get("Mailbox", "")
        try:
            new, old = int(h.get("New", "0") or 0), int(h.get("Old", "0") or 0)
        except ValueError:
            new, old = 0, 0
        before = self.mailboxes.get(mailbox)
        self.mailboxes[mailbox] = (new, old)
        call = self._call_of(h) if h.get("Uniqueid") else None
        if call is not None:
            call.voicemail = mailbox
        if call is not None or (before is not None and new > before[0]):
            self._emit("voicemail.left", call, now, mailbox=mailbox, new=new, old=old,
                       count=new, linkedid=call.linkedid if call else None)

    def _hangup(self, h: Headers, now: datetime) -> None:
        uid = h.get("Uniqueid", "")
        lid = self._by_uniqueid.pop(uid, None) or h.get("Linkedid")
        call = self.calls.get(lid) if lid else None
        if call is None:
            return
        call.channels.pop(uid, None)
        call.ringing.pop(uid, None)
        if self._is_primary(call, uid):
            call.hangup_cause = h.get("Cause-txt") or h.get("Cause")
            self._update_caller(call, h.get("CallerIDNum"), h.get("CallerIDName"))
        if not call.channels:
            self._end(call, now)

    def _end(self, call: Call, now: datetime, *, resynced: bool = False) -> None:
        if call.outgoing and not call.reached and not call.started_published:
            # A failed Originate (a page nobody took, a missing extension): the paging
            # audit has the attempt; it is no owner's abandoned call in the log or on the wall.
            self.calls.pop(call.linkedid, None)
            for uid in list(call.channels):
                self._by_uniqueid.pop(uid, None)
            self.failed_originates += 1
            log.debug("%s: outgoing %s ended without being answered", self.asterisk, call.linkedid)
            return
        self._maybe_started(call, now, force=True)
        was = call.state
        call.state = CallState.ENDED
        call.ended_at = now
        call.ringing.clear()
        self.calls.pop(call.linkedid, None)
        for uid in list(call.channels):
            self._by_uniqueid.pop(uid, None)
        outcome = call.outcome
        if (outcome is Outcome.ABANDONED and not call.abandoned_published):
            call.abandoned_published = True
            self._emit("call.abandoned", call, now, wait_s=call.wait_s,
                       previous_state=was.value)
        self._emit("call.ended", call, now, **self._summary(call), resynced=resynced)
        self.ended.append(call)
        del self.ended[:-self._keep_ended]

    @staticmethod
    def _summary(call: Call) -> dict[str, Any]:
        return {
            "outcome": call.outcome.value if call.outcome else None,
            "answered_by": call.answered_by,
            "answered_at": call.answered_at,
            "ended_at": call.ended_at,
            "wait_s": call.wait_s,
            "talk_s": call.talk_s,
            "rung": [dict(r) for r in call.rung],
            "ivr_path": list(call.ivr_path),
            "voicemail": call.voicemail,
            "hangup_cause": call.hangup_cause,
        }

    # --------------------------------------------------------------- resync
    def apply_snapshot(self, snap: Snapshot, now: datetime) -> None:
        """Correct the live state from what Asterisk reports now: calls that
        ended while we were away are closed, calls we missed are picked up."""
        by_lid: dict[str, list[Headers]] = {}
        for f in snap.channels:
            h = dict(f.headers)
            uid = h.get("Uniqueid")
            if not uid:
                continue
            by_lid.setdefault(h.get("Linkedid") or uid, []).append(h)
        cutoff = snap.requested_at

        def older(at: datetime | None) -> bool:
            return cutoff is None or at is None or at < cutoff

        for lid, gone in list(self.calls.items()):
            if lid not in by_lid and older(gone.started_at):
                self._end(gone, now, resynced=True)
        for lid, chans in by_lid.items():
            known_call = self.calls.get(lid)
            if known_call is None:
                self._pick_up(lid, chans, now)
                continue
            current = {h["Uniqueid"] for h in chans}
            for uid, chan in list(known_call.channels.items()):
                if uid not in current and older(chan.seen_at):
                    known_call.channels.pop(uid, None)
                    self._by_uniqueid.pop(uid, None)
                    known_call.ringing.pop(uid, None)
            for h in chans:
                if h["Uniqueid"] not in known_call.channels:
                    self._add_channel(known_call, h)
        for f in snap.queue_entries:
            h = dict(f.headers)
            queued = self._call_of(h)
            if queued is not None and queued.answered_at is None:
                queued.queue = h.get("Queue") or queued.queue
                if queued.state in (CallState.RINGING, CallState.IVR):
                    queued.state = CallState.QUEUED
        for mailbox, (new, old) in snap.mailboxes.items():
            before = self.mailboxes.get(mailbox)
            self.mailboxes[mailbox] = (new, old)
            if before is not None and new > before[0]:
                self._emit("voicemail.left", None, now, mailbox=mailbox, new=new, old=old,
                           count=new, linkedid=None, resynced=True)

    def _add_channel(self, call: Call, h: Headers) -> None:
        uid = h["Uniqueid"]
        call.channels[uid] = ChannelInfo(uid, h.get("Channel", ""), call.linkedid,
                                         h.get("Context", ""), h.get("Exten", ""),
                                         up=h.get("ChannelState") == "6",
                                         bridge=h.get("BridgeId") or None, seen_at=None)
        self._by_uniqueid[uid] = call.linkedid

    def _pick_up(self, lid: str, chans: list[Headers], now: datetime) -> None:
        primary = next((h for h in chans if h["Uniqueid"] == lid), chans[0])
        age = _duration(primary.get("Duration"))
        call = Call(linkedid=lid, uniqueid=primary["Uniqueid"], asterisk=self.asterisk,
                    community=self.community, started_at=now - age)
        self.calls[lid] = call
        for h in chans:
            self._add_channel(call, h)
        self._update_caller(call, primary.get("CallerIDNum"), primary.get("CallerIDName"))
        app = primary.get("Application", "")
        bridge = primary.get("BridgeId") or None
        partners = [h for h in chans if h is not primary and bridge
                    and h.get("BridgeId") == bridge]
        if app == "Queue":
            call.queue = (primary.get("ApplicationData") or "").split(",", 1)[0] or None
        if partners:
            call.state = CallState.ANSWERED
            call.answered_at = now
            call.answered_by = target_of(partners[0].get("Channel", ""))[0]
        elif app == "Queue":
            call.state = CallState.QUEUED
        elif app == "AGI":
            call.state = CallState.IVR
            call.was_ivr = True
        elif app in ("Dial", "AppDial"):
            call.state = CallState.RINGING_AGENT
        call.started_published = True
        self._emit("call.started", call, now, resynced=True)


def _duration(value: str | None) -> timedelta:
    """``HH:MM:SS`` from CoreShowChannel."""
    if not value:
        return timedelta(0)
    try:
        parts = [int(p) for p in value.split(":")]
    except ValueError:
        return timedelta(0)
    while len(parts) < 3:
        parts.insert(0, 0)
    return timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])


def replay(frames: Iterable[Frame], tracker: CallTracker, start: datetime,
           step: timedelta = timedelta(seconds=1)) -> None:
    """Feed recorded events with a synthetic clock (tests, benchmarks)."""
    now = start
    for f in frames:
        if f.kind == "event":
            tracker.handle(f, now)
            now += step
