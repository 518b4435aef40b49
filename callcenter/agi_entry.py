"""One entry point for every AGI session, whichever transport carries it.

Asterisk hands the server two kinds of call: a page to an engineer (the
``callcenter-page`` context, or the FastAGI script ``page``) and a hotline call
(everything else). The first goes to the paging handler, the second to the IVR.
A session nobody can serve gets an apology and is hung up, never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from callcenter.logs import bind_call
from callcenter.oncall.router import call_log_id
from callcenter.paging.page_call import is_page_call
from ivr.channel import Channel
from ivr.errors import CallerHungUp

log = logging.getLogger(__name__)

Handler = Callable[[Channel], Awaitable[None]]
SORRY_PROMPT = "sorry-system"


class AgiEntry:
    def __init__(self, *, page: Handler | None = None, ivr: Handler | None = None) -> None:
        self.page = page
        self.ivr = ivr

    async def __call__(self, channel: Channel) -> None:
        target = self.page if is_page_call(channel) else self.ivr
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
        await target(channel)
