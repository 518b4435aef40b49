"""What the outbound routes reach under the app: the dialer and the surveys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from callcenter.outbound.dialer import Dialer
from callcenter.outbound.survey import SurveyScheduler


@dataclass
class OutboundFeature:
    dialer: Dialer
    surveys: SurveyScheduler | None


OUTBOUND = web.AppKey("outbound", OutboundFeature)
