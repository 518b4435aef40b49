"""The pieces of a real Asterisk's configuration that hand calls to this server.

``callcenter asterisk-config`` prints them; a site pastes them into
``manager.conf``, ``extensions.conf`` and ``queues.conf`` (or ``#include``s the
output). Every context and queue the server names is here: the hotline
contexts (AsyncAGI and FastAGI), the paging context Originate sends answered
pages to, the context of the front-desk queue's member interfaces
(``Local/{ext}@agents/n``, added by ``QueueAdd``), and the queues the menus and
the console use.
"""

from __future__ import annotations

import inspect
import logging

from callcenter.console.ami_ports import DEFAULT_MEMBER_INTERFACE, AmiAgentStatus
from callcenter.paging.worker import WorkerConfig
from callcenter.settings import AsteriskSettings, Settings
from ivr.errors import MenuError
from ivr.menus import Action, MenuStore

log = logging.getLogger(__name__)

# Seconds a member's phone rings before the queue tries again, and the pause between.
QUEUE_MEMBER_RING_S = 15
QUEUE_RETRY_S = 5
QUEUE_WRAPUP_S = 10


def member_context(interface: str = DEFAULT_MEMBER_INTERFACE) -> str:
    """The dialplan context of a Local member interface: ``Local/{extension}@agents/n`` → ``agents``."""
    return interface.split("@", 1)[1].split("/", 1)[0]


def frontdesk_queue() -> str:
    """The queue the console's agents join (``QueueAdd``) and pause (``QueuePause``)."""
    return str(inspect.signature(AmiAgentStatus).parameters["queue"].default)


def queue_names(settings: Settings) -> list[str]:
    """The front-desk queue and every queue a menu action sends callers to."""
    names = {frontdesk_queue()}
    try:
        sets = MenuStore(*settings.ivr_menus).all().values()
    except MenuError as exc:  # asterisk-config still prints; check-config names the error
        log.warning("menus not read, only the front-desk queue is configured: %s", exc)
        sets = {}.values()
    for menus in sets:
        actions: list[Action] = list(menus.safe_fallback.values())
        for menu in menus.menus.values():
            actions += [menu.fallback, *menu.options.values()]
        names.update(a.arg("queue") for a in actions if a.kind == "queue")
    return sorted(names)


def manager_conf(pbx: AsteriskSettings) -> str:
    secret = pbx.secret.reveal() if pbx.secret else "CHANGE-ME"
    return f"""; ---- manager.conf ({pbx.name}) ----
[general]
enabled = yes
port = {pbx.port}
bindaddr = 0.0.0.0

[{pbx.username}]
secret = {secret}
; only the call-center server's address
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
; call: channel events; agent: queue members; agi: AsyncAGI; originate: paging and
; click-to-call; reporting: QueueStatus/CoreShowChannels; system: FullyBooted/Shutdown
read = system,call,agent,user,reporting,agi,dtmf
write = system,call,agent,user,reporting,agi,originate
writetimeout = 5000
"""


def extensions_conf(settings: Settings, pbx: AsteriskSettings) -> str:
    fa = settings.fastagi
    vm = settings.voicemail
    mailbox = vm.mailboxes[0] if vm.mailboxes else "8000"
    page_context = WorkerConfig().context
    agents = member_context()
    member = DEFAULT_MEMBER_INTERFACE.format(extension="EXT")
    agent_phone = pbx.extension_channel.format(extension="${EXTEN}")
    return f"""; ---- extensions.conf ({pbx.name}) ----
; Route the hotline DID(s) from your trunk context with: Goto({pbx.hotline_context},${{EXTEN}},1)

[{pbx.hotline_context}]
; The IVR runs in the call-center server over the AMI link (AsyncAGI).
exten => _X.,1,NoOp(hotline ${{CALLERID(all)}} -> ${{EXTEN}})
 same => n,Set(CHANNEL(language)=zh)
 same => n,Set(__CC_DID=${{EXTEN}})
 same => n,Answer()
 same => n,AGI(agi:async)
 same => n,GotoIf($["${{AGISTATUS}}" = "SUCCESS"]?done)
 ; the server is unreachable: never leave the caller in silence
 same => n,Playback(sorry-system)
 same => n,VoiceMail({mailbox}@{vm.context},u)
 same => n(done),Hangup()

[{pbx.hotline_context}-fastagi]
; The same IVR over FastAGI: the server listens on {fa.host}:{fa.port}.
exten => _X.,1,NoOp(hotline (FastAGI) ${{CALLERID(all)}} -> ${{EXTEN}})
 same => n,Set(CHANNEL(language)=zh)
 same => n,Set(__CC_DID=${{EXTEN}})
 same => n,Answer()
 same => n,AGI(agi://{fa.host}:{fa.port}/hotline)
 same => n,GotoIf($["${{AGISTATUS}}" = "SUCCESS"]?done)
 same => n,Playback(sorry-system)
 same => n,VoiceMail({mailbox}@{vm.context},u)
 same => n(done),Hangup()

[callcenter-voicemail]
; Repair intake mailbox: messages become repair tickets.
exten => _X.,1,VoiceMail(${{EXTEN}}@{vm.context},s)
 same => n,Hangup()

[{page_context}]
; Outbound pages and call-backs: the answered party is handed to the server.
exten => _X.,1,NoOp(page ${{CC_INCIDENT}})
 same => n,Set(CHANNEL(language)=zh)
 same => n,AGI(agi:async)
 same => n,Hangup()

[{agents}]
; Front-desk queue members are {member} (the console's QueueAdd when an
; agent says "ready"): ring the agent's own phone; the queue sets the ring time.
exten => _X.,1,NoOp(queue member ${{EXTEN}})
 same => n,Dial({agent_phone})
 same => n,Hangup()
"""


def queues_conf(settings: Settings, pbx: AsteriskSettings) -> str:
    """One queue per name the server uses, with no static members: the server adds
    and removes them (static members could not be taken out by ``QueueRemove``)."""
    parts = [f"""; ---- queues.conf ({pbx.name}) ----
[general]
; members added by QueueAdd survive an Asterisk restart
persistentmembers = yes
autofill = yes
"""]
    for name in queue_names(settings):
        parts.append(f"""[{name}]
; ring every ready agent at once; the IVR's Queue() gives up after its own timeout
strategy = ringall
timeout = {QUEUE_MEMBER_RING_S}
retry = {QUEUE_RETRY_S}
wrapuptime = {QUEUE_WRAPUP_S}
; callers wait on hold while every agent is paused (on a break) rather than being dropped
joinempty = yes
leavewhenempty = no
; an agent already on a call is not rung again; pauses belong to the server (QueuePause)
ringinuse = no
autopause = no
musicclass = default
""")
    return "\n".join(parts)


def render(settings: Settings) -> str:
    pbxs = settings.asterisk or (AsteriskSettings(),)
    parts = [
        "; Generated by `callcenter asterisk-config`.",
        "; Voicemail: the server reads the spool at " + str(settings.voicemail.spool_dir),
        "",
    ]
    for pbx in pbxs:
        parts.append(manager_conf(pbx))
        parts.append(extensions_conf(settings, pbx))
        parts.append(queues_conf(settings, pbx))
    return "\n".join(parts)
