"""The composition root: ``create_app(settings)`` builds every part and wires them.

Long-lived objects live under typed keys (``callcenter.appkeys`` and each
feature's own keys); each is started and stopped by a ``cleanup_ctx``
generator, in order, so nothing outlives shutdown. Order matters: the database
first, then the services that need it, and the AMI links last, so no event
from Asterisk arrives before its listeners are subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from callcenter.agi_entry import AgiEntry
from callcenter.ami.links import AmiLinks
from callcenter.ami.setup import mailboxes_of, setup_ami
from callcenter.appkeys import BUS, CLOCK, ENGINE, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import auth_middleware
from callcenter.auth.passwords import PasswordsFactory, PasswordWorkers
from callcenter.bus import EventBus
from callcenter.calls.callbacks_http import setup_callbacks
from callcenter.calls.http import setup_calls
from callcenter.clock import Clock, SystemClock
from callcenter.cluster.setup import setup_cluster
from callcenter.console.ami_ports import AmiAgentStatus, AmiOriginate
from callcenter.console.keys import AGENT_HUB
from callcenter.console.queue_sync import QueueMembersSync
from callcenter.console.setup import setup_console
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.reader import sqlite_reader
from callcenter.directory.hotlines import CommunityChoice, CommunityResolver, HotlineDirectory
from callcenter.ha.setup import setup_ha
from callcenter.health import healthz, holiday_health
from callcenter.ivr_services import HotlineServices
from callcenter.metrics.agi import timed_sessions
from callcenter.metrics.setup import METRICS, setup_metrics
from callcenter.metrics.transcription import timed_transcriber
from callcenter.oncall.setup import ONCALL_ROUTER, setup_oncall
from callcenter.outbound.setup import setup_outbound
from callcenter.paging.http import PAGING_SERVICE
from callcenter.paging.originate import Originator
from callcenter.paging.pbx_route import PbxRoute, route_from_settings
from callcenter.paging.setup import ESCALATION_WORKER, PAGE_CALL_HANDLER, setup_paging
from callcenter.reports.http import setup_reports
from callcenter.screenpop.setup import STAFF_NOTIFIERS, setup_screenpop
from callcenter.settings import Settings
from callcenter.tickets import setup_tickets, transcriber_from_settings
from callcenter.web.errors import error_middleware
from callcenter.web.masking import setup_masking
from callcenter.web.openapi import setup_api_docs
from callcenter.web.pages import setup_page_headers
from ivr.admin.holiday_store import HolidayStore
from ivr.admin.holidays_http import HOLIDAY_STORE, follow_other_servers
from ivr.admin.holidays_http import add_routes as add_holiday_routes
from ivr.admin.menus_http import IVR_HOLIDAYS, IVR_RELOADER
from ivr.admin.menus_http import add_routes as add_ivr_admin_routes
from ivr.admin.reloader import MenuReloader
from ivr.channel import Channel
from ivr.engine import IvrEngine
from ivr.errors import MenuError
from ivr.fastagi import FastAgiServer
from ivr.holidays import HOLIDAY_FILE, HolidayCalendar, HolidayFile
from ivr.menus import MenuStore
from ivr.outages.http import OUTAGES
from ivr.outages.setup import setup_outages
from ivr.timeconditions import HOURS_FILE, TimeModes, load_time_conditions
from recordings.ingest import Transcriber
from ticketing.group_outages import GROUP_OUTAGES

log = logging.getLogger(__name__)

AGI_ENTRY = web.AppKey("agi_entry", AgiEntry)
IVR_MENUS = web.AppKey("ivr_menus", MenuStore)

TRANSCRIBER: web.AppKey[Transcriber | None] = web.AppKey("transcriber")


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    await migrate(engine)
    app[ENGINE] = engine
    app[SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[BUS].drain()


async def _transcriber(app: web.Application) -> AsyncIterator[None]:
    async with transcriber_from_settings(app[SETTINGS]) as pool:
        app[TRANSCRIBER] = pool
        yield


def _pool(app: web.Application) -> Transcriber | None:
    return timed_transcriber(app.get(TRANSCRIBER), app[METRICS].transcription_job_seconds)


def _reload(reloader: MenuReloader) -> None:
    with contextlib.suppress(MenuError):  # logged and kept for the admin page
        reloader.reload("SIGHUP")


def _drives(route: PbxRoute, links: AmiLinks) -> Callable[[str | None], bool]:
    """Whether this server dials a community's pages now: it owns the community's
    link (``callcenter.ha``); a community with no link is anyone's (its fallback)."""
    def can_dial(community: str | None) -> bool:
        name = route.link_for(community)
        if name is None or name not in links.names():
            return True
        return links.get(name).owner
    return can_dial


