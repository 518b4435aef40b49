"""The console's telephony ports on the AMI links (``callcenter.ami``).

``AmiAgentStatus``: ``QueuePause`` of the agent's queue interface on the
front-desk queue (``QueueAdd`` first on "ready", ``QueueRemove`` on sign-out). ``AmiOriginate``: click-to-call, ``Originate`` to the agent's
own phone with ``Dial`` of the owner through the trunk as its application, so
the owner's phone rings only once the agent has picked up.

Wire them in ``create_app`` after ``setup_ami``::

    links = setup_ami(app)
    setup_console(app, agent_status=AmiAgentStatus(links, settings.asterisk),
                  originate=AmiOriginate(links, settings.asterisk))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from callcenter.ami.client import AmiLink
from callcenter.ami.errors import AmiActionError
from callcenter.ami.links import AmiLinks
from callcenter.console.ports import StaffRef
from callcenter.directory.phones import national_display
from callcenter.errors import InvalidInput
from callcenter.settings import AsteriskSettings

log = logging.getLogger(__name__)

DEFAULT_MEMBER_INTERFACE = "Local/{extension}@agents/n"


class AmiAgentStatus:
    def __init__(self, links: AmiLinks, asterisk: Sequence[AsteriskSettings], *,
                 queue: str = "frontdesk",
                 member_interface: str = DEFAULT_MEMBER_INTERFACE) -> None:
        self._links = links
        self._names = [a.name for a in asterisk]
        self.queue = queue
        self.member_interface = member_interface

    async def set_status(self, agent: StaffRef, state: str, reason: str) -> None:
        if not agent.extension:
            raise InvalidInput("您没有分机号，无法切换队列状态 / you have no extension",
                               field="extension")
        paused = state != "ready"
        interface = self.member_interface.format(extension=agent.extension)
        if not paused:
            # An agent who says "ready" joins the front-desk queue if not in it yet.
            await self._join(agent, interface)
        headers = [("Action", "QueuePause"), ("Queue", self.queue),
                   ("Interface", interface),
                   ("Paused", "true" if paused else "false")]
        if paused and reason:
            headers.append(("Reason", reason))
        # The front-desk queue lives on every PBX that has one; pause it everywhere.
        for link in self._all_links():
            try:
                await link.send_action(headers, on_request=True)
            except AmiActionError as exc:
                # Pausing an agent who is not in the queue there (never said 就绪, or the
                # PBX restarted without its members): no call can reach them, nothing to do.
                if not (paused and "interface not found" in exc.response_message.lower()):
                    raise

    async def _join(self, agent: StaffRef, interface: str) -> None:
        for link in self._all_links():
            await self._add(link, agent, interface)

    async def rejoin(self, link: AmiLink, agent: StaffRef) -> None:
        """Add a 就绪 agent back to the queue on one PBX (unpaused), after it restarted
        without its dynamic members (``QueueMembersSync``)."""
        await self._add(link, agent, self.interface_for(agent.extension or ""))

    async def _add(self, link: AmiLink, agent: StaffRef, interface: str) -> None:
        headers = [("Action", "QueueAdd"), ("Queue", self.queue), ("Interface", interface),
                   ("MemberName", agent.display_name or agent.username)]
        try:
            await link.send_action(headers, on_request=True)
        except AmiActionError as exc:
            if "already" not in exc.response_message.lower():
                raise

    async def sign_out(self, agent: StaffRef) -> None:
        if not agent.extension:
            return  # never joined: "ready" needs an extension
        headers = [("Action", "QueueRemove"), ("Queue", self.queue),
                   ("Interface", self.member_interface.format(extension=agent.extension))]
        for link in self._all_links():
            try:
                await link.send_action(headers, on_request=True)
            except AmiActionError as exc:
                # "Not there": never joined or already out. "Not dynamic": a member from
                # queues.conf, which only the PBX's own configuration can take out.
                message = exc.response_message.lower()
                if "not there" in message:
                    continue
                if "not dynamic" in message:
                    log.warning("%s is a static member of %s on %s; not removed",
                                agent.username, self.queue, link.name)
                    continue
                raise

    def interface_for(self, extension: str) -> str:
        return self.member_interface.format(extension=extension)

    async def member_states(self, link: AmiLink) -> dict[str, tuple[bool, str]]:
        """The queue's members on ``link``: interface → (paused, paused reason)."""
        resp = await link.send_action([("Action", "QueueStatus"), ("Queue", self.queue)])
        return {e.get("Location") or "": (e.get("Paused") == "1", e.get("PausedReason") or "")
                for e in resp.events if e.event == "QueueMember" and e.get("Queue") == self.queue}

    def _all_links(self) -> list[AmiLink]:
        return [self._links.get(name) for name in self._names] or [self._links.for_community(None)]


class AmiOriginate:
    def __init__(self, links: AmiLinks, asterisk: Sequence[AsteriskSettings], *,
                 dial_timeout_s: float = 30.0) -> None:
        self._links = links
        self._settings = {a.name: a for a in asterisk}
        self._timeout = dial_timeout_s

    async def click_to_call(self, agent: StaffRef, number: str, *,
                            community: str | None = None) -> str:
        if not agent.extension:
            raise InvalidInput("您没有分机号，无法外呼 / you have no extension", field="extension")
        link = self._links.for_community(community)
        settings = self._settings.get(link.name) or AsteriskSettings()
        dial_number = national_display(number).replace("-", "")
        response = await link.originate(
            channel=settings.extension_channel.format(extension=agent.extension),
            application="Dial", data=settings.trunk.format(number=dial_number),
            caller_id=f"外呼 <{dial_number}>", dial_timeout_s=self._timeout,
            variables={"CALLCENTER_AGENT": agent.username}, on_request=True)
        return response.action_id
