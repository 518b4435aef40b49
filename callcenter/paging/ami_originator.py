"""``Originator`` over the AMI client: ``Originate`` with ``Async: true``.

``AmiLink.originate`` returns when ``OriginateResponse`` says Success (the
callee answered and the call entered the paging context) and raises
``OriginateFailed`` with Asterisk's ``Reason`` otherwise. A lost link is never
re-sent by the client (a page must not dial twice): it becomes a failed
attempt, and the escalation goes on per its policy.

A PBX that is not there to take the Originate is not a person who did not
answer: the link down or not logged in (``ActionNotSent``), Asterisk shutting
down or not fully booted (``PbxUnavailable``), or no answer at all to the
action (``ActionTimeout`` before the "queued" response) give ``UNAVAILABLE``,
and the worker delays the step instead of moving down the chain. So does a ring
that the PBX itself ended by restarting (``core restart now`` hangs up every
channel, then ``Shutdown`` and EOF: the link's ``pbx_generation`` moved while the
Originate was out, whether it ends in ``LinkLost`` or a failed
``OriginateResponse``), reason ``pbx_restarted``: the engineer never had the
chance to answer. A link lost without a restart stays a failed attempt (the
phone may still be ringing; dialling again could ring it twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from callcenter.ami.errors import (
    ActionNotSent,
    ActionTimeout,
    AmiError,
    LinkLost,
    NotOwner,
    OriginateFailed,
    PbxUnavailable,
)
from callcenter.paging.originate import PBX_RESTARTED, OriginateOutcome, OriginateStatus

log = logging.getLogger(__name__)


class OriginatingLink(Protocol):
    async def originate(self, *, channel: str, context: str | None = None,
                        exten: str | None = None, caller_id: str | None = None,
                        variables: Mapping[str, str] | None = None,
                        dial_timeout_s: float = 30.0) -> Any: ...


class AmiOriginator:
    """``link`` is an ``AmiLink``, or a function returning the link to use
    (e.g. the one of the incident's PBX; ``AmiLinks.get(name).link``)."""

    def __init__(self, link: OriginatingLink | Callable[[], OriginatingLink], *,
                 caller_id: str = '"物业紧急呼叫" <4000>') -> None:
        self._link = link
        self.caller_id = caller_id

    def _resolve(self) -> OriginatingLink:
        if hasattr(self._link, "originate"):
            return cast(OriginatingLink, self._link)
        return cast(Callable[[], OriginatingLink], self._link)()

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str],
                        timeout: float, *,  # noqa: ASYNC109
                        community: str | None = None) -> OriginateOutcome:
        """Through the one link given (``PbxRoute`` picks a community's)."""
        link = self._resolve()
        generation = getattr(link, "pbx_generation", None)

        def restarted() -> bool:
            return generation is not None and getattr(link, "pbx_generation", None) != generation

        try:
            resp = await link.originate(
                channel=channel, context=context, exten=exten, caller_id=self.caller_id or None,
                variables=dict(variables), dial_timeout_s=timeout)
        except (OriginateFailed, LinkLost) as exc:
            if restarted():
                log.warning("paging originate to %s: the PBX restarted during the ring: %s",
                            channel, exc)
                return OriginateOutcome(OriginateStatus.UNAVAILABLE, PBX_RESTARTED)
            if isinstance(exc, LinkLost):
                log.warning("paging originate to %s: %s", channel, exc)
                return OriginateOutcome(OriginateStatus.FAILED, exc.error_id)
            return OriginateOutcome.from_reason("Failure", str(exc.details.get("reason", "")))
        except (ActionNotSent, PbxUnavailable, NotOwner) as exc:  # nothing was dialled
            log.warning("paging originate to %s: PBX unavailable: %s", channel, exc)
            return OriginateOutcome(OriginateStatus.UNAVAILABLE, exc.error_id)
        except ActionTimeout as exc:
            log.warning("paging originate to %s: %s", channel, exc)
            if not exc.details.get("answered", True):  # not even "queued": Asterisk is wedged
                return OriginateOutcome(OriginateStatus.UNAVAILABLE, exc.error_id)
            return OriginateOutcome(OriginateStatus.FAILED, exc.error_id)
        except AmiError as exc:
            log.warning("paging originate to %s: %s", channel, exc)
            return OriginateOutcome(OriginateStatus.FAILED, exc.error_id)
        reason = ""
        events = getattr(resp, "events", ())
        if events:
            reason = events[0].get("Reason") or ""
        return OriginateOutcome(OriginateStatus.ANSWERED, reason or "4")
