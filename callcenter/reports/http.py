"""Reports for supervisors: ``GET /api/reports/calls`` (JSON), ``/reports`` (the page
with its charts) and ``/reports/calls.csv`` / ``.xlsx`` (the same table).

Query: ``from`` and ``to`` (local days, ``to`` included; default the last 7 days, at
most 92), ``community`` (a code or id the person sees; default all of theirs), ``by``
(``hour`` or ``day``; default ``hour`` for one or two days, else ``day``),
``service_level_s`` (answered within N seconds counts for the service level; 20).
Everything is filtered to the person's communities in the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, ValidationError

from callcenter.appkeys import SESSIONMAKER, SETTINGS
from callcenter.reports import export, svg
from callcenter.reports.figures import Bucket, Report, build, label, mm_ss, percent
from callcenter.reports.kpi_http import setup_kpi
from callcenter.reports.queries import call_rows, incident_rows, ticket_rows
from callcenter.reports.scope import resolve_scope
from callcenter.web.api import ApiRoutes, CommunityRef, Day, Input, Output, invalid
from callcenter.web.pages import page
from callcenter.web.templating import render

ROLES = ("supervisor",)


class ReportQuery(Input):
    from_: Day | None = Field(None, alias="from", description="开始日期（本地）/ first day")
    to: Day | None = Field(None, description="结束日期（含当天）/ last day, included")
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")
    by: Literal["hour", "day"] | None = Field(None, description="按小时或按天 / hour or day")
    service_level_s: int = Field(20, ge=1, le=600,
                                 description="服务水平秒数 / answered within N s")


class BucketOut(Output):
    label: str
    start: str
    calls: int
    offered: int
    answered: int
    abandoned: int
    voicemail: int
    ivr_only: int
    emergency: int
    answer_rate: float | None
    abandon_rate: float | None
    service_level: float | None
    avg_wait_s: float | None
    avg_talk_s: float | None
    tickets_opened: int
    tickets_closed: int
    response_rate: float | None
    incidents: int
    incidents_acked: int
    avg_ack_s: float | None
    max_ack_s: float | None


class CallsReportOut(Output):
    from_: str = Field(alias="from")
    to: str
    by: str
    service_level_s: int
    buckets: list[BucketOut]
    total: BucketOut
    communities: dict[str, BucketOut]


@dataclass(frozen=True)
class Resolved:
    """A report query made concrete: its days, granularity and the communities it covers
    (``codes``/``ids`` None: every one, no filter)."""

    first: date
    last: date
    by: Literal["hour", "day"]
    codes: frozenset[str] | None
    ids: frozenset[int] | None
    names: dict[str, str]
    service_level_s: int
    community: str | None


async def _resolve(request: web.Request, query: ReportQuery) -> Resolved:
    scope = await resolve_scope(request, query.from_, query.to, query.community)
    first, last = scope.first, scope.last
    by = query.by or ("hour" if (last - first).days < 2 else "day")
    return Resolved(first, last, by, scope.codes, scope.ids, scope.names,
                    query.service_level_s, scope.community)


async def _report(request: web.Request, req: Resolved) -> Report:
    settings = request.app[SETTINGS]
    tz = ZoneInfo(settings.timezone)
    start = datetime.combine(req.first, time(0), tzinfo=tz)
    end = datetime.combine(req.last + timedelta(days=1), time(0), tzinfo=tz)
    # A site with one community names none on its calls: they are the default one's.
    default = settings.default_community
    async with request.app[SESSIONMAKER]() as session:
        calls = await call_rows(session, start, end, codes=req.codes, default_community=default)
        tickets = await ticket_rows(session, start, end, ids=req.ids)
        incidents = await incident_rows(session, start, end, ids=req.ids)
    return build(start=start, end=end, granularity=req.by, tz=tz, calls=calls,
                 tickets=tickets, incidents=incidents,
                 service_level_s=req.service_level_s)


def _bucket_json(b: Bucket, name: str) -> dict[str, Any]:
    return {"label": name, "start": b.start.isoformat(), "calls": b.calls,
            "offered": b.offered, "answered": b.answered, "abandoned": b.abandoned,
            "voicemail": b.voicemail, "ivr_only": b.ivr_only, "emergency": b.emergency,
            "answer_rate": b.answer_rate, "abandon_rate": b.abandon_rate,
            "service_level": b.service_level, "avg_wait_s": b.avg_wait_s,
            "avg_talk_s": b.avg_talk_s, "tickets_opened": b.tickets_opened,
            "tickets_closed": b.tickets_closed, "response_rate": b.response_rate,
            "incidents": b.incidents, "incidents_acked": b.incidents_acked,
            "avg_ack_s": b.avg_ack_s, "max_ack_s": b.ack_max_s}


routes = ApiRoutes("reports")


@routes.get("/api/reports/calls", query=ReportQuery, response=CallsReportOut, roles=ROLES,
            errors=(403,), summary="话务与工单报表 / calls, tickets and emergencies over time")
async def calls_report(request: web.Request, query: ReportQuery) -> dict[str, Any]:
    req = await _resolve(request, query)
    report = await _report(request, req)
    return {"from": req.first.isoformat(), "to": req.last.isoformat(), "by": req.by,
            "service_level_s": req.service_level_s,
            "buckets": [_bucket_json(b, label(b.start, req.by)) for b in report.buckets],
            "total": _bucket_json(report.total, "合计"),
            "communities": {code: _bucket_json(b, req.names.get(code, code))
                            for code, b in report.by_community.items()}}


def _query(request: web.Request) -> ReportQuery:
    try:
        return ReportQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise invalid(exc, where="query") from exc


@page(*ROLES)
async def reports_page(request: web.Request) -> web.StreamResponse:
    query = _query(request)
    req = await _resolve(request, query)
    report = await _report(request, req)
    labels = [label(b.start, req.by) for b in report.buckets]
    charts = [
        svg.bars("来电量（接通 / 放弃 / 其他）", labels, [
            svg.Series("接通", [b.answered for b in report.buckets], "#2f7d32"),
            svg.Series("放弃", [b.abandoned for b in report.buckets], "#c62828"),
            svg.Series("留言、自助、紧急", [b.voicemail + b.ivr_only + b.emergency
                                     for b in report.buckets], "#90a4ae")], unit=" 通"),
        svg.lines("接通率与服务水平", labels, [
            svg.Series("接通率", [b.answer_rate for b in report.buckets], "#2f7d32"),
            svg.Series(f"{req.service_level_s}秒内接通", [b.service_level
                                                    for b in report.buckets], "#1565c0"),
            svg.Series("放弃率", [b.abandon_rate for b in report.buckets], "#c62828")]),
        svg.bars("工单（新建 / 归档）", labels, [
            svg.Series("新建", [b.tickets_opened for b in report.buckets], "#ef6c00"),
            svg.Series("归档", [b.tickets_closed for b in report.buckets], "#6a1b9a")],
            unit=" 张"),
    ]
    communities = sorted(req.names.items(), key=lambda kv: kv[1])
    params = {"from": req.first.isoformat(), "to": req.last.isoformat(), "by": req.by,
              "service_level_s": str(req.service_level_s),
              **({"community": req.community} if req.community else {})}
    return render(request, "reports.html", {
        "req": req, "report": report, "charts": charts, "labels": labels,
        "communities": communities, "rows": export.table(report, req.names),
        "params": params, "mm_ss": mm_ss, "percent": percent})


async def _export(request: web.Request, kind: str) -> web.Response:
    req = await _resolve(request, _query(request))
    rows = export.table(await _report(request, req), req.names)
    name = f"report-{req.first.isoformat()}-{req.last.isoformat()}"
    body, ctype = export.encode(rows, kind)
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'attachment; filename="{name}.{kind}"'})


@page(*ROLES)
async def report_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "csv")


@page(*ROLES)
async def report_xlsx(request: web.Request) -> web.StreamResponse:
    return await _export(request, "xlsx")


def setup_reports(app: web.Application) -> None:
    routes.add_to(app)
    setup_kpi(app)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/reports/calls.csv", report_csv)
    app.router.add_get("/reports/calls.xlsx", report_xlsx)
