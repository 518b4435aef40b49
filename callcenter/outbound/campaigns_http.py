"""HTTP of the 催缴 campaigns.

``GET /api/outbound/campaigns`` → the campaigns of the user's communities with their
counts; ``POST /api/outbound/campaigns`` ``{"community", "min_amount", "min_age_days",
"name"}`` (supervisor) → built from the directory's arrears and queued;
``POST /api/outbound/campaigns/{id}/state`` ``{"state": "paused" | "active" |
"cancelled"}`` (supervisor) → paused or resumed within a second on every server, or
stopped; ``GET /outbound/campaigns/{id}.csv`` / ``.xlsx`` (supervisor) → the result
per owner for the finance office.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.auth.scope import in_scope, scope_codes
from callcenter.console.staff import staff_ref
from callcenter.directory.masking import sees_full_numbers, show_number
from callcenter.directory.phones import try_normalize
from callcenter.errors import NotFound
from callcenter.outbound import fees
from callcenter.outbound.feature import OUTBOUND
from callcenter.outbound.models import CAMPAIGN_STATES
from callcenter.reports.export import encode
from callcenter.web.api import ApiRoutes, Input, Output, PathId, Text
from callcenter.web.errors import json_response
from callcenter.web.pages import page

READERS = ("agent", "supervisor")
STEERS = ("supervisor",)


class CampaignIn(Input):
    community: str = Field(min_length=1, max_length=64, description="小区代码")
    min_amount: Decimal = Field(Decimal("100"), gt=0, le=Decimal("1000000"),
                                description="最低欠费金额（元）")
    min_age_days: int = Field(30, ge=0, le=3650, description="距上次缴费至少多少天")
    name: Text = Field("", max_length=100)


class CampaignPath(Input):
    campaign_id: PathId


class StateIn(Input):
    state: Literal["active", "paused", "cancelled"] = Field(
        description="active 进行 / paused 暂停 / cancelled 停止")


class CampaignOut(Output):
    id: int
    name: str
    community: str
    period: str
    state: str
    state_label: str
    total: int
    final: int
    done: int
    unreached: int
    skipped: int
    rules: dict[str, Any]


class CampaignsOut(Output):
    campaigns: list[CampaignOut]


class BuiltOut(CampaignOut):
    queued: int
    already_called: int
    no_number: list[str]


def _out(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "state_label": CAMPAIGN_STATES.get(summary["state"], "")}


routes = ApiRoutes("outbound")


@routes.get("/api/outbound/campaigns", response=CampaignsOut, roles=READERS,
            summary="催缴外呼 / fee reminder campaigns")
async def list_campaigns(request: web.Request) -> dict[str, Any]:
    async with request.app[SESSIONMAKER]() as session:
        rows = await fees.campaigns(session, _scope_list(await scope_codes(request)))
    return {"campaigns": [_out(fees.campaign_summary(c, n)) for c, n in rows]}


def _scope_list(scope: Any) -> list[str] | None:
    return None if scope is None else list(scope)


@routes.post("/api/outbound/campaigns", body=CampaignIn, response=BuiltOut, status=201,
             errors=(404,),
             roles=STEERS, form=True, summary="发起催缴 / start a fee reminder campaign")
async def create_campaign(request: web.Request, body: CampaignIn) -> web.StreamResponse:
    """Everyone of the community owing at least ``min_amount`` whose last payment is at
    least ``min_age_days`` old, once per owner and period; quiet hours apply."""
    ident = current_identity(request)
    assert ident is not None
    scope = await scope_codes(request)
    if not in_scope(scope, body.community, None):
        raise NotFound("小区不存在 / unknown community", details={"field": "community"})
    me = await staff_ref(request, ident)
    feature = request.app[OUTBOUND]
    async with request.app[SESSIONMAKER]() as session:
        built = await fees.build_campaign(
            session, feature.dialer.hours, community=body.community,
            rules=fees.FeeRules(body.min_amount, body.min_age_days), by=me.display_name,
            now=request.app[CLOCK].now(), name=body.name)
        summary = fees.campaign_summary(built.campaign, {"queued": built.queued})
    feature.dialer.wake()
    payload = {**_out(summary), "queued": built.queued, "already_called": built.already_called,
               "no_number": built.no_number}
    if request.content_type == "application/x-www-form-urlencoded":
        raise web.HTTPFound("/outbound")
    return json_response(payload, status=201)


@routes.post("/api/outbound/campaigns/{campaign_id}/state", path_model=CampaignPath,
             body=StateIn, response=CampaignOut, roles=STEERS, form=True, errors=(409,),
             summary="暂停、继续或停止催缴 / pause, resume or stop a campaign")
async def set_campaign_state(request: web.Request, path: CampaignPath, body: StateIn
                             ) -> web.StreamResponse:
    async with request.app[SESSIONMAKER]() as session:
        campaign = await fees.set_state(session, path.campaign_id, body.state,
                                        _scope_list(await scope_codes(request)),
                                        request.app[CLOCK].now())
        counts = await fees.job_counts(session, campaign.id)
    feature = request.app.get(OUTBOUND)
    if feature is not None:
        feature.dialer.wake()
    if request.content_type == "application/x-www-form-urlencoded":
        raise web.HTTPFound("/outbound")
    return json_response(_out(fees.campaign_summary(campaign, counts)))


async def _export(request: web.Request, kind: str) -> web.Response:
    ident = current_identity(request)
    assert ident is not None
    try:
        campaign_id = int(request.match_info["campaign_id"])
    except ValueError:
        raise NotFound("没有这次催缴 / no such campaign") from None
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    full = sees_full_numbers(ident.role, own_call=False)
    async with request.app[SESSIONMAKER]() as session:
        campaign = await fees.get_campaign(session, campaign_id,
                                           _scope_list(await scope_codes(request)))
        rows = await fees.outcome_rows(
            session, campaign, show=lambda n: show_number(try_normalize(n) or n, full),
            local=lambda at: at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "")
    name = f"fee-reminders-{campaign.period}-{campaign.id}"
    body, ctype = encode(list(rows), kind, sheet="催缴结果")
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'attachment; filename="{name}.{kind}"'})


@page(*STEERS)
async def export_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "csv")


@page(*STEERS)
async def export_xlsx(request: web.Request) -> web.StreamResponse:
    return await _export(request, "xlsx")


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
    app.router.add_get("/outbound/campaigns/{campaign_id}.csv", export_csv)
    app.router.add_get("/outbound/campaigns/{campaign_id}.xlsx", export_xlsx)
