"""AMI event builders with Asterisk 20's exact field order.

Every builder returns a list of ``(key, value)`` pairs ready for
``encode_frame``. The order of keys follows the captures in
``tests/fixtures/asterisk/`` (Asterisk 20.20.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Bridge, Channel

Fields = list[tuple[str, str]]

STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    32: "Circuit/channel congestion",
    34: "Circuit/channel congestion",
    127: "Interworking, unspecified",
}


def agi_quote(text: str) -> str:
    """URL-encode like res_agi's ``ast_uri_encode`` with the http spec:
    unreserved characters and ``()`` kept, everything else %XX of UTF-8."""
    return quote(text, safe="-_.!~*'()")


def channel_fields(ch: Channel, prefix: str = "") -> Fields:
    p = prefix
    return [
        (f"{p}Channel", ch.name),
        (f"{p}ChannelState", str(ch.state)),
        (f"{p}ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
        (f"{p}CallerIDNum", ch.cid_num or "<unknown>"),
        (f"{p}CallerIDName", ch.cid_name or "<unknown>"),
        (f"{p}ConnectedLineNum", ch.conn_num or "<unknown>"),
        (f"{p}ConnectedLineName", ch.conn_name or "<unknown>"),
        (f"{p}Language", ch.language),
        (f"{p}AccountCode", ch.accountcode),
        (f"{p}Context", ch.context),
        (f"{p}Exten", ch.exten),
        (f"{p}Priority", str(ch.priority)),
        (f"{p}Uniqueid", ch.uniqueid),
        (f"{p}Linkedid", ch.linkedid),
    ]


def bridge_fields(br: Bridge) -> Fields:
    return [
        ("BridgeUniqueid", br.uniqueid),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", str(len(br.channels))),
        ("BridgeVideoSourceMode", "none"),
    ]


def event(name: str, privilege: str, *parts: Fields) -> Fields:
    out: Fields = [("Event", name), ("Privilege", privilege)]
    for part in parts:
        out.extend(part)
    return out


def chan_event(name: str, privilege: str, ch: Channel, extra: Fields | None = None) -> Fields:
    return event(name, privilege, channel_fields(ch), extra or [])


def newchannel(ch: Channel) -> Fields:
    return chan_event("Newchannel", "call,all", ch)


def newstate(ch: Channel) -> Fields:
    return chan_event("Newstate", "call,all", ch)


def newcallerid(ch: Channel) -> Fields:
    return chan_event("NewCallerid", "call,all", ch, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])


def newexten(ch: Channel, app: str, data: str) -> Fields:
    return chan_event("Newexten", "dialplan,all", ch,
                      [("Extension", ch.exten), ("Application", app), ("AppData", data)])


def varset(ch: Channel, var: str, value: str) -> Fields:
    return chan_event("VarSet", "dialplan,all", ch, [("Variable", var), ("Value", value)])


def dial_begin(caller: Channel | None, dest: Channel, dialstring: str) -> Fields:
    parts = [channel_fields(caller)] if caller is not None else []
    return event("DialBegin", "call,all", *parts, channel_fields(dest, "Dest"), [("DialString", dialstring)])


def dial_state(caller: Channel, dest: Channel, status: str = "RINGING") -> Fields:
    return event("DialState", "call,all", channel_fields(caller), channel_fields(dest, "Dest"),
                 [("DialStatus", status)])


def dial_end(caller: Channel | None, dest: Channel, status: str) -> Fields:
    parts = [channel_fields(caller)] if caller is not None else []
    return event("DialEnd", "call,all", *parts, channel_fields(dest, "Dest"), [("DialStatus", status)])


def soft_hangup_request(ch: Channel, cause: int) -> Fields:
    return chan_event("SoftHangupRequest", "call,all", ch, [("Cause", str(cause))])


def hangup_request(ch: Channel, cause: int) -> Fields:
    return chan_event("HangupRequest", "call,all", ch, [("Cause", str(cause))])


def hangup(ch: Channel, cause: int) -> Fields:
    return chan_event("Hangup", "call,all", ch,
                      [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))])


def originate_response(action_id: str | None, ch: Channel, context: str, exten: str,
                       reason: int, *, success: bool) -> Fields:
    out: Fields = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
    if action_id is not None:
        out.append(("ActionID", action_id))
    out += [
        ("Response", "Success" if success else "Failure"),
        ("Channel", ch.name),
        ("Context", context),
        ("Exten", exten),
        ("Reason", str(reason)),
        ("Uniqueid", ch.uniqueid if success else "<null>"),
        ("CallerIDNum", ch.cid_num or "<unknown>"),
        ("CallerIDName", ch.cid_name or "<unknown>"),
    ]
    return out


def originate_failed(action_id: str | None, target: str, ch: Channel, *, context: str | None,
                     exten: str | None, application: str | None, data: str, reason: int = 0) -> Fields:
    """The OriginateResponse of a channel that was made and failed (capture 10): the
    requested ``Channel``, ``Application``/``Data`` in place of ``Context``/``Exten``
    when the Originate named an application, the made channel's ``Uniqueid``."""
    out: Fields = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
    if action_id is not None:
        out.append(("ActionID", action_id))
    out += [("Response", "Failure"), ("Channel", target)]
    out += [("Application", application), ("Data", data)] if application else [
        ("Context", context or ""), ("Exten", exten or "")]
    out += [("Reason", str(reason)), ("Uniqueid", ch.uniqueid), ("CallerIDNum", ch.cid_num or "<unknown>"),
            ("CallerIDName", ch.cid_name or "<unknown>")]
    return out


