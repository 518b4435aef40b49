"""Agents' queue states as Asterisk has them, re-read after every AMI (re)connect.

The hub keeps each agent's state (就绪 / 小休 / 话后) in memory, but the members
of the front-desk queue live in Asterisk, which keeps them across a restart of
this server (and, with ``persistentmembers``, of its own). After a restart the
console would show an agent 未就绪 while their phone still rings for the queue.
So on every connect the members are read back (``QueueStatus``) and each staff
user's state is set from them: a member is 就绪 or 小休 (with Asterisk's reason),
anyone else 未就绪. An agent restored this way who has no live session left is
taken out of the queue by ``SessionWatch`` on its next sweep."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.client import AmiLink
from callcenter.console.ami_ports import AmiAgentStatus
from callcenter.console.ports import AGENT_STATES
from callcenter.directory.models import StaffUser
from callcenter.screenpop.hub import AgentHub

log = logging.getLogger(__name__)


class QueueMembersSync:
    def __init__(self, port: AmiAgentStatus,
                 sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
                 hub: Callable[[], AgentHub | None]) -> None:
        """``sessionmaker`` and ``hub`` are looked up when a link connects: both are
        made at start-up, after this is wired."""
        self._port = port
        self._sm = sessionmaker
        self._hub = hub

    async def on_connected(self, link: AmiLink) -> None:
        """An ``AmiLink.on_connected`` hook."""
        changed = await self.sync(link)
        if changed:
            log.info("%s: %d agent states taken from the %s queue", link.name, changed,
                     self._port.queue)

    async def sync(self, link: AmiLink) -> int:
        """Set every staff user's state from the queue's members; returns how many changed."""
        hub = self._hub()
        if hub is None:
            return 0
        members = await self._port.member_states(link)
        async with self._sm()() as session:
            staff = (await session.scalars(
                select(StaffUser).where(StaffUser.extension.is_not(None)))).all()
        changed = 0
        for user in staff:
            current = hub.agent_states.get(user.id)
            member = members.get(self._port.interface_for(user.extension or ""))
            if member is None:
                if current is not None and current.state in AGENT_STATES:
                    hub.set_agent_state(user.id, "not_ready", "")
                    changed += 1
                continue
            paused, reason = member
            if current is not None and current.state in AGENT_STATES \
                    and (current.state != "ready") == paused:
                continue  # the hub already agrees (wrap-up is a pause too)
            hub.set_agent_state(user.id, "paused" if paused else "ready",
                                reason if paused else "")
            changed += 1
        return changed