def _free_page_steps(app: web.Application, settings: Settings
                     ) -> Callable[[str, bool], Awaitable[None]]:
    """On taking a link over: paging frees the steps its previous owner left claimed."""
    community = {a.name: a.community for a in settings.asterisk}

    async def on_change(link: str, owned: bool) -> None:
        worker = app.get(ESCALATION_WORKER)
        if owned and worker is not None:
            code = community.get(link)
            await worker.take_over_claims([code] if code else None)
    return on_change


async def _group_outages(app: web.Application) -> AsyncIterator[None]:
    """A group incident's page posts notices through the outage notices' service."""
    app[GROUP_OUTAGES] = app[OUTAGES]
    yield


def create_core_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The skeleton every feature plugs into: settings, clock, bus, database,
    error and auth middleware, /healthz. Tests of one feature start here."""
    app = web.Application(middlewares=[error_middleware, auth_middleware],
                          client_max_size=8 * 1024**2)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BUS] = EventBus()
    app[HEALTH_EXTRAS] = []
    app.cleanup_ctx.append(_database)
    setup_masking(app)  # outermost: every response, errors included, masked by role
    app.cleanup_ctx.append(_bus)
    setup_page_headers(app)  # every HTML response: CSP, no framing, no caching
    app.router.add_get("/healthz", healthz)
    setup_api_docs(app)  # /api/openapi.json and /api/docs, of what features declare
    return app


def create_app(settings: Settings, *, clock: Clock | None = None,
               ami_links: AmiLinks | None = None, originator: Originator | None = None,
               transcribe: bool = True,
               passwords: PasswordsFactory = PasswordWorkers) -> web.Application:
    """Build the whole server. Tests may pass their own clock, links or originator;
    the login-flood benchmark its on-the-loop password checks (``InlinePasswords``)."""
    app = create_core_app(settings, clock=clock)

    links = ami_links or AmiLinks(
        settings.asterisk, publish=app[BUS].publish,
        mailboxes=mailboxes_of(settings.voicemail.mailboxes, settings.voicemail.context),
        now=app[CLOCK].now,
    )
    setup_calls(app, links)
    agent_status = AmiAgentStatus(links, settings.asterisk)
    setup_console(app, agent_status=agent_status,
                  originate=AmiOriginate(links, settings.asterisk), passwords=passwords)
    setup_callbacks(app, links)  # the 未接来电 worklist, filled as calls end
    # After every (re)connect, agents' states come from the queue's members in Asterisk.
    queue_sync = QueueMembersSync(agent_status, lambda: app[SESSIONMAKER],
                                  lambda: app.get(AGENT_HUB))
    for pbx in settings.asterisk:
        links.get(pbx.name).on_connected(queue_sync.on_connected)
    setup_screenpop(app)
    setup_cluster(app)  # PostgreSQL: the bus between servers (after the hub it feeds)
    metrics = setup_metrics(app, links)  # before the links start: it hears their first login
    setup_ha(app, links, metrics.ha_link_owned)  # PostgreSQL: one owner per link (leases)
    setup_oncall(app)
    # Pages leave through the incident's community's own link ([paging] fallback when
    # it has none or it is down). Paging listens before the voicemail ingest starts:
    # an emergency message found by the first spool scan at start-up is paged at once.
    route = route_from_settings(settings.asterisk, settings.paging.fallback, links.get,
                                default_community=settings.default_community,
                                sessionmaker=lambda: app[SESSIONMAKER])
    setup_paging(app, originator=originator or route,
                 fallback_notifiers=lambda notify: app[STAFF_NOTIFIERS].channels(notify),
                 can_dial=_drives(route, links))
    links.on_owner_change(_free_page_steps(app, settings))
    if transcribe:
        app.cleanup_ctx.append(_transcriber)
    setup_tickets(app, transcriber=_pool)
    setup_outages(app)  # 停水停电通知: the IVR plays them, a group incident posts them
    app.cleanup_ctx.append(_group_outages)
    setup_reports(app)

    entry = AgiEntry()
    app[AGI_ENTRY] = entry

    def survey_handler(handler: Callable[[Channel], Awaitable[None]]) -> None:
        entry.outbound = handler
    # 回访 surveys and the dialer: after the tickets (their answers are 回访 actions)
    setup_outbound(app, links, link_for=route.link_for, set_handler=survey_handler,
                   holidays_key=IVR_HOLIDAYS)

    async def _agi(app: web.Application) -> AsyncIterator[None]:
        page_handler = app[PAGE_CALL_HANDLER]

        async def page(channel: Channel) -> None:
            await page_handler.handle(channel)

        store = MenuStore(*settings.ivr_menus)
        store.current()  # a broken menu file stops the start with its error
        holidays = HolidayCalendar()
        holiday_file = HolidayFile(holidays, settings.data_dir / HOLIDAY_FILE)
        holiday_file.reload()  # re-read on SIGHUP and the admin page's reload
        reader = sqlite_reader(settings.database_url)
        services = HotlineServices(settings, app[SESSIONMAKER], links=links,
                                   router=app[ONCALL_ROUTER], paging=app[PAGING_SERVICE],
                                   reader=reader, outages=app[OUTAGES])
        hours_file = settings.data_dir / HOURS_FILE
        time_modes = (load_time_conditions(hours_file, holidays, settings.timezone)
                      if hours_file.exists() else TimeModes(holidays, settings.timezone))
        engine = IvrEngine(store, services, time_modes, clock=app[CLOCK])
        app[IVR_MENUS] = store
        reloader = MenuReloader(store, app[CLOCK], holidays=holiday_file)
        app[IVR_RELOADER] = reloader
        app[IVR_HOLIDAYS] = holidays
        app[HOLIDAY_STORE] = HolidayStore(holiday_file.path, holiday_file)
        follow_other_servers(app[BUS], holiday_file)

        hotlines = HotlineDirectory(app[SESSIONMAKER], app[CLOCK])
        communities = CommunityResolver(hotlines, settings.default_community)

        async def hotline(channel: Channel) -> None:
            try:
                choice = await communities.for_call(channel.env, channel.link_community)
            except Exception:  # the directory is unreachable: the call still runs
                log.exception("community of call %s not resolved", channel.uniqueid)
                choice = CommunityChoice(settings.default_community, "default")
            log.info("call %s for community %s (%s)", channel.uniqueid, choice.code,
                     choice.rule)
            await engine.run(channel, call_id=channel.uniqueid, community=choice.code)

        app[HEALTH_EXTRAS].append(holiday_health(holidays, app[CLOCK], settings.timezone))
        entry.page, entry.ivr = page, hotline
        timed_entry = timed_sessions(entry, metrics.agi_command_seconds)
        links.set_agi_handler(timed_entry)
        fastagi = None
        if settings.fastagi.enabled:
            fastagi = FastAgiServer(timed_entry, settings.fastagi.host, settings.fastagi.port)
            await fastagi.start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload, reloader)
        yield
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if fastagi is not None:
            await fastagi.stop()
        await hotlines.close()
        if reader is not None:
            reader.dispose()

    app.cleanup_ctx.append(_agi)
    add_ivr_admin_routes(app)
    add_holiday_routes(app)
    setup_ami(app, links)
    return app
