"""One entry point for every AGI session, whichever transport carries it.

Asterisk hands the server three kinds of call: a page to an engineer (the
``callcenter-page`` context, or the FastAGI script ``page``), an owner who answered
a campaign call (``callcenter-outbound``, or the script ``outbound``: the 回访
survey) and a hotline call (everything else). The first goes to the paging handler,
the second to the survey, the last to the IVR,
which over AsyncAGI first lifts the hotline's ``TIMEOUT(absolute)``. A session
nobody can serve gets an apology and is hung up, never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from callcenter.logs import bind_call
from callcenter.oncall.router import call_log_id
from callcenter.outbound.entry import is_outbound_call
from callcenter.paging.page_call import is_page_call
from ivr.channel import Channel
from ivr.errors import CallerHungUp

log = logging.getLogger(__name__)

Handler = Callable[[Channel], Awaitable[None]]
SORRY_PROMPT = "sorry-system"


async def lift_agi_timeout(channel: Channel) -> None:
    """The printed hotline sets ``TIMEOUT(absolute)`` before ``AGI(agi:async)`` so that
    a call no server takes goes to the fallback (``callcenter.ami.heartbeat.agi_wait_s``);
    the server that takes it lifts it, so a long menu or queue wait is not cut off."""
    await channel.set_variable("TIMEOUT(absolute)", "0")


class AgiEntry:
    def __init__(self, *, page: Handler | None = None, ivr: Handler | None = None,
                 outbound: Handler | None = None) -> None:
        self.page = page
        self.ivr = ivr
        self.outbound = outbound

    async def __call__(self, channel: Channel) -> None:
        target = (self.page if is_page_call(channel) else
                  self.outbound if is_outbound_call(channel) else self.ivr)
        with bind_call(uniqueid=channel.uniqueid):
            try:
                # Every line about the call carries its Linkedid from here on; the
                # IVR and the on-call router find it in the environment.
                linkedid = await call_log_id(channel)
                channel.env.setdefault("agi_linkedid", linkedid)
                with bind_call(linkedid=linkedid):
                    await self._serve(channel, target)
            except CallerHungUp:
                pass
            finally:
                await channel.close()

    async def _serve(self, channel: Channel, target: Handler | None) -> None:
        if target is None:
            log.error("no handler for AGI session from %s", channel.env.get("agi_context"))
            await channel.stream_file(SORRY_PROMPT)
            await channel.hangup()
            return
        if target is self.ivr and channel.env.get("agi_request") == "async":
            await lift_agi_timeout(channel)
        await target(channel)
