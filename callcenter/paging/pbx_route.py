"""Which PBX a page leaves through: the incident's own community's.

Each ``[[asterisk]]`` link serves one community (``community = "hupan"``). A page of
an incident of that community is dialled through that link. When the community has
no link, or its link cannot take the Originate (down, not logged in, Asterisk
shutting down: ``OriginateStatus.UNAVAILABLE`` before anything rang), the page goes
as ``[paging] fallback`` says:

* ``"wait"`` (the default): the step waits for the community's PBX (the worker
  defers it with a backoff, as for a PBX restart);
* ``"pbx:NAME"``: through the link named ``NAME`` (its trunk reaches mobiles too);
* ``"notifiers"``: no call; the person gets the page through their own channels
  (WeCom, DingTalk, webhook, email) and the escalation moves on.

Every fallback says so on the incident's timeline, in Chinese. A ring the PBX cut
by restarting (``pbx_restarted``) is not re-dialled elsewhere: that is the worker's
deferral, so one step never rings a person twice at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.errors import ActionNotSent, PbxUnavailable
from callcenter.directory.models import Community
from callcenter.paging.ami_originator import AmiOriginator, OriginatingLink
from callcenter.paging.originate import (
    NOTIFY_INSTEAD,
    OriginateOutcome,
    OriginateStatus,
    Originator,
)
from callcenter.settings import AsteriskSettings

log = logging.getLogger(__name__)

FALLBACK_WAIT, FALLBACK_NOTIFIERS, FALLBACK_PBX = "wait", "notifiers", "pbx:"
# Unavailable before the call left: nothing rang, another PBX may dial it.
_NOT_SENT = frozenset({ActionNotSent.error_id, PbxUnavailable.error_id})
NO_LINK = "no_link"  # the reason when the community has no link and the site waits


@dataclass(frozen=True, slots=True)
class Fallback:
    """What ``[paging] fallback`` says, parsed."""

    kind: str  # FALLBACK_WAIT, FALLBACK_NOTIFIERS or FALLBACK_PBX
    pbx: str = ""  # the link's name, for FALLBACK_PBX

    @classmethod
    def parse(cls, text: str) -> Fallback:
        """``wait`` | ``notifiers`` | ``pbx:NAME``; ValueError otherwise."""
        value = text.strip()
        if value in (FALLBACK_WAIT, FALLBACK_NOTIFIERS):
            return cls(value)
        if value.startswith(FALLBACK_PBX) and value[len(FALLBACK_PBX):].strip():
            return cls(FALLBACK_PBX, value[len(FALLBACK_PBX):].strip())
        raise ValueError(f'expected "wait", "notifiers" or "pbx:NAME", not {text!r}')


@dataclass(frozen=True, slots=True)
class Dialling:
    """How a link writes a channel: ``trunk`` for a number, ``extension`` for a desk
    phone (``[[asterisk]] trunk`` / ``extension_channel``)."""

    trunk: str = "PJSIP/{number}@trunk"
    extension: str = "PJSIP/{extension}"

    def parse(self, channel: str) -> tuple[str, str] | None:
        """("number" | "extension", value) of a channel written this way, else None."""
        for kind, pattern in (("number", self.trunk), ("extension", self.extension)):
            head, sep, tail = pattern.partition("{" + kind + "}")
            if sep and channel.startswith(head) and channel.endswith(tail) \
                    and len(channel) > len(head) + len(tail):
                return kind, channel[len(head):len(channel) - len(tail)]
        return None

    def write(self, kind: str, value: str) -> str:
        return (self.trunk if kind == "number" else self.extension).format(**{kind: value})


class PbxRoute:
    """An ``Originator`` that dials through the community's own link.

    ``links``: an originator per link name (an ``AmiOriginator`` over that link);
    ``communities``: community code → link name (``[[asterisk]] community``);
    ``label``: what the timeline calls a link (e.g. "滨江苑的线路"; by default its name);
    ``dialling``: per link, how it writes channels; a channel the worker wrote the
    ``source`` way is rewritten for the link that places the call (each PBX may name
    its trunk its own way)."""

    def __init__(self, links: Mapping[str, Originator], communities: Mapping[str, str],
                 fallback: Fallback = Fallback(FALLBACK_WAIT), *,
                 default_community: str | None = None,
                 label: Callable[[str], Awaitable[str]] | None = None,
                 dialling: Mapping[str, Dialling] | None = None,
                 source: Dialling | None = None) -> None:
        self._dialling = dict(dialling or {})
        self._source = source
        self._links = dict(links)
        self._communities = dict(communities)
        self._fallback = fallback
        self._default = default_community
        self._label = label

    async def _name(self, link: str) -> str:
        if self._label is not None:
            try:
                return await self._label(link)
            except Exception:
                log.warning("paging: no label for link %s", link, exc_info=True)
        return f"{link}线路"

    def link_for(self, community: str | None) -> str | None:
        """The name of the link that serves ``community`` (the only one when there is
        one; None when no link does)."""
        code = community or self._default
        if code is not None and code in self._communities:
            return self._communities[code]
        if len(self._links) == 1 and not self._communities:
            return next(iter(self._links))
        return None

    def _channel(self, channel: str, link: str) -> str:
        """``channel`` as ``link`` writes it."""
        target = self._dialling.get(link)
        parsed = self._source.parse(channel) if self._source is not None else None
        return target.write(*parsed) if target is not None and parsed is not None else channel

    async def originate(self, channel: str, context: str, exten: str,
                        variables: Mapping[str, str],
                        timeout: float, *,  # noqa: ASYNC109
                        community: str | None = None) -> OriginateOutcome:
        own = self.link_for(community)
        if own is not None:
            result = await self._links[own].originate(self._channel(channel, own), context,
                                                      exten, variables,
                                                      timeout, community=community)
            if result.status is not OriginateStatus.UNAVAILABLE or result.reason not in _NOT_SENT:
                return result
            why, reason = f"本小区线路（{await self._name(own)}）不可用", result.reason
        else:
            why, reason = "本小区没有配置电话线路", NO_LINK
        log.warning("paging: community %s: %s; fallback %s", community, why,
                    self._fallback.kind + self._fallback.pbx)
        fb = self._fallback
        if fb.kind == FALLBACK_NOTIFIERS:
            return OriginateOutcome(OriginateStatus.FAILED, NOTIFY_INSTEAD,
                                    note=f"{why}，改由消息通知")
        if fb.kind == FALLBACK_PBX and fb.pbx != own and fb.pbx in self._links:
            other = await self._name(fb.pbx)
            result = await self._links[fb.pbx].originate(
                self._channel(channel, fb.pbx), context, exten, variables, timeout,
                community=community)
            if result.status is OriginateStatus.UNAVAILABLE:
                return replace(result, note=f"{why}，备用的{other}也不可用，稍后重试")
            return replace(result, note=f"{why}，改由{other}呼叫")
        return OriginateOutcome(OriginateStatus.UNAVAILABLE, reason,
                                note=f"{why}，等线路恢复后再呼叫")


def route_from_settings(asterisk: Sequence[AsteriskSettings], fallback: str,
                        link: Callable[[str], OriginatingLink], *,
                        default_community: str | None = None,
                        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]] | None = None
                        ) -> PbxRoute:
    """The route of a site's ``[[asterisk]]`` links; ``link(name)`` gives the AMI link
    (resolved at each page: a link may be replaced). The timeline calls a link by its
    community's name ("滨江苑的线路") when ``sessionmaker`` is given."""
    def link_named(name: str) -> Callable[[], OriginatingLink]:
        return lambda: link(name)

    originators: dict[str, Originator] = {a.name: AmiOriginator(link_named(a.name))
                                          for a in asterisk}
    communities = {a.community: a.name for a in asterisk if a.community}
    by_link = {a.name: a.community for a in asterisk}

    async def label(name: str) -> str:
        code = by_link.get(name)
        if sessionmaker is None or not code:
            return f"{name}线路"
        async with sessionmaker()() as session:
            title = await session.scalar(select(Community.name).where(Community.code == code))
        return f"{title}的线路" if title else f"{name}线路"

    dialling = {a.name: Dialling(a.trunk, a.extension_channel) for a in asterisk}
    # The worker writes channels the first link's way (worker_config_from_settings).
    source = dialling[asterisk[0].name] if asterisk else None
    return PbxRoute(originators, communities, Fallback.parse(fallback),
                    default_community=default_community, label=label, dialling=dialling,
                    source=source)
