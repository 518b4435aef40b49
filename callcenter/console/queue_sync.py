"""Agents' queue states as Asterisk has them, re-read after every AMI (re)connect.

The hub keeps each agent's state (就绪 / 小休 / 话后) in memory, but the members
of the front-desk queue live in Asterisk, which keeps them across a restart of
this server (and, with ``persistentmembers``, of its own). After a restart the
console would show an agent 未就绪 while their phone still rings for the queue.
So on every connect the members are read back (``QueueStatus``) and each staff
user's state is set from them: a member is 就绪 or 小休 (with Asterisk's reason),
anyone else 未就绪. An agent restored this way who has no live session left is
taken out of the queue by ``SessionWatch`` on its next sweep.

A restarted Asterisk (issue 12, defect 5) accepts the login before app_queue is
loaded, so ``QueueStatus`` answers ``Invalid/unknown command`` at first: the
read is retried with backoff (``retry_until_ok``) until it succeeds. And a new
life of the PBX (``AmiLink.pbx_generation`` moved since the last sync: a
``Shutdown`` seen, or a new boot time) may have lost the dynamic members (no
``persistentmembers``, a wiped AstDB): every agent the console shows 就绪 who is
missing is added back (``QueueAdd``, unpaused) on that PBX. Agents on 小休 or 话后,
or signed out, are not added; they show 未就绪 and join again with 就绪. Outside a
new life a missing member is taken as someone's decision at the PBX and the
console follows it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.client import AmiLink
from callcenter.ami.resync import retry_until_ok
from callcenter.console.ami_ports import AmiAgentStatus
from callcenter.console.ports import AGENT_STATES, StaffRef
from callcenter.directory.models import StaffUser
from callcenter.screenpop.hub import AgentHub

log = logging.getLogger(__name__)

BOOT_WAIT_S = 2.0
"""How long a sync waits for ``FullyBooted`` before its first read (a PBX that
never sends it is read anyway, and retried)."""


class QueueMembersSync:
    def __init__(self, port: AmiAgentStatus,
                 sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
                 hub: Callable[[], AgentHub | None], *,
                 retry_base_s: float = 0.25, retry_cap_s: float = 15.0) -> None:
        """``sessionmaker`` and ``hub`` are looked up when a link connects: both are
        made at start-up, after this is wired."""
        self._port = port
        self._sm = sessionmaker
        self._hub = hub
        self._retry_base_s, self._retry_cap_s = retry_base_s, retry_cap_s
        self._generations: dict[str, int] = {}
        """``pbx_generation`` of each link at its last complete sync."""
        self.rejoined: list[str] = []
        """Interfaces added back after a PBX restart (observability, tests)."""

    async def on_connected(self, link: AmiLink) -> None:
        """An ``AmiLink.on_connected`` hook: sync, retried until QueueStatus answers.
        Only on the server that owns the link (``callcenter.ha``); the standby's agents'
        states come from the database, and it syncs when it takes the link over."""
        if not link.owner:
            return
        # FullyBooted first: app_queue is loaded then, and a crash-restart shows as a new
        # boot time (pbx_generation) only once it has arrived.
        await link.wait_booted(BOOT_WAIT_S)
        changed = 0

        async def attempt() -> bool:
            nonlocal changed
            changed = await self.sync(link)
            return True

        await retry_until_ok(link, attempt, "queue members sync", base_s=self._retry_base_s,
                             cap_s=self._retry_cap_s)
        if changed:
            log.info("%s: %d agent states taken from the %s queue", link.name, changed,
                     self._port.queue)

    async def sync(self, link: AmiLink) -> int:
        """Set every staff user's state from the queue's members; returns how many changed.
        On a new PBX life, 就绪 agents missing from the queue are added back first."""
        hub = self._hub()
        if hub is None:
            return 0
        generation = link.pbx_generation
        seen = self._generations.get(link.name)
        new_life = seen is not None and seen != generation
        members = await self._port.member_states(link)
        async with self._sm()() as session:
            staff = (await session.scalars(
                select(StaffUser).where(StaffUser.extension.is_not(None)))).all()
        if new_life:
            for user in staff:
                current = hub.agent_states.get(user.id)
                interface = self._port.interface_for(user.extension or "")
                if current is None or current.state != "ready" or interface in members:
                    continue
                await self._port.rejoin(link, StaffRef(
                    user.id, user.username, user.display_name, user.role, user.extension,
                    user.mobile))
                members[interface] = (False, "")
                self.rejoined.append(interface)
                log.warning("%s restarted: %s (就绪) added back to %s", link.name, interface,
                            self._port.queue)
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
        self._generations[link.name] = generation
        return changed
