"""Wiring for the outbound dialer: the dialer itself, the 回访 surveys queued from
each ticket's 完工, the survey call on the AGI entry point, the routes.

``setup_outbound(app, ...)`` after ``setup_tickets`` (the surveys record their
answer through the work orders) and once the AGI entry point exists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from callcenter.ami.links import AmiLinks
from callcenter.appkeys import BUS, CLOCK, SESSIONMAKER, SETTINGS
from callcenter.outbound.calling_hours import CallingHours, QuietHours
from callcenter.outbound.campaigns_http import add_routes as add_campaign_routes
from callcenter.outbound.dialer import Dialer, DialerConfig, Verdicts
from callcenter.outbound.entry import OutboundCalls
from callcenter.outbound.feature import OUTBOUND, OutboundFeature
from callcenter.outbound.fee_call import FeeCall
from callcenter.outbound.fees import FEE
from callcenter.outbound.fees import still_wanted as fee_still_wanted
from callcenter.outbound.http import add_routes
from callcenter.outbound.survey import (
    SURVEY,
    SurveyScheduler,
    category_port,
    follow_up_port,
    still_wanted,
)
from callcenter.outbound.survey_call import SurveyCall
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.originate import OriginateOutcome, OriginateStatus
from callcenter.settings import pairs
from ivr.channel import Channel
from ticketing.http import TICKETS


class _AppHolidays:
    """The IVR's holiday calendar, once the IVR has started (``day(d).holiday``)."""

    def __init__(self, app: web.Application, key: Any) -> None:
        self._app, self._key = app, key

    def day(self, d: date) -> object:
        calendar = self._app.get(self._key)
        return calendar.day(d) if calendar is not None else None


def setup_outbound(app: web.Application, links: AmiLinks, *,
                   link_for: Callable[[str | None], str | None],
                   set_handler: Callable[[Callable[[Channel], Any]], None],
                   holidays_key: Any = None) -> None:
    """``link_for(community)``: the name of the link its calls leave through
    (``PbxRoute.link_for``); ``set_handler``: installs the survey call on the AGI
    entry point; ``holidays_key``: the app key of the IVR's holiday calendar."""
    add_routes(app)
    add_campaign_routes(app)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        o = settings.outbound
        by_community = {code: QuietHours.parse(text) for code, text in pairs(
            o.quiet_hours_by_community, "outbound.quiet_hours_by_community",
            settings.source).items()}
        hours = CallingHours(settings.timezone, QuietHours.parse(o.quiet_hours), by_community,
                             _AppHolidays(app, holidays_key) if holidays_key else None)
        trunk = settings.asterisk[0].trunk if settings.asterisk else DialerConfig().trunk
        config = DialerConfig(max_calls=o.max_calls, pace_s=o.pace_s, ring_s=o.ring_s,
                              trunk=trunk, caller_id=o.caller_id,
                              caller_ids=pairs(o.caller_ids, "outbound.caller_ids",
                                               settings.source),
                              context=o.context, script_s=o.max_call_s)
        verdicts = Verdicts()

        def name_of(community: str) -> str | None:
            name = link_for(community or None)
            return name if name is not None and name in links.names() else None

        async def originate(community: str, channel: str, context: str, exten: str,
                            variables: Mapping[str, str], ring_s: float,
                            caller_id: str) -> OriginateOutcome:
            name = name_of(community)
            if name is None:
                return OriginateOutcome(OriginateStatus.UNAVAILABLE, "no_link")
            return await AmiOriginator(links.get(name), caller_id=caller_id).originate(
                channel, context, exten, variables, ring_s, community=community or None)

        def can_dial(community: str) -> bool:
            name = name_of(community)
            return name is not None and links.get(name).owner

        dialer = Dialer(app[SESSIONMAKER], originate, app[CLOCK], app[BUS], verdicts,
                        hours=hours, config=config, link_for=name_of, can_dial=can_dial,
                        still_wanted={SURVEY: still_wanted, FEE: fee_still_wanted})
        scheduler: SurveyScheduler | None = None
        unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
        if o.surveys:
            scheduler = SurveyScheduler(app[SESSIONMAKER], app[CLOCK].now, hours,
                                        delay=timedelta(seconds=o.survey_delay_s),
                                        wake=dialer.wake)
            unsubscribe = app[BUS].subscribe("ticket.changed", scheduler.on_ticket_changed)
        workorders = app[TICKETS].workorders
        assert workorders is not None, "setup_outbound needs the work orders (setup_tickets)"
        survey = SurveyCall(app[SESSIONMAKER], verdicts, follow_up_port(workorders),
                            app[CLOCK].now, category_port(app[SESSIONMAKER]))
        fee = FeeCall(app[SESSIONMAKER], verdicts, app[CLOCK].now)
        set_handler(OutboundCalls({SURVEY: survey.handle, FEE: fee.handle}).handle)
        app[OUTBOUND] = OutboundFeature(dialer, scheduler)
        if o.enabled:
            await dialer.start()
        try:
            yield
        finally:
            unsubscribe()
            await dialer.stop()

    app.cleanup_ctx.append(ctx)