def async_agi_start(ch: Channel, env: str) -> Fields:
    return chan_event("AsyncAGIStart", "agi,all", ch, [("Env", agi_quote(env))])


def async_agi_exec(ch: Channel, result: str, command_id: str | None) -> Fields:
    extra: Fields = [("Result", agi_quote(result))]
    if command_id is not None:
        extra.append(("CommandId", command_id))
    return chan_event("AsyncAGIExec", "agi,all", ch, extra)


def async_agi_end(ch: Channel) -> Fields:
    return chan_event("AsyncAGIEnd", "agi,all", ch)


def agi_exec_start(ch: Channel, command_id: str, command: str) -> Fields:
    return chan_event("AGIExecStart", "agi,all", ch, [("CommandId", command_id), ("Command", command)])


def agi_exec_end(ch: Channel, command_id: str, command: str, code: int, result: str) -> Fields:
    return chan_event("AGIExecEnd", "agi,all", ch, [
        ("CommandId", command_id), ("Command", command), ("ResultCode", str(code)), ("Result", result)])


def dtmf_begin(ch: Channel, digit: str) -> Fields:
    return chan_event("DTMFBegin", "dtmf,all", ch, [("Digit", digit), ("Direction", "Received")])


def dtmf_end(ch: Channel, digit: str, duration_ms: int = 100) -> Fields:
    return chan_event("DTMFEnd", "dtmf,all", ch,
                      [("Digit", digit), ("DurationMs", str(duration_ms)), ("Direction", "Received")])


def bridge_create(br: Bridge) -> Fields:
    return event("BridgeCreate", "call,all", bridge_fields(br))


def bridge_destroy(br: Bridge) -> Fields:
    return event("BridgeDestroy", "call,all", bridge_fields(br))


def bridge_enter(br: Bridge, ch: Channel) -> Fields:
    return event("BridgeEnter", "call,all", bridge_fields(br), channel_fields(ch))


def bridge_leave(br: Bridge, ch: Channel) -> Fields:
    return event("BridgeLeave", "call,all", bridge_fields(br), channel_fields(ch))


def queue_caller(name: str, ch: Channel, queue: str, position: int, count: int) -> Fields:
    return chan_event(name, "agent,all", ch,
                      [("Queue", queue), ("Position", str(position)), ("Count", str(count))])


def queue_caller_abandon(ch: Channel, queue: str, position: int, original: int, hold: int) -> Fields:
    return chan_event("QueueCallerAbandon", "agent,all", ch, [
        ("Queue", queue), ("Position", str(position)), ("OriginalPosition", str(original)),
        ("HoldTime", str(hold))])


def agent_event(name: str, caller: Channel, member_ch: Channel, queue: str, interface: str,
                member_name: str, extra: Fields | None = None) -> Fields:
    return event(name, "agent,all", channel_fields(caller), channel_fields(member_ch, "Dest"),
                 [("Queue", queue), ("Interface", interface), ("MemberName", member_name)], extra or [])


def message_waiting(ch: Channel | None, mailbox: str, new: int, old: int) -> Fields:
    parts = [channel_fields(ch)] if ch is not None else []
    return event("MessageWaiting", "call,all", *parts, [
        ("Mailbox", mailbox), ("Waiting", "1" if new else "0"), ("New", str(new)), ("Old", str(old))])


def local_bridge(one: Channel, two: Channel, context: str, exten: str, *, optimize: bool = True) -> Fields:
    return event("LocalBridge", "call,all", channel_fields(one, "LocalOne"), channel_fields(two, "LocalTwo"),
                 [("Context", context), ("Exten", exten), ("LocalOptimization", "Yes" if optimize else "No")])


def cdr(ch: Channel, *, dest_channel: str, end: str, duration: int, billable: int) -> Fields:
    cid = f'"{ch.cid_name}" <{ch.cid_num}>' if ch.cid_name else f"<{ch.cid_num}>"
    return event("Cdr", "cdr,all", [
        ("AccountCode", ch.accountcode),
        ("Source", ch.cid_num),
        ("Destination", ch.exten),
        ("DestinationContext", ch.context),
        ("CallerID", cid),
        ("Channel", ch.name),
        ("DestinationChannel", dest_channel),
        ("LastApplication", ch.app),
        ("LastData", ch.appdata),
        ("StartTime", ch.start_text),
        ("AnswerTime", ch.answer_text),
        ("EndTime", end),
        ("Duration", str(duration)),
        ("BillableSeconds", str(billable)),
        ("Disposition", "ANSWERED" if ch.answered_at is not None else "NO ANSWER"),
        ("AMAFlags", "DOCUMENTATION"),
        ("UniqueID", ch.uniqueid),
        ("UserField", ""),
    ])
