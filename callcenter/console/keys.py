"""Typed keys for what the console and the screen-pop keep on the application.

The lead sets ``AGENT_STATUS`` and ``ORIGINATE`` (adapters to the AMI client);
they are read at request time, so they may be set in a ``cleanup_ctx``.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.auth.sessions import LoginThrottle, SessionStore
from callcenter.console.ports import AgentStatusPort, OriginatePort
from callcenter.console.presence import SessionWatch
from callcenter.screenpop.hub import AgentHub

SESSION_STORE = web.AppKey("session_store", SessionStore)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
AGENT_HUB = web.AppKey("agent_hub", AgentHub)
AGENT_STATUS: web.AppKey[AgentStatusPort] = web.AppKey("agent_status_port")
ORIGINATE: web.AppKey[OriginatePort] = web.AppKey("originate_port")
SESSION_WATCH = web.AppKey("session_watch", SessionWatch)
