"""Wiring for paging: the service, the worker, the page-call handler, routes.

``setup_paging(app, originator=...)`` adds the routes and a ``cleanup_ctx``
that, once the database is up, builds the service, subscribes it to
``incident.requested``, starts the escalation worker, and stops it at shutdown.
The originator may be given as a factory taking the app, for an AMI client
that only exists once the app has started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import cast

from aiohttp import web

from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.notify.base import Notifier
from callcenter.paging.duty_page import add_duty_page
from callcenter.paging.http import PAGING_SERVICE, add_paging_routes
from callcenter.paging.originate import Originator, PageCallRegistry
from callcenter.paging.page_call import PageCallConfig, PageCallHandler
from callcenter.paging.pages import add_incident_pages
from callcenter.paging.services import PagingConfig, PagingService
from callcenter.paging.worker import EscalationWorker, UserNotifiers, WorkerConfig

ESCALATION_WORKER = web.AppKey("escalation_worker", EscalationWorker)
PAGE_CALL_HANDLER = web.AppKey("page_call_handler", PageCallHandler)

OriginatorSource = Originator | Callable[[web.Application], Originator]


def _originator(source: OriginatorSource, app: web.Application) -> Originator:
    if hasattr(source, "originate"):
        return cast(Originator, source)
    return cast(Callable[[web.Application], Originator], source)(app)


def worker_config_from_settings(app: web.Application) -> WorkerConfig:
    settings = app[SETTINGS]
    if not settings.asterisk:
        return WorkerConfig()
    pbx = settings.asterisk[0]
    return WorkerConfig(trunk=pbx.trunk, extension_channel=pbx.extension_channel)


def setup_paging(app: web.Application, *, originator: OriginatorSource,
                 notifiers: Sequence[Notifier] | Callable[[web.Application], Sequence[Notifier]] = (),
                 user_notifiers: UserNotifiers | None = None,
                 fallback_notifiers: UserNotifiers | None = None,
                 config: PagingConfig | None = None, worker_config: WorkerConfig | None = None,
                 page_call_config: PageCallConfig | None = None,
                 start_worker: bool = True,
                 can_dial: Callable[[str | None], bool] | None = None) -> None:
    """``can_dial(community)``: whether this server drives that community's PBX link
    (two servers, ``callcenter.ha``); the worker hands other steps back."""
    add_paging_routes(app)
    add_incident_pages(app)
    add_duty_page(app)

    async def _paging(app: web.Application) -> AsyncIterator[None]:
        orig = _originator(originator, app)
        notes = notifiers(app) if callable(notifiers) else notifiers
        registry = PageCallRegistry()
        service = PagingService(app[SESSIONMAKER], app[CLOCK], app[BUS], config)
        worker = EscalationWorker(app[SESSIONMAKER], orig, app[CLOCK], app[BUS],
                                  registry, config=worker_config or worker_config_from_settings(app),
                                  notifiers=notes, user_notifiers=user_notifiers,
                                  fallback_notifiers=fallback_notifiers, can_dial=can_dial)
        service.set_wakeup(worker.wake)
        app[PAGING_SERVICE] = service
        app[ESCALATION_WORKER] = worker
        app[PAGE_CALL_HANDLER] = PageCallHandler(app[SESSIONMAKER], service, registry,
                                                 page_call_config)
        unsubscribe = app[BUS].subscribe("incident.requested", service.on_incident_requested)
        if start_worker:
            await worker.start()
        yield
        unsubscribe()
        await worker.stop()

    app.cleanup_ctx.append(_paging)
