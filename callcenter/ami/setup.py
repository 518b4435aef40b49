"""Wire the AMI links into the web application.

``setup_ami(app)`` builds ``AmiLinks`` from ``settings.asterisk`` (one link per
``[[asterisk]]`` entry), publishes call events on the app's bus, shows the
links in ``/healthz`` and starts/stops them with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import AMI_LINKS, BUS, CLOCK, HEALTH_EXTRAS, LINK_STATUS, SETTINGS


def mailboxes_of(mailboxes: tuple[str, ...], context: str) -> list[str]:
    return [m if "@" in m else f"{m}@{context}" for m in mailboxes]


def setup_ami(app: web.Application, links: AmiLinks | None = None) -> AmiLinks:
    """Install ``AMI_LINKS``, ``LINK_STATUS``, a health section and a
    cleanup context. Call after ``SETTINGS``, ``BUS`` and ``CLOCK`` are set,
    once per app (``create_app`` does; pass it ``ami_links=`` to use others)."""
    if AMI_LINKS in app:
        raise RuntimeError("setup_ami: AMI links are already set up on this app")
    if links is None:
        settings = app[SETTINGS]
        clock = app[CLOCK]
        links = AmiLinks(
            settings.asterisk,
            publish=app[BUS].publish,
            mailboxes=mailboxes_of(settings.voicemail.mailboxes, settings.voicemail.context),
            now=clock.now,
        )
    app[AMI_LINKS] = links
    app[LINK_STATUS] = links.link_states
    app.setdefault(HEALTH_EXTRAS, []).append(links.health)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[AMI_LINKS].start()
        yield
        await app[AMI_LINKS].stop()

    app.cleanup_ctx.append(lifecycle)
    return links
