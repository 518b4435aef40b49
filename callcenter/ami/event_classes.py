"""Each AMI event's class (manager.conf ``read=``), as Asterisk 20 sends it.

Asterisk gives every event one class (``Privilege: call,all``: the class, then
``all``, which every class belongs to) and delivers it only to sessions whose
user's ``read=`` holds that class and whose ``Events:`` (Login, or the
``Events`` action) allows it too. Replies to a session's own actions
(``QueueStatus``'s ``QueueMember`` ...) are not events in this sense and
arrive whatever ``read=`` says.

One table for the server's ``read=`` (tests/cli/test_asterisk_config.py checks
the printed classes are exactly those of the events the server handles) and the
stand-in's filtering (``callcenter/simulator/ami_server.py``). The classes are
the ``Privilege:`` headers of the real captures (tests/fixtures/asterisk/full/,
checked by tests/ami/test_event_classes.py) and, for events no capture shows,
Asterisk's AMI event documentation (app_queue's member events: agent; bridge
transfers: call; RTCP: reporting; UserEvent: user).
"""

from __future__ import annotations

#: the classes manager.conf knows (main/manager.c ``perms``), ``all`` aside
CLASSES = ("system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
           "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message")

EVENT_CLASSES: dict[str, str] = {
    # system
    "FullyBooted": "system", "Shutdown": "system", "Reload": "system",
    # call: channels, dialling, bridges, transfers, mailboxes, Originate's outcome
    "Newchannel": "call", "Newstate": "call", "NewCallerid": "call", "NewConnectedLine": "call",
    "Hangup": "call", "HangupRequest": "call", "SoftHangupRequest": "call",
    "DialBegin": "call", "DialState": "call", "DialEnd": "call", "LocalBridge": "call",
    "BridgeCreate": "call", "BridgeDestroy": "call", "BridgeEnter": "call", "BridgeLeave": "call",
    "BlindTransfer": "call", "AttendedTransfer": "call", "MessageWaiting": "call",
    "OriginateResponse": "call", "DeviceStateChange": "call", "ChannelTalkingStart": "call",
    "ChannelTalkingStop": "call",
    # agent: app_queue
    "QueueCallerJoin": "agent", "QueueCallerLeave": "agent", "QueueCallerAbandon": "agent",
    "AgentCalled": "agent", "AgentConnect": "agent", "AgentComplete": "agent", "AgentRingNoAnswer": "agent",
    "QueueMemberStatus": "agent", "QueueMemberAdded": "agent", "QueueMemberRemoved": "agent",
    "QueueMemberPause": "agent",
    # agi
    "AsyncAGIStart": "agi", "AsyncAGIExec": "agi", "AsyncAGIEnd": "agi", "AGIExecStart": "agi",
    "AGIExecEnd": "agi",
    # dialplan: every priority run and every variable set
    "Newexten": "dialplan", "VarSet": "dialplan",
    # the rest
    "DTMFBegin": "dtmf", "DTMFEnd": "dtmf", "Cdr": "cdr", "UserEvent": "user",
    "RTCPSent": "reporting", "RTCPReceived": "reporting",
    "SuccessfulAuth": "security", "RequestBadFormat": "security", "InvalidPassword": "security",
    "ChallengeResponseFailed": "security", "InvalidAccountID": "security",
}


def event_class(name: str, privilege: str | None = None) -> str | None:
    """The class of event ``name``; for one not in the table, the first word of
    its ``Privilege:`` header (None when neither says)."""
    if name in EVENT_CLASSES:
        return EVENT_CLASSES[name]
    if privilege:
        return privilege.split(",", 1)[0].strip() or None
    return None


def parse_classes(text: str) -> frozenset[str] | None:
    """A ``read=`` / ``Events:`` value → the classes it grants; None means every
    class (``all``, or one of Asterisk's true words: ``on``, ``yes`` ...). One of
    its false words (``off``, ``no`` ...) grants none; unknown words grant
    nothing, as Asterisk ignores them."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if len(words) == 1 and words[0] in _TRUE:
        return None
    if len(words) == 1 and words[0] in _FALSE:
        return frozenset()
    if "all" in words:
        return None
    return frozenset(w for w in words if w in CLASSES)


# main/utils.c ast_true / ast_false
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off", "none"})
