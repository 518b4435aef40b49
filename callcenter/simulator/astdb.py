"""AstDB, the printed hotline's heartbeat check, and a restart as capture 11 shows it.

``AstDb``: Asterisk's key/value store (``DBPut``/``DBGet``/``DBDel`` over AMI,
``DB_EXISTS()``/``DB()`` in the dialplan). It lives on disk in Asterisk, so it
belongs to the stand-in, not to the ``Pbx``: a ``restart()`` keeps it.

``HotlineGuard``: the ``[callcenter-hotline]`` context ``callcenter
asterisk-config`` prints checks ``callcenter/alive`` (the server's heartbeat,
epoch seconds) against ``${EPOCH}`` before ``AGI(agi:async)``; stale or
missing, the caller goes to the fallback (an apology, ``Dial`` of the duty
phone, then the repair voicemail). So does a FastAGI call whose server is not
there (``AGISTATUS=FAILURE``).

``Lifecycle``: the phases of ``core restart now`` (capture 11): while shutting
down every action is refused with ``Asterisk is shutting down``; after the new
Asterisk accepts logins and before it is fully booted, app_queue's actions are
unknown (``Invalid/unknown command: QueueStatus. Use Action: ListCommands ...``
plus a ``RequestBadFormat`` security event) and no ``FullyBooted`` follows a
login; ``FullyBooted`` is broadcast when booting ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev

if TYPE_CHECKING:
    from callcenter.ami.parser import Frame
    from callcenter.simulator.ami_server import AmiSession
    from callcenter.simulator.pbx import Call, Pbx

SHUTTING_DOWN = "Asterisk is shutting down"
#: actions app_queue registers: unknown until the restarted Asterisk loaded it
APP_QUEUE_ACTIONS = frozenset({
    "queuestatus", "queuesummary", "queueadd", "queueremove", "queuepause", "queuepenalty",
    "queuelog", "queuereload", "queuereset", "queuerule", "queuememberringinuse",
    "queuechangepriority", "queuewithdrawcaller",
})


class AstDb:
    """``family/key`` → value, as ``ast_db_put``/``ast_db_get`` keep them."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], str] = {}

    def get(self, family: str, key: str) -> str | None:
        return self._data.get((family, key))

    def put(self, family: str, key: str, value: str) -> None:
        self._data[(family, key)] = value

    def delete(self, family: str, key: str) -> bool:
        return self._data.pop((family, key), None) is not None


# ---------------------------------------------------------------- AMI actions
# The answers of main/db.c (manager_dbput/dbget/dbdel) in Asterisk 20.

def act_dbput(session: AmiSession, f: Frame, aid: str | None, db: AstDb) -> None:
    family, key = f.get("Family") or "", f.get("Key") or ""
    if not family:
        session.respond_error(aid, "No family specified")
        return
    if not key:
        session.respond_error(aid, "No key specified")
        return
    db.put(family, key, f.get("Val") or "")
    session.respond(aid, ("Message", "Updated database successfully"))


def act_dbget(session: AmiSession, f: Frame, aid: str | None, db: AstDb) -> None:
    family, key = f.get("Family") or "", f.get("Key") or ""
    if not family:
        session.respond_error(aid, "No family specified.")
        return
    if not key:
        session.respond_error(aid, "No key specified.")
        return
    value = db.get(family, key)
    if value is None:
        session.respond_error(aid, "Database entry not found")
        return
    tail: ev.Fields = [("ActionID", aid)] if aid is not None else []
    session.list_items(aid, [[("Event", "DBGetResponse"), ("Family", family), ("Key", key),
                              ("Val", value), *tail]], "DBGetComplete", "Result will follow")


def act_dbdel(session: AmiSession, f: Frame, aid: str | None, db: AstDb) -> None:
    family, key = f.get("Family") or "", f.get("Key") or ""
    if not family:
        session.respond_error(aid, "No family specified.")
        return
    if not key:
        session.respond_error(aid, "No key specified.")
        return
    if not db.delete(family, key):
        session.respond_error(aid, "Database entry not found")
        return
    session.respond(aid, ("Message", "Key deleted successfully"))


# ------------------------------------------------------------------ lifecycle

@dataclass
class Lifecycle:
    """``up``, ``shutting_down`` (actions refused) or ``booting`` (no app_queue yet)."""

    phase: str = "up"

    @property
    def booted(self) -> bool:
        return self.phase == "up"

    def gate(self, session: AmiSession, action: str, aid: str | None) -> bool:
        """Answer ``action`` here if this phase refuses it; True when answered."""
        name = action.lower()
        if self.phase == "shutting_down" and name not in ("logoff",):
            session.respond_error(aid, SHUTTING_DOWN)
            return True
        if self.phase == "booting" and name in APP_QUEUE_ACTIONS:
            session.respond_error(aid, f"Invalid/unknown command: {action}. Use Action: ListCommands "
                                       "to show available commands.")
            pbx = session.server.pbx
            tv = pbx.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
            session.deliver_event([
                ("Event", "RequestBadFormat"), ("Privilege", "security,all"), ("EventTV", tv),
                ("Severity", "Error"), ("Service", "AMI"), ("EventVersion", "1"),
                ("SessionID", session.session_id), ("RequestType", f"Action: {action}"),
                ("SessionTV", tv)])
            return True
        return False


# ------------------------------------------------------------- hotline guard

@dataclass
class HotlineGuard:
    """What the printed ``[callcenter-hotline]`` does around ``AGI()``.

    ``max_age_s``: a heartbeat older than this (or none) skips ``AGI(agi:async)``.
    ``fallback_dial``: the duty / front-desk phone (``PJSIP/8000``), empty: none.
    ``mailbox``: the repair voicemail (``8000@default``)."""

    db: AstDb
    max_age_s: float = 15.0
    fallback_dial: str = ""
    mailbox: str = "8000@default"
    family: str = "callcenter"
    key: str = "alive"
    epoch: Callable[[], float] = time.time
    """``${EPOCH}``: the host's wall clock, as the server's heartbeat uses (not the
    stand-in's scaled clock)."""
    agi_wait_s: float | None = None
    """``Set(TIMEOUT(absolute)=...)`` before ``AGI(agi:async)``: a call that no server
    takes within it (heartbeat fresh, server just died) goes to the fallback (exten T)."""
    fallbacks: list[str] = field(default_factory=list)
    """Uniqueids of the calls sent to the fallback (tests)."""

    def alive(self, pbx: Pbx) -> bool:
        """``DB_EXISTS(callcenter/alive)`` and ``${EPOCH} - ${DB_RESULT} <= max_age``."""
        raw = self.db.get(self.family, self.key)
        if raw is None:
            return False
        try:
            beat = int(raw)
        except ValueError:
            return False
        return int(self.epoch()) - beat <= self.max_age_s

    async def fallback(self, pbx: Pbx, call: Call, priority: int = 10) -> None:
        """``Playback(sorry-system)``, ``Dial(<duty>,30)``; unanswered: ``VoiceMail(...,u)``."""
        ch = call.app
        self.fallbacks.append(ch.uniqueid)
        await pbx.run_application(call, "Playback", "sorry-system", priority=priority)
        if self.fallback_dial:
            await pbx.run_application(call, "Dial", f"{self.fallback_dial},30", priority=priority + 1)
            if ch.variables.get("DIALSTATUS") == "ANSWER":
                return
        await pbx.run_application(call, "VoiceMail", f"{self.mailbox},u", priority=priority + 2)
