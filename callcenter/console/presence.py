"""Who is still signed in: an agent whose last session ends leaves the queue.

An agent joins the front-desk queue by pressing 就绪 and stays a member until
taken out, so a session that ends without the agent pressing anything (logout,
expiry, the user disabled, possibly from the ``callcenter user disable`` CLI in
another process) would leave callers ringing an empty desk. ``SessionWatch``
checks, on the injected clock, every ``every_s`` seconds:

* the sessions behind the open WebSockets: a socket whose session ended,
  expired or whose user was disabled is closed;
* the agents with a queue state (ready, paused, wrap-up): one with no good
  session left is taken out of the queue (``AgentStatusPort.sign_out``) and
  shown as gone.

Logout does the same at once for its own session (``session_ended``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.sessions import SessionStore
from callcenter.clock import Clock
from callcenter.console.ports import AGENT_STATES, AgentStatusPort, StaffRef
from callcenter.directory.models import StaffUser
from callcenter.screenpop.hub import AgentHub

log = logging.getLogger(__name__)


class SessionWatch:
    def __init__(self, store: SessionStore, sessionmaker: async_sessionmaker[AsyncSession],
                 clock: Clock, *, hub: Callable[[], AgentHub | None],
                 port: Callable[[], AgentStatusPort | None], every_s: float = 15.0) -> None:
        """``hub`` / ``port`` are looked up when needed: they are wired after the
        console (the hub in the screen-pop's ``cleanup_ctx``, the port by the lead)."""
        self._store = store
        self._sm = sessionmaker
        self._clock = clock
        self._hub = hub
        self._port = port
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.every_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("session watch: sweep failed; trying again in %ss", self.every_s)

    async def sweep(self) -> None:
        hub = self._hub()
        if hub is None:
            return
        keys = hub.session_keys()
        if keys:
            ended = keys - await self._store.live_keys(keys)
            if ended:
                await hub.close_sessions(ended)
        queued = {uid for uid, st in hub.agent_states.items() if st.state in AGENT_STATES}
        if queued:
            gone = queued - await self._store.live_users(queued)
            for uid in sorted(gone):
                await self._sign_out(hub, uid)

    async def session_ended(self, user_id: int, key: str) -> None:
        """A session was ended here (logout): close its sockets now; and if it was the
        user's last, take them out of the queue."""
        hub = self._hub()
        if hub is None:
            return
        await hub.close_sessions({key})
        if user_id not in await self._store.live_users([user_id]):
            await self._sign_out(hub, user_id)

    async def _sign_out(self, hub: AgentHub, user_id: int) -> None:
        async with self._sm() as session:
            user = await session.get(StaffUser, user_id)  # disabled users too
        port = self._port()
        if user is not None and port is not None:
            ref = StaffRef(user.id, user.username, user.display_name or user.username,
                           user.role, user.extension, user.mobile)
            try:
                await port.sign_out(ref)
            except Exception:
                # Keep the state: the next sweep tries again.
                log.exception("could not take %s out of the queue", user.username)
                return
            log.info("%s signed out: taken out of the queue", user.username)
        hub.signed_out(user_id)
